"""What billing announces once a transaction commits; billing/receivers.py (connected in
BillingConfig.ready) turns each into its Celery task, so the services that post and
issue never import the tasks that call them back."""

from django.dispatch import Signal

# A debit took the balance from at-or-above the auto-recharge threshold to below it, with
# `organization_id` and `entry_id` (the debit).
auto_recharge_due = Signal()

# A month's statement was issued, with `statement_id`: its link is mailed.
statement_issued = Signal()
