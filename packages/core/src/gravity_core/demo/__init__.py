"""The end-to-end orchestrator: `gravity demo` and `gravity up`."""
