"""The navigation bar's entries: each page module that wants one declares a NavItem, and the
base template shows those the visitor's roles allow."""

from __future__ import annotations

from dataclasses import dataclass

from slipstream.auth.roles import Action
from slipstream.web.visitor import Visitor


@dataclass(frozen=True, slots=True)
class NavItem:
    key: str  # pages name the entry they belong to, to mark it current
    label: str
    path: str
    needs: Action  # shown only to visitors whose roles allow this
    # ...or any of these (a section whose pages need different permissions).
    or_needs: tuple[Action, ...] = ()

    def is_for(self, visitor: Visitor) -> bool:
        return any(visitor.can(action) for action in (self.needs, *self.or_needs))
