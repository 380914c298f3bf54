"""The commands of the `paastech` CLI, one module per topic."""
