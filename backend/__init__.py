"""PaaSTech platform backend: API, domain services, data model, deployment manager."""
