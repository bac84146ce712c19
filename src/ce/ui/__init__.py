"""Rendering of plans, engine events and summaries (imports only event types from the engine)."""
