"""Setup and teardown roles of a task (Airflow 2.7+), and the `with` block a setup or teardown
opens: work created inside it is wired after the block's setups and before its teardowns.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Self, cast

from slipstream.authoring.params import NOTSET, ArgNotSet
from slipstream.authoring.relations import DependencyMixin
from slipstream.authoring.trigger_rules import TriggerRule
from slipstream.errors import DagDefinitionError

if TYPE_CHECKING:
    from slipstream.authoring.task import BaseOperator


@dataclass
class _Block:
    setups: list[BaseOperator]
    teardowns: list[BaseOperator]
    created: list[BaseOperator] = field(default_factory=list)


# The open blocks, innermost last; each `with` sets a new tuple and restores the old one.
_blocks: ContextVar[tuple[_Block, ...]] = ContextVar("slipstream_setup_teardown", default=())


def record_task(task: BaseOperator) -> None:
    """Called for each new operator: the innermost open block, if any, may wire it."""
    blocks = _blocks.get()
    if blocks:
        blocks[-1].created.append(task)


def _open_block(task: BaseOperator) -> None:
    if task.is_teardown:
        block = _Block(setups=[u for u in task.upstream_list if u.is_setup], teardowns=[task])
    elif task.is_setup:
        teardowns = [d for d in task.downstream_list if d.is_teardown]
        block = _Block(setups=[task], teardowns=teardowns)
    else:
        raise DagDefinitionError(
            f"task {task.task_id!r} opens a with block but is neither a setup nor a teardown "
            "(use .as_setup() or .as_teardown())"
        )
    _blocks.set((*_blocks.get(), block))


def _close_block(*, wire: bool) -> None:
    blocks = _blocks.get()
    block = blocks[-1]
    _blocks.set(blocks[:-1])
    if not wire:
        return
    work = [t for t in block.created if not t.is_setup and not t.is_teardown]
    if work:
        roots = [t for t in work if not t.upstream_task_ids] or [work[0]]
        leaves = [t for t in work if not t.downstream_task_ids] or [work[-1]]
        for setup in block.setups:
            setup.set_downstream(roots)
        for teardown in block.teardowns:
            teardown.set_upstream(leaves)
    if len(blocks) > 1:
        # Nested blocks: the outer setups come first and the outer teardowns last.
        outer = blocks[-2]
        for setup in outer.setups:
            setup.set_downstream(block.setups)
        for teardown in outer.teardowns:
            teardown.set_upstream(block.teardowns)


class SetupTeardownRoles:
    """What BaseOperator gets for setup/teardown: the two roles, as_setup()/as_teardown(), and
    use as a context manager once it has a role."""

    task_id: str
    trigger_rule: TriggerRule
    _is_setup: bool = False
    _is_teardown: bool = False
    # A teardown's failure fails the run only if it says so (Airflow's default: it does not).
    on_failure_fail_dagrun: bool = False

    @property
    def is_setup(self) -> bool:
        return self._is_setup

    @is_setup.setter
    def is_setup(self, value: bool) -> None:
        if value and self._is_teardown:
            raise DagDefinitionError(
                f"cannot mark task {self.task_id!r} as a setup: it is already a teardown"
            )
        self._is_setup = bool(value)

    @property
    def is_teardown(self) -> bool:
        return self._is_teardown

    @is_teardown.setter
    def is_teardown(self, value: bool) -> None:
        if value and self._is_setup:
            raise DagDefinitionError(
                f"cannot mark task {self.task_id!r} as a teardown: it is already a setup"
            )
        self._is_teardown = bool(value)

    def as_setup(self) -> Self:
        """Mark this task a setup: the teardowns after it run even if the work between fails."""
        self.is_setup = True
        return self

    def as_teardown(
        self,
        *,
        setups: DependencyMixin | Sequence[DependencyMixin] | ArgNotSet = NOTSET,
        on_failure_fail_dagrun: bool | ArgNotSet = NOTSET,
    ) -> Self:
        """Mark this task a teardown (trigger rule all_done_setup_success); `setups` are marked
        setups and wired upstream of it."""
        self.is_teardown = True
        self.trigger_rule = TriggerRule.ALL_DONE_SETUP_SUCCESS
        if not isinstance(on_failure_fail_dagrun, ArgNotSet):
            self.on_failure_fail_dagrun = bool(on_failure_fail_dagrun)
        if not isinstance(setups, ArgNotSet):
            given = [setups] if isinstance(setups, DependencyMixin) else list(setups)
            for setup in given:
                as_setup = getattr(setup, "as_setup", None)
                if not callable(as_setup):
                    raise DagDefinitionError(
                        f"setups of teardown {self.task_id!r} must be tasks, not "
                        f"{type(setup).__name__}"
                    )
                as_setup()
                setup.set_downstream(self._as_task())
        return self

    def _as_task(self) -> BaseOperator:
        return cast("BaseOperator", self)  # only BaseOperator takes this mixin

    def __enter__(self) -> Self:
        _open_block(self._as_task())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _close_block(wire=exc_type is None)
