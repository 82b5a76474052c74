"""One router per API surface: the 1.10 experimental API and the stable /api/v1."""
