"""The public GraphQL API (Strawberry on Starlette)."""
