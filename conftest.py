"""Root pytest configuration: shared fixtures come from gravity_core.testing."""

pytest_plugins = ["gravity_core.testing"]
