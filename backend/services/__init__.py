"""Domain services: the one place for business rules. GraphQL resolvers and gRPC servicers call
these and stay thin. Every function that touches a tenant's data takes the calling Client."""
