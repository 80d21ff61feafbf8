"""Generated protobuf and gRPC stubs for the GRAVITY wire contract (proto/gravity)."""
