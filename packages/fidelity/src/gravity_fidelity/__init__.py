"""GRAVITY fidelity: planted readers with a known truth (see README.md)."""
