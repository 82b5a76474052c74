"""The Celery app of the Celery executor, built from settings (never a module-level app).

One task, `slipstream.run_try`, carries one try as JSON. What makes a message safe to lose or to
deliver twice is not Celery's but ours: a worker claims the try in the database before it runs
it (only one delivery wins the claim), and writes the outcome to the database before the message
is acknowledged. So: acknowledge late, take one message at a time, and keep no results.
"""

from __future__ import annotations

from celery import Celery

from slipstream.config import CelerySettings

RUN_TRY = "slipstream.run_try"
DEFAULT_QUEUE = "default"  # Airflow's [operators] default_queue


def make_app(settings: CelerySettings, *, name: str = "slipstream") -> Celery:
    app = Celery(name, broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        # JSON only: a message never carries code, and any worker version can read it.
        task_serializer="json",
        accept_content=["json"],
        # Outcomes go to the metadata database; a result backend would only duplicate them.
        task_ignore_result=True,
        result_backend=None,
        # The message is acknowledged once the try's outcome is committed: a worker killed
        # mid-try leaves it to be delivered again, and the claim decides whether it runs.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=DEFAULT_QUEUE,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout},
        broker_connection_retry_on_startup=True,
        # Flower follows tries through these events.
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        enable_utc=True,
    )
    return app
