"""The `slipstream` command line: parse, build Settings, call one service, map the outcome."""
