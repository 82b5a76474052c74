"""The pure domain: states, records and scheduling decisions. No I/O, no SQL, no user code."""
