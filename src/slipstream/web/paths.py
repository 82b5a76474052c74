"""Where the UI may send a browser back to after a form: a path on this server only."""

from __future__ import annotations


def local_path(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this server, else `default`: never another site (`//host`,
    `/\\host` and absolute URLs are refused), so a link cannot turn a form into a redirect
    to somewhere else."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    return target
