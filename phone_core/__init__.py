"""Phone enrichment engine."""
