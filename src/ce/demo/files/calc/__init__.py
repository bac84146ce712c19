"""A tiny calculator package, grown by the demo batch."""
