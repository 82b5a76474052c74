"""Pool use cases: list, read, create, change, delete, import and export pools, each write in
one transaction with its audit entry, then a wake-up so the scheduler reads the sizes again.

`default_pool` always exists: deleting or renaming it is refused, as in Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from slipstream.clock import Clock
from slipstream.core import event_log as events
from slipstream.core.ordering import check_order_by
from slipstream.core.pools import (
    DEFAULT_POOL,
    Pool,
    PoolUsage,
    check_description,
    check_include_deferred,
    check_name,
    check_slots,
)
from slipstream.errors import InvalidInputError, PoolNotFound
from slipstream.store import pools as pools_store
from slipstream.store.db import Database, retry_transient
from slipstream.store.event_log import record_event
from slipstream.wakeup import Hint, HintSender

ORDER_FIELDS = tuple(pools_store.ORDER_COLUMNS)
# What PATCH may change on default_pool (Airflow's rule: not its name nor description).
DEFAULT_POOL_FIELDS = frozenset({"slots", "include_deferred"})
FIELDS = ("name", "slots", "description", "include_deferred")


def checked(values: Mapping[str, Any]) -> dict[str, Any]:
    """Pool fields checked one by one; 400 naming the first bad one, or an unknown one."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "name":
            out[key] = check_name(value)
        elif key == "slots":
            out[key] = check_slots(value)
        elif key == "description":
            out[key] = check_description(value)
        elif key == "include_deferred":
            out[key] = check_include_deferred(value)
        else:
            raise InvalidInputError(f"unknown pool field {key!r}", field=key)
    return out


