"""Alerts: rules an organization sets, evaluated every few minutes and right after
ingestion batches, each crossing recorded once and delivered by email and webhook.

Alerts sit above billing and usage: they read both and write only their own rows. The
lower apps never call them; alerts listen (alerts/receivers.py) for a new organization
(default rules) and for a stored usage batch (evaluate soon).
"""
