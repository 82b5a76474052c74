"""The navigation bar's entries: each page module that wants one declares a NavItem, and the
base template shows those the visitor's roles allow."""

from __future__ import annotations

from dataclasses import dataclass

from slipstream.auth.roles import Action


@dataclass(frozen=True, slots=True)
class NavItem:
    key: str  # pages name the entry they belong to, to mark it current
    label: str
    path: str
    needs: Action  # shown only to visitors whose roles allow this
