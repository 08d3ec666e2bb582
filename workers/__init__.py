"""Process entry points of the scaled deployment (no business logic here)."""
