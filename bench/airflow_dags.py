"""`python -m bench.airflow_dags <folder>`: load each Airflow DAG file of a corpus alone in a
fresh Slipstream home through the real CLI (`dags list-import-errors`, `dags list`), run
`dags test` on every DAG it defines under a per-DAG timeout, and report what loads, what runs,
and why the rest does not (bench/airflow_dags_report.py)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.airflow_dags_report import (
    NO_NEEDS,
    DagOutcome,
    FileResult,
    ManifestRow,
    constructs,
    exception_line,
    figures,
    headline,
    inventory,
    named_construct,
    read_manifest,
    summary,
    table,
)

DAG_TEST_TIMEOUT_S = 60.0
# Listing parses the single file in a forked child (import timeout 30 s by default).
LIST_TIMEOUT_S = 120.0
_TRY_HEADER = re.compile(r"^--- (?P<task>.+) \(try (?P<try>\d+)\) ---$")
_MARKING = re.compile(r"Marking try as (?P<state>[A-Z_]+)")
_FINISHED = re.compile(r"^Run \S+ finished: (?P<state>\w+)(?: \((?P<reason>.*)\))?$", re.M)
_FAILING = {"FAILED", "UP_FOR_RETRY"}


@dataclass(frozen=True, slots=True)
class Finished:
    """A CLI command that ran to its end (`returncode` set) or was killed at its timeout."""

    returncode: int | None
    stdout: str
    stderr: str
    seconds: float


def default_command() -> list[str]:
    return [sys.executable, "-m", "slipstream.cli.main"]


def run_command(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> Finished:
    """Run `argv` in its own process group, output to files (no pipe can fill up); at the
    timeout kill the whole group, so a task's children die with it."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
            start_new_session=True,
        )  # fmt: skip
        returncode: int | None
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            returncode = None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.seek(0)
        err.seek(0)
        return Finished(
            returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            time.monotonic() - start,
        )


def _json_list(text: str) -> list[dict[str, Any]]:
    start = text.find("[")
    if start < 0:
        return []
    value = json.loads(text[start:])
    return value if isinstance(value, list) else []


def failing_try(stdout: str) -> tuple[str | None, str | None]:
    """The first task whose try failed (or went up for retry) in `dags test` output, and the
    exception line of its log (else its last ERROR line)."""
    blocks: list[tuple[str, list[str]]] = []
    for line in stdout.splitlines():
        header = _TRY_HEADER.match(line)
        if header:
            blocks.append((header["task"], []))
        elif blocks:
            blocks[-1][1].append(line)
    for task, lines in blocks:
        states = [m["state"] for line in lines if (m := _MARKING.search(line))]
        if not states or states[-1] not in _FAILING:
            continue
        error = exception_line(lines)
        if error is None:
            errors = [line.split(" ERROR - ", 1)[1] for line in lines if " ERROR - " in line]
            error = errors[-1].strip() if errors else None
        return task, error
    return None, None


