"""gravity_trainer."""
