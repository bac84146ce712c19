"""The engine: orchestrator, supervision, validation, merge lane, state."""
