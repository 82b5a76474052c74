"""The Celery app of the Celery executor, built from settings (never a module-level app).

One task, `slipstream.run_try`, carries one try as JSON. What makes a message safe to lose or to
deliver twice is not Celery's but ours: a worker claims the try in the database before it runs
it (only one delivery wins the claim), and writes the outcome to the database before the message
is acknowledged. So: acknowledge late, take one message at a time, and keep no results.
"""

from __future__ import annotations

from celery import Celery

from slipstream.config import CelerySettings
from slipstream.core.records import TaskKey

RUN_TRY = "slipstream.run_try"
RUN_CALLBACKS = "slipstream.run_callbacks"
# The remote-control command a worker acts on to stop tries it runs (a person's mark or clear,
# a timeout): arguments {"keys": [[run_pk, task_id, try_number, map_index], ...]}.
STOP_TRIES = "slipstream_stop_tries"
DEFAULT_QUEUE = "default"  # Airflow's [operators] default_queue
# The shape of a message's body; a worker refuses any other by name.
MESSAGE_VERSION = 1


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
        broker_transport_options=_transport_options(settings),
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        # A broker restart must not touch running tries: their outcomes go to the database.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # Task events cost every try a few publishes: off unless something watches. Flower
        # turns them on in the workers while it runs (its enable_events), and the publisher's
        # task-sent event is not needed by it.
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
        enable_utc=True,
    )
    return app


def _transport_options(settings: CelerySettings) -> dict[str, object]:
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return {
            "visibility_timeout": settings.visibility_timeout,
            # Unacknowledged messages of a dead worker come back within about 10 s of the
            # visibility timeout, not Redis's default 100 s.
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
            "socket_timeout": 5,
            "socket_connect_timeout": 5,
        }
    return {"confirm_publish": True}


def task_id_for(key: TaskKey) -> str:
    """The message's task id: Flower and `celery inspect` name the try."""
    return f"try:{key.run_pk}:{key.map_index}:{key.try_number}:{key.task_id}"
