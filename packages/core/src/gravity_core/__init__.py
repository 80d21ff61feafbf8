"""gravity_core."""
