"""What the Airflow DAG-file corpus run found: per-file results, the manifest they are judged
against, whether an error names the construct it is about, the headline figures and the
causes of failure ranked, as a table for people and JSON for the closing note."""

from __future__ import annotations

import ast
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

NO_NEEDS = "-"
CAUSE_CHARS = 110
# A generic package root names nothing: "No module named 'airflow'" does not say which of the
# file's constructs is missing.
_UNSPECIFIC = frozenset({"airflow", "slipstream"})
# Keyword names this short are too common in messages to count as naming the construct.
_MIN_KEYWORD_CHARS = 6
_FROM = re.compile(r"\b(\w+) \(from ([\w.]+)\)")


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One line of MANIFEST.tsv: where the file comes from, the Airflow major version it is
    written for, and `-` or what it needs beyond Airflow itself (a provider, a server...)."""

    path: str
    origin: str
    airflow: str
    needs: str


@dataclass(slots=True)
class DagOutcome:
    """`slipstream dags test <dag_id>` for one DAG: success, failed, timeout or error (the
    command itself failed), with the first failing task and its exception line."""

    dag_id: str
    status: str
    seconds: float
    failed_task: str | None = None
    error: str | None = None
    run_reason: str | None = None


@dataclass(slots=True)
class FileResult:
    """One DAG file, loaded alone in a fresh DAG folder, and the test of each DAG it defines."""

    path: str
    origin: str
    airflow: str
    needs: str
    loaded: bool
    import_error: str | None = None
    import_error_text: str | None = None
    dags: list[DagOutcome] = field(default_factory=list)
    construct: str | None = None
    seconds: float = 0.0

    @property
    def runnable(self) -> bool:
        return self.needs == NO_NEEDS

    @property
    def succeeded(self) -> bool:
        return self.loaded and bool(self.dags) and all(d.status == "success" for d in self.dags)

    @property
    def names_construct(self) -> bool:
        return self.construct is not None

    def cause(self) -> str | None:
        """Why the file did not run, in one line; None when it did."""
        if self.import_error is not None:
            return self.import_error
        if not self.loaded:
            return "no DAG defined"
        for dag in self.dags:
            if dag.status != "success":
                detail = dag.error or dag.run_reason or "no detail"
                task = f" [{dag.failed_task}]" if dag.failed_task else ""
                return f"dags test {dag.status}{task}: {detail}"
        return None


@dataclass(frozen=True, slots=True)
class Figures:
    """The headline: the runnable set is the files that need no provider and no outside
    system; `named` counts files with an import error that names one of their constructs."""

    files: int
    runnable: int
    loaded: int
    succeeded: int
    runnable_dags: int
    runnable_dags_succeeded: int
    runnable_unloaded: int
    runnable_unloaded_named: int
    needing: int
    needing_import_error: int
    needing_named: int


def read_manifest(path: Path) -> dict[str, ManifestRow]:
    """MANIFEST.tsv: a header line, then path, origin, airflow, needs separated by tabs."""
    rows: dict[str, ManifestRow] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != 4:
            raise ValueError(f"{path}:{number}: expected 4 tab-separated columns, got {len(cells)}")
        rows[cells[0]] = ManifestRow(*(cell.strip() for cell in cells))
    return rows


def headline(error_text: str) -> str:
    """The line that says what went wrong: the exception line ending a traceback, else the
    first line."""
    lines = [line for line in error_text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].startswith("Traceback"):
        return exception_line(lines) or lines[-1]
    return lines[0]


def exception_line(lines: list[str]) -> str | None:
    """The exception line of the last traceback in `lines`: the first unindented line after
    its frames."""
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent")]
    if not starts:
        return None
    for line in lines[starts[-1] + 1 :]:
        if line and not line[0].isspace():
            return line.strip()
    return None


def constructs(source: str) -> set[str]:
    """The names a file uses that an error about it could name: imported modules (each dotted
    prefix below the package root) and names, attributes reached from an imported name
    (`task.docker`), and keyword arguments of calls."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.update(_prefixes(alias.name))
                imported.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update(_prefixes(node.module))
            for alias in node.names:
                names.add(alias.name)
                names.add(f"{node.module}.{alias.name}")
                imported.add(alias.asname or alias.name)
        elif isinstance(node, ast.Call):
            names.update(k.arg for k in node.keywords if k.arg and len(k.arg) >= _MIN_KEYWORD_CHARS)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted and dotted.split(".")[0] in imported:
                names.update(_prefixes(dotted)[1:])
    return names - _UNSPECIFIC


