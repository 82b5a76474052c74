"""Slipstream's benchmarks (not tests): real scheduler processes, timed from the outside.

Run with `python -m bench`; see bench/README.md for what each figure means.
"""
