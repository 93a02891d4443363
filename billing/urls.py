from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("", views.finance_dashboard, name="dashboard"),
    path("transactions.csv", views.transactions_csv, name="transactions_csv"),
    path("add/", views.add_credit, name="add_credit"),
    path("add/details/", views.add_credit_details, name="add_credit_details"),
    path("add/<int:payment_id>/confirm/", views.add_credit_confirm, name="add_credit_confirm"),
    path("add/<int:payment_id>/", views.add_credit_result, name="payment"),
    path("auto-recharge/", views.auto_recharge, name="auto_recharge"),
    path("statements/", views.statements, name="statements"),
    path("statements/<int:statement_id>/", views.statement, name="statement"),
    path("statements/<int:statement_id>/pdf", views.statement_pdf_view, name="statement_pdf"),
    path("statements/<int:statement_id>/csv", views.statement_csv, name="statement_csv"),
    path("receipts/<int:receipt_id>/", views.receipt, name="receipt"),
    path("receipts/<int:receipt_id>/pdf", views.receipt_pdf_view, name="receipt_pdf"),
]
