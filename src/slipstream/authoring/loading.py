"""Importing one DAG file and finding the DAGs it defines.

This runs user code: callers (parsing, runner) do it in a child process and record tracebacks.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import types
from collections.abc import Callable
from pathlib import Path

from slipstream.authoring.dag import DAG
from slipstream.authoring.dag_context import collect_dags


def module_name_for(path: str | os.PathLike[str]) -> str:
    """A module name unique to the file's absolute path, so files that share a stem (two
    `etl.py` in different folders) never replace each other in sys.modules."""
    resolved = str(Path(path).resolve())
    digest = hashlib.sha1(resolved.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]
    stem = re.sub(r"\W", "_", Path(resolved).stem)
    return f"slipstream_dagfile_{digest}_{stem}"


def source_module_name(path: str | os.PathLike[str], tag: str) -> str:
    """The module load_dags_from_source runs the text tagged `tag` of the file at `path` in."""
    suffix = re.sub(r"\W", "_", tag)[:16]
    return f"{module_name_for(path)}_{suffix}"


def load_dags_from_file(path: str | os.PathLike[str]) -> list[DAG]:
    """Import the file at `path` as a fresh module and return the DAGs it defines, in order:
    every DAG built while it ran (even if not assigned to a global) and every DAG among its
    globals, each once. Their fileloc is set to this file, the file that rebuilds them.

    Any exception from the import propagates unchanged (the module is not left in sys.modules).
    """
    resolved = str(Path(path).resolve())
    name = module_name_for(resolved)
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {resolved!r} as a Python module", path=resolved)
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader
    return _run_module(module, resolved, lambda: loader.exec_module(module))


def load_dags_from_source(source: str, path: str | os.PathLike[str], *, tag: str) -> list[DAG]:
    """Like load_dags_from_file, but run `source`, an earlier text of the file at `path`: a run
    keeps the code of the DAG version it started with even after the file has changed. `tag`
    (the version's hash) keeps each text in a module of its own."""
    resolved = str(Path(path).resolve())
    module = types.ModuleType(source_module_name(resolved, tag))
    module.__file__ = resolved
    code = compile(source, resolved, "exec")  # tracebacks name the DAG file
    return _run_module(module, resolved, lambda: exec(code, module.__dict__))


def _run_module(module: types.ModuleType, resolved: str, run: Callable[[], None]) -> list[DAG]:
    # In sys.modules before running, as a normal import would be: pickling and inspect look
    # objects up through their module by name.
    sys.modules[module.__name__] = module
    try:
        with collect_dags() as built:
            run()
    except BaseException:
        sys.modules.pop(module.__name__, None)
        raise
    found: dict[int, DAG] = {}
    for candidate in [*built, *vars(module).values()]:
        if isinstance(candidate, DAG):
            found.setdefault(id(candidate), candidate)
    for dag in found.values():
        dag.fileloc = resolved
    return list(found.values())
