"""Planning (pure): dependency graph, stages, file conflicts, model routing."""
