"""gravity_generator."""
