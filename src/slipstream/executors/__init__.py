"""How a Workload gets run: the Executor protocol and its implementations."""
