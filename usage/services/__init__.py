"""Writes for usage: ingestion (ingest.py), job lifecycle (jobs.py), controllers."""
