"""The `paastech` command-line client (built on gql, talks only to the public GraphQL API)."""
