"""Plain numpy references: every kernel (ref), a reference executor for graphs (refnet) and random
graphs and blobs for tests (testing). Imports format, spec and errors only."""