def _prefixes(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def named_construct(message: str, candidates: set[str]) -> str | None:
    """The candidate that `message` names first, as a whole word (the longest where several
    start at the same place): "TaskGroup (from airflow.sdk) is not available" names TaskGroup,
    and "utils (from airflow)" names airflow.utils."""
    found: list[tuple[int, int, str]] = []
    for name in candidates:
        match = re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", message)
        if match:
            found.append((match.start(), -len(name), name))
    for match in _FROM.finditer(message):
        joined = f"{match[2]}.{match[1]}"
        if joined in candidates:
            found.append((match.start(), -len(joined), joined))
    return min(found)[2] if found else None


def figures(results: list[FileResult]) -> Figures:
    runnable = [r for r in results if r.runnable]
    needing = [r for r in results if not r.runnable]
    unloaded = [r for r in runnable if not r.loaded]
    dags = [d for r in runnable for d in r.dags]
    return Figures(
        files=len(results),
        runnable=len(runnable),
        loaded=sum(r.loaded for r in runnable),
        succeeded=sum(r.succeeded for r in runnable),
        runnable_dags=len(dags),
        runnable_dags_succeeded=sum(d.status == "success" for d in dags),
        runnable_unloaded=len(unloaded),
        runnable_unloaded_named=sum(r.names_construct for r in unloaded),
        needing=len(needing),
        needing_import_error=sum(r.import_error is not None for r in needing),
        needing_named=sum(r.import_error is not None and r.names_construct for r in needing),
    )


def top_causes(results: list[FileResult], limit: int = 10) -> list[tuple[str, list[str]]]:
    """The causes of failure shared by most files, most first, with the files showing each."""
    by_cause: dict[str, list[str]] = defaultdict(list)
    for result in results:
        cause = result.cause()
        if cause is not None:
            by_cause[_short(cause)].append(result.path)
    ranked = sorted(by_cause.items(), key=lambda item: (-len(item[1]), item[0]))
    return ranked[:limit]


def top_constructs(results: list[FileResult], limit: int = 10) -> list[tuple[str, int]]:
    """The constructs that failing files' errors name, by how many files name each."""
    counts = Counter(r.construct for r in results if r.construct and not r.succeeded)
    return counts.most_common(limit)


def _short(text: str) -> str:
    return text if len(text) <= CAUSE_CHARS else text[: CAUSE_CHARS - 3] + "..."


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def table(results: list[FileResult]) -> str:
    """One line per file: version, needs, loaded, DAGs passing `dags test`, and the cause."""
    width = max([len(r.path) for r in results] + [4])
    lines = [f"{'file':<{width}}  af  needs  load  dags   cause"]
    for r in results:
        needs = "-" if r.runnable else "yes"
        passed = f"{sum(d.status == 'success' for d in r.dags)}/{len(r.dags)}"
        load = "yes" if r.loaded else "NO"
        lines.append(
            f"{r.path:<{width}}  {r.airflow:<2}  {needs:<5}  {load:<4}  {passed:<5}  "
            f"{_short(r.cause() or 'ok')}"
        )
    return "\n".join(lines)


def summary(results: list[FileResult]) -> str:
    """The headline figures, the top causes with their files, and the constructs named."""
    f = figures(results)
    lines = [
        f"files: {f.files}; runnable (no provider, no outside system): {f.runnable}; "
        f"needing a provider or an outside system: {f.needing}",
        f"loaded:            {f.loaded}/{f.runnable} runnable ({_percent(f.loaded, f.runnable)})",
        f"dags test success: {f.succeeded}/{f.runnable} runnable files "
        f"({_percent(f.succeeded, f.runnable)}); "
        f"{f.runnable_dags_succeeded}/{f.runnable_dags} of their DAGs",
        f"runnable files not loading whose import error names the construct: "
        f"{f.runnable_unloaded_named}/{f.runnable_unloaded}",
        f"needing files with an import error naming the construct: "
        f"{f.needing_named}/{f.needing} ({f.needing_import_error} with any import error)",
        "",
        "top causes of failure (files):",
    ]
    for cause, paths in top_causes(results):
        shown = ", ".join(paths[:6]) + (f", +{len(paths) - 6} more" if len(paths) > 6 else "")
        lines.append(f"  {len(paths):>3}  {cause}")
        lines.append(f"       {shown}")
    constructs_named = top_constructs(results)
    if constructs_named:
        lines.append("")
        lines.append("constructs named by failing files' errors:")
        lines.extend(f"  {count:>3}  {name}" for name, count in constructs_named)
    return "\n".join(lines)


def airflow_imports(source: str) -> set[str]:
    """`module.name` for each name a file imports from an `airflow` module (`module` alone for
    `import airflow...`)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "airflow")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "airflow":
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def inventory(corpus: Path, results: list[FileResult], limit: int = 40) -> str:
    """The airflow names the corpus imports, by how many files import each, with how many of
    those files are in the runnable set."""
    every: Counter[str] = Counter()
    runnable: Counter[str] = Counter()
    for result in results:
        names = airflow_imports((corpus / result.path).read_text(encoding="utf-8"))
        every.update(names)
        if result.runnable:
            runnable.update(names)
    lines = [f"airflow imports (files; runnable files), {len(every)} distinct:"]
    lines.extend(
        f"  {count:>3} {runnable[name]:>3}  {name}" for name, count in every.most_common(limit)
    )
    return "\n".join(lines)
