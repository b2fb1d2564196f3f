"""HTTP API v1: protocol concerns (auth, problems, bodies) around the engine."""
