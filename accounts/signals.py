"""What accounts announce to the apps above them (they connect in their AppConfig.ready):
accounts never import a higher app, so a higher app's work on an accounts event (default
alert rules for a new organization) hangs on one of these."""

from django.dispatch import Signal

# Sent inside organization_create's transaction, with `organization`.
organization_created = Signal()
