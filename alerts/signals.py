"""What alerts announce once a transaction commits; alerts/receivers.py turns it into the
delivery tasks, so the services never import the tasks that call them back."""

from django.dispatch import Signal

# A crossing was recorded, with `notification_id`, and whether its rule mails (`email`)
# and posts to a webhook (`webhook`).
notification_fired = Signal()
