"""gravity_judge."""
