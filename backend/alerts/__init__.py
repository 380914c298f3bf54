"""Alerts (issue 18): per project notification webhooks, fired on release failed, release live,
crash loop, OOM kill and memory above 90% of the limit for 5 minutes (docs/architecture.md)."""
