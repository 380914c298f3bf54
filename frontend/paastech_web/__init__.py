"""The PaaSTech web app: a Reflex client of the public GraphQL API (it never imports `backend`)."""
