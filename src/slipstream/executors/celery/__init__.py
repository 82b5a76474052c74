"""The Celery executor: tries published to a broker and run by `slipstream celery worker`s."""
