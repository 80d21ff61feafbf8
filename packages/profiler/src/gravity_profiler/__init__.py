"""gravity_profiler."""
