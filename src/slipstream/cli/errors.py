"""The one place where errors become CLI messages and exit codes.

Exit codes: 0 success; 1 a run or command failed; 2 bad input; 3 not found; 4 conflict;
5 configuration. Users see one clear line, never a traceback, for errors we raise on purpose.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

from slipstream.errors import (
    ConfigError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    SlipstreamError,
)

P = ParamSpec("P")
R = TypeVar("R")

_EXIT_CODES: list[tuple[type[SlipstreamError], int]] = [
    (InvalidInputError, 2),
    (NotFoundError, 3),
    (ConflictError, 4),
    (ConfigError, 5),
    (SlipstreamError, 1),
]


def exit_code_for(error: SlipstreamError) -> int:
    for kind, code in _EXIT_CODES:
        if isinstance(error, kind):
            return code
    return 1


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn our errors into `Error: <message>` on stderr and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except SlipstreamError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exit_code_for(exc))

    return wrapper
