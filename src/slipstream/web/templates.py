"""Rendering pages: one Jinja2 environment per app over the package's templates folder
(autoescaped, undefined names are errors), with what every page's layout needs added to each
render: the visitor, the navigation they may use, the CSRF token and the static files' URLs."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from slipstream.auth.roles import Action
from slipstream.core.states import RunState
from slipstream.web.assets import Assets
from slipstream.web.nav import NavItem
from slipstream.web.visitor import Visitor

TEMPLATES_FOLDER = Path(__file__).with_name("templates")

# States are told by a glyph and a word as well as by colour.
STATE_GLYPHS = {
    "queued": "\u2026",  # …
    "scheduled": "\u2026",
    "running": "\u25b6",  # ▶
    "success": "\u2713",  # ✓
    "failed": "\u2717",  # ✗
    "up_for_retry": "\u21bb",  # ↻
    "up_for_reschedule": "\u23f2",  # ⏲ (waiting for its next poke)
    "deferred": "\u23f8",  # ⏸ (waiting for its moment)
    "upstream_failed": "\u2717",
    "skipped": "\u2192",  # →
    "removed": "\u2212",  # minus sign
    "none": "\u00b7",  # ·
}


def when(value: datetime | None) -> str:
    """A moment as people read it here: UTC, to the second (the page's script shows it in
    the reader's own time zone)."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


class Templates:
    def __init__(
        self,
        assets: Assets,
        nav: Sequence[NavItem],
        *,
        folder: Path = TEMPLATES_FOLDER,
    ) -> None:
        self._nav = tuple(nav)
        self._env = Environment(
            loader=FileSystemLoader(folder),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # Templates ship with the package and do not change while it runs.
            auto_reload=False,
        )
        self._env.globals.update(
            static=assets.url,
            Action=Action,
            RunState=RunState,
            STATE_GLYPHS=STATE_GLYPHS,
        )
        self._env.filters.update(when=when, iso=iso)

    def nav_for(self, visitor: Visitor | None) -> list[NavItem]:
        if visitor is None:
            return []
        return [item for item in self._nav if item.is_for(visitor)]

    def render_text(self, request: Request, name: str, context: Mapping[str, Any]) -> str:
        visitor: Visitor | None = getattr(request.state, "visitor", None)
        values: dict[str, Any] = {
            "request": request,
            "visitor": visitor,
            "nav": self.nav_for(visitor),
            "nav_key": None,
            "csrf_token": visitor.csrf_token if visitor is not None else None,
            "title": None,
            # The live stream asks for changes since then (static/live.js).
            "rendered_at_ms": int(time.time() * 1000),
        }
        values.update(context)
        return self._env.get_template(name).render(values)

    def render(
        self,
        request: Request,
        name: str,
        context: Mapping[str, Any],
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        return HTMLResponse(
            self.render_text(request, name, context),
            status_code=status,
            headers=dict(headers or {}),
        )
