"""What spend controls announce to the apps above them (alerts connect in their
AppConfig.ready)."""

from django.dispatch import Signal

# Sent inside the transaction that saves a budget, with `organization`: its thresholds
# join the alert rules.
budget_saved = Signal()
