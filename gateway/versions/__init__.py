"""Model versions: the registry, where they are hosted, routing between them, live trials,
the hot swap and the retrain schedule."""
