"""Example DAGs shipped with Slipstream and loaded by `slipstream standalone`."""
