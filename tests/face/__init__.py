"""Face motion tests (driving motion: analyzers, pose, expression, nodes)."""
