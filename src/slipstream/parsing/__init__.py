"""DAG file parsing: find DAG files, import each in a forked child, hand back serialized DAGs."""
