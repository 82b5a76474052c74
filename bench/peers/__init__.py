"""The orchestrators Slipstream is measured against, each installed by the bench into its own
virtual environment under bench/.peers/ and driven through its own HTTP API."""
