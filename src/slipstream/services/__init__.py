"""Use cases: the one door through which the API, web UI and CLI change or read state."""
