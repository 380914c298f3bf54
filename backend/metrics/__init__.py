"""Metrics (issue 18): container samples from Pomegranate, request counts from the ingress,
stored by the API at 10 s resolution for a day and 5 min for 30 days (docs/architecture.md)."""