class CorpusRun:
    """Runs files of one corpus folder against one Slipstream command."""

    def __init__(self, corpus: Path, command: list[str], timeout: float, workdir: Path) -> None:
        self.corpus = corpus
        self.command = command
        self.timeout = timeout
        self.workdir = workdir
        self._template = workdir / "template"

    def _env(self, home: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPSTREAM_")}
        env.update(
            SLIPSTREAM_HOME=str(home),
            SLIPSTREAM_DAGS_FOLDER=str(home / "dags"),
            SLIPSTREAM_LOAD_EXAMPLES="false",
        )
        return env

    def prepare(self) -> None:
        """Migrate one metadata database that each file's home starts from as a copy."""
        (self._template / "dags").mkdir(parents=True)
        done = run_command(
            [*self.command, "db", "migrate"], self._env(self._template), self._template,
            LIST_TIMEOUT_S,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"`slipstream db migrate` failed: {done.stderr.strip()[-500:]}")

    def _cli(self, home: Path, args: list[str], timeout: float) -> Finished:
        return run_command([*self.command, *args], self._env(home), home, timeout)

    def run_file(self, path: Path, row: ManifestRow) -> FileResult:
        start = time.monotonic()
        home = Path(tempfile.mkdtemp(prefix="home-", dir=self.workdir))
        try:
            (home / "dags").mkdir()
            for db_file in self._template.glob("slipstream.db*"):
                shutil.copy2(db_file, home / db_file.name)
            shutil.copy2(path, home / "dags" / path.name)
            result = self._load_and_test(home, row)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        message = result.cause()
        if message is not None:
            source = path.read_text(encoding="utf-8", errors="replace")
            result.construct = named_construct(message, constructs(source))
        result.seconds = time.monotonic() - start
        return result

    def _load_and_test(self, home: Path, row: ManifestRow) -> FileResult:
        result = FileResult(row.path, row.origin, row.airflow, row.needs, loaded=False)
        errors = self._cli(home, ["dags", "list-import-errors", "-o", "json"], LIST_TIMEOUT_S)
        if errors.returncode != 0:
            result.import_error = f"list-import-errors failed: {headline(errors.stderr)}"
            return result
        found = _json_list(errors.stdout)
        if found:
            text = str(found[0].get("error", ""))
            result.import_error = headline(text)
            result.import_error_text = text
            return result
        listed = self._cli(home, ["dags", "list", "-o", "json"], LIST_TIMEOUT_S)
        if listed.returncode != 0:
            result.import_error = f"dags list failed: {headline(listed.stderr)}"
            return result
        dag_ids = sorted(str(d["dag_id"]) for d in _json_list(listed.stdout))
        result.loaded = bool(dag_ids)
        result.dags = [self._test(home, dag_id) for dag_id in dag_ids]
        return result

    def _test(self, home: Path, dag_id: str) -> DagOutcome:
        done = self._cli(home, ["dags", "test", dag_id], self.timeout)
        task, error = failing_try(done.stdout)
        finished = _FINISHED.search(done.stderr)
        reason = finished["reason"] if finished else None
        if done.returncode is None:
            status = "timeout"
            error = f"no result after {self.timeout:g} s" + (f"; {error}" if error else "")
        elif done.returncode == 0:
            status = "success"
        elif finished is not None:
            status = "failed"
        else:
            status = "error"
            error = error or headline(done.stderr) or f"exit code {done.returncode}"
        return DagOutcome(dag_id, status, round(done.seconds, 2), task, error, reason)


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*.py") if p.is_file())


def run_corpus(
    corpus: Path,
    manifest: dict[str, ManifestRow],
    *,
    command: list[str] | None = None,
    timeout: float = DAG_TEST_TIMEOUT_S,
    jobs: int = 1,
    progress: Callable[[FileResult], None] | None = None,
) -> list[FileResult]:
    """Every .py file under `corpus`, each alone in its own Slipstream home; a file missing
    from the manifest counts as runnable, of unknown origin."""
    rows = []
    for path in corpus_files(corpus):
        rel = path.relative_to(corpus).as_posix()
        rows.append((path, manifest.get(rel) or ManifestRow(rel, "?", "?", NO_NEEDS)))
    with tempfile.TemporaryDirectory(prefix="slipstream-airflow-dags-") as tmp:
        runner = CorpusRun(corpus, command or default_command(), timeout, Path(tmp))
        runner.prepare()

        def one(item: tuple[Path, ManifestRow]) -> FileResult:
            result = runner.run_file(*item)
            if progress is not None:
                progress(result)
            return result

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            return list(pool.map(one, rows))


def slipstream_commit(command: list[str]) -> str | None:
    """The git commit of the Slipstream that `command` runs (an editable install), when the
    command is `<python> -m <module>` and that checkout is a git work tree."""
    if len(command) < 3 or command[1] != "-m":
        return None
    where = subprocess.run(
        [command[0], "-c", "import slipstream; print(slipstream.__file__)"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if where.returncode != 0 or not where.stdout.strip():
        return None
    done = subprocess.run(
        ["git", "-C", str(Path(where.stdout.strip()).parent), "rev-parse", "HEAD"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip() or None


def write_json(path: Path, results: list[FileResult], commit: str | None) -> None:
    payload = {
        "slipstream_commit": commit,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "figures": asdict(figures(results)),
        "files": [
            {**asdict(r), "runnable": r.runnable, "succeeded": r.succeeded, "cause": r.cause()}
            for r in results
        ],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.airflow_dags", description=__doc__)
    parser.add_argument("folder", type=Path, help="corpus folder of DAG files (searched deeply)")
    parser.add_argument(
        "--manifest", type=Path, help="MANIFEST.tsv (default: <folder>/MANIFEST.tsv if present)"
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--timeout", type=float, default=DAG_TEST_TIMEOUT_S, help="per DAG test")
    parser.add_argument("--jobs", type=int, default=1, help="files run at once")
    parser.add_argument(
        "--slipstream",
        help="command that runs the CLI, e.g. '/other/venv/bin/python -m slipstream.cli.main'",
    )
    parser.add_argument(
        "--inventory", action="store_true", help="also list the airflow names the files import"
    )
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    manifest_path = args.manifest or args.folder / "MANIFEST.tsv"
    manifest = read_manifest(manifest_path) if manifest_path.exists() else {}
    command = shlex.split(args.slipstream) if args.slipstream else default_command()
    commit = slipstream_commit(command)

    def progress(result: FileResult) -> None:
        state = "ok" if result.succeeded else (result.cause() or "")[:90]
        print(f"[{result.seconds:5.1f}s] {result.path}: {state}", file=sys.stderr, flush=True)

    results = run_corpus(
        args.folder, manifest, command=command, timeout=args.timeout, jobs=args.jobs,
        progress=progress,
    )  # fmt: skip
    print(table(results))
    print()
    print(f"slipstream commit: {commit or 'unknown'}")
    print(summary(results))
    if args.inventory:
        print()
        print(inventory(args.folder, results))
    if args.out:
        write_json(args.out, results, commit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
