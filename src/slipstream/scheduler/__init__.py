"""The scheduler: one steppable pass (tick.py) and the loop that waits between passes (loop.py)."""
