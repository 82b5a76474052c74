"""Who may do what: password hashing (argon2id) and the built-in roles' permissions.

Pure functions and data; no database, no web framework. Services decide with these."""
