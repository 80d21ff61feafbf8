"""GRAVITY stack: runs the services as processes (demo, `gravity up`) and the stand-in LLM server."""
