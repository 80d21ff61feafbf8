"""Root pytest configuration: shared fixtures live in tests/gravity_testing.py (test code, not in any wheel)."""

import sys
from pathlib import Path

# --import-mode=importlib leaves test directories off sys.path; the shared test helpers are imported by name.
sys.path.insert(0, str(Path(__file__).parent / "tests"))

pytest_plugins = ["gravity_testing"]
