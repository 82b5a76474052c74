"""Who is looking at a page: the signed-in user, what their roles grant (the same Grants the
API checks), and the CSRF token of their session, with the questions templates ask."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from slipstream.auth.permissions import DagScope, Grants
from slipstream.auth.roles import Action
from slipstream.core.records import User


@dataclass(frozen=True, slots=True)
class Visitor:
    user: User
    grants: Grants
    csrf_token: str

    @property
    def name(self) -> str:
        full = f"{self.user.first_name} {self.user.last_name}".strip()
        return full or self.user.username

    def can(self, action: Action) -> bool:
        """The resource permission for `action` (DAG access aside)."""
        return self.grants.allows(action)

    def can_on_dag(self, action: Action, dag_id: str, tags: Iterable[str]) -> bool:
        return self.grants.allows_on_dag(action, dag_id, tags)

    def sees_dag(self, dag_id: str, tags: Iterable[str]) -> bool:
        return self.grants.sees_dag(dag_id, tags)

    def scope(self, action: Action) -> DagScope:
        """The DAGs a listing for `action` may show."""
        return self.grants.scope_for(action)
