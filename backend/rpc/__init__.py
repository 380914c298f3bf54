"""Internal gRPC contracts (.proto files here) and their generated stubs (`make protos`)."""