class PoolService:
    def __init__(self, db: Database, *, clock: Clock, wakeup: HintSender | None = None) -> None:
        self._db = db
        self._clock = clock
        self._wakeup = wakeup

    # ----------------------------------------------------------------- reading

    def list_pools(
        self,
        limit: int | None = None,
        offset: int = 0,
        *,
        order_by: str = "id",
        descending: bool = False,
    ) -> tuple[list[PoolUsage], int]:
        check_order_by(order_by, pools_store.ORDER_COLUMNS)
        with self._db.read() as conn:
            found, total = pools_store.list_pools(
                conn, limit=limit, offset=offset, order_by=order_by, descending=descending
            )
            return pools_store.usage(conn, found), total

    def get(self, name: str) -> PoolUsage:
        if "\x00" in name:
            raise PoolNotFound(name)
        with self._db.read() as conn:
            pool = pools_store.get_pool(conn, name)
            if pool is None:
                raise PoolNotFound(name)
            return pools_store.usage(conn, [pool])[0]

    def usage_of(self, names: Iterable[str]) -> dict[str, PoolUsage]:
        """The use of each pool of `names` that exists, by name, in one read snapshot (the
        UI's DAG and task pages); a name missing from the answer has no pool."""
        wanted = {name for name in names if "\x00" not in name}
        with self._db.read() as conn:
            found = pools_store.pools_named(conn, wanted)
            return {usage.pool.name: usage for usage in pools_store.usage(conn, found)}

    # ----------------------------------------------------------------- writing

    @retry_transient
    def create(self, pool: Pool, *, by: str | None) -> PoolUsage:
        """A new pool; ConflictError if the name is taken."""
        fields = checked(_fields_of(pool))
        now = self._clock.now()
        with self._db.write() as conn:
            stored = pools_store.insert_pool(conn, Pool(**fields))
            record_event(conn, events.POOL_SET, now, owner=by, extra=_extra(stored, "create"))
            usage = pools_store.usage(conn, [stored])[0]
        self._notify()
        return usage

    @retry_transient
    def set(self, pool: Pool, *, by: str | None) -> PoolUsage:
        """Create the pool or replace its slots, description and include_deferred (the
        CLI's `pools set` and the experimental API's POST, which are upserts)."""
        fields = checked(_fields_of(pool))
        now = self._clock.now()
        with self._db.write() as conn:
            existing = pools_store.get_pool(conn, pool.name, for_update=True)
            if existing is None:
                stored = pools_store.insert_pool(conn, Pool(**fields))
            else:
                del fields["name"]
                changed = pools_store.update_pool(conn, pool.name, fields)
                assert changed is not None
                stored = changed
            record_event(conn, events.POOL_SET, now, owner=by, extra=_extra(stored, "set"))
            usage = pools_store.usage(conn, [stored])[0]
        self._notify()
        return usage

    @retry_transient
    def update(self, name: str, changes: Mapping[str, Any], *, by: str | None) -> PoolUsage:
        """Change some of a pool's fields (`name`, `slots`, `description`,
        `include_deferred`). default_pool keeps its name and description (400)."""
        fields = checked(changes)
        if name == DEFAULT_POOL:
            if fields.get("name", DEFAULT_POOL) != DEFAULT_POOL:
                raise InvalidInputError("Default Pool's name can't be modified", field="name")
            fields.pop("name", None)
            if set(fields) - DEFAULT_POOL_FIELDS:
                raise InvalidInputError(
                    "Only slots and included_deferred can be modified on Default Pool",
                    field="update_mask",
                )
        now = self._clock.now()
        with self._db.write() as conn:
            changed = pools_store.update_pool(conn, name, fields)
            if changed is None:
                raise PoolNotFound(name)
            record_event(conn, events.POOL_SET, now, owner=by, extra=_extra(changed, "update"))
            usage = pools_store.usage(conn, [changed])[0]
        self._notify()
        return usage

    @retry_transient
    def delete(self, name: str, *, by: str | None) -> Pool:
        """Delete a pool (tries already queued or running in it run on); its tasks' next
        tries fail for want of the pool until it is made again. default_pool: 400."""
        if name == DEFAULT_POOL:
            raise InvalidInputError("Default Pool can't be deleted", field="pool_name")
        if "\x00" in name:
            raise PoolNotFound(name)
        now = self._clock.now()
        with self._db.write() as conn:
            pool = pools_store.get_pool(conn, name, for_update=True)
            if pool is None:
                raise PoolNotFound(name)
            pools_store.delete_pool(conn, name)
            record_event(conn, events.POOL_DELETE, now, owner=by, extra={"pool": name})
        self._notify()
        return pool

    @retry_transient
    def import_pools(self, data: object, *, by: str | None) -> list[Pool]:
        """Create or replace every pool of Airflow's export format, `{"name": {"slots": N,
        "description": "...", "include_deferred": false}}`, all or nothing."""
        wanted = parse_export(data)
        now = self._clock.now()
        stored: list[Pool] = []
        with self._db.write() as conn:
            for pool in wanted:
                existing = pools_store.get_pool(conn, pool.name, for_update=True)
                if existing is None:
                    done = pools_store.insert_pool(conn, pool)
                else:
                    fields = {k: v for k, v in _fields_of(pool).items() if k != "name"}
                    changed = pools_store.update_pool(conn, pool.name, fields)
                    assert changed is not None
                    done = changed
                record_event(conn, events.POOL_SET, now, owner=by, extra=_extra(done, "import"))
                stored.append(done)
        self._notify()
        return stored

    def export(self) -> dict[str, dict[str, Any]]:
        """Every pool in Airflow's export format."""
        with self._db.read() as conn:
            found, _ = pools_store.list_pools(conn)
        return {
            p.name: {
                "slots": p.slots,
                "description": p.description or "",
                "include_deferred": p.include_deferred,
            }
            for p in found
        }

    def _notify(self) -> None:
        if self._wakeup is not None:
            self._wakeup.notify(Hint.pools_changed())


def parse_export(data: object) -> list[Pool]:
    """Pools from Airflow's export format, each checked; 400 naming the first bad one."""
    if not isinstance(data, dict):
        raise InvalidInputError(
            'a pools file must hold a JSON object: {"name": {"slots": N, "description": "..."}}',
            field="file",
        )
    pools = []
    for name, spec in data.items():
        where = f"pool {name!r}"
        if not isinstance(spec, dict):
            raise InvalidInputError(f"{where}: expected an object with slots", field=name)
        unknown = set(spec) - {"slots", "description", "include_deferred"}
        if unknown:
            raise InvalidInputError(
                f"{where}: unknown field(s) {', '.join(sorted(unknown))}", field=name
            )
        if "slots" not in spec:
            raise InvalidInputError(f"{where}: slots is required", field=name)
        try:
            pool = Pool(
                name=check_name(name),
                slots=check_slots(spec["slots"]),
                description=check_description(spec.get("description")),
                include_deferred=check_include_deferred(spec.get("include_deferred", False)),
            )
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc}", field=exc.field) from None
        pools.append(pool)
    return pools


def _fields_of(pool: Pool) -> dict[str, Any]:
    return {
        "name": pool.name,
        "slots": pool.slots,
        "description": pool.description,
        "include_deferred": pool.include_deferred,
    }


def _extra(pool: Pool, how: str) -> dict[str, Any]:
    return {**_fields_of(pool), "action": how}
