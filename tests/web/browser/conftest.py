"""Browser tests: Debian's Chromium (/usr/bin/chromium, installed by .ci/run) driven by
Playwright for Python against a real `slipstream api-server` and scheduler with a fresh home,
the example DAGs and a few of the tests' own, and seeded users. One browser per test session;
each test gets a fresh browser context (no cookies shared between tests). Playwright never
downloads a browser of its own here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.api.conftest import ApiServer, _server
from tests.web.browser.screenshots import VIEWPORT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "Br0wser-pass-word"
TIMEOUT_MS = 15_000

# DAGs of the tests' own beside the examples: other tags, a schedule, a run that fails.
EXTRA_DAGS = {
    "quality_checks.py": """
from datetime import datetime
from slipstream import DAG, BashOperator

with DAG("quality_checks", schedule=None, start_date=datetime(2024, 1, 1),
         tags=["quality"], description="Checks that fail on purpose.",
         default_args={"owner": "data-team"}):
    BashOperator(task_id="row_counts", bash_command="echo checking; exit 1")
""",
    "hourly_sync.py": """
from datetime import datetime
from slipstream import DAG, EmptyOperator

with DAG("hourly_sync", schedule="@hourly", start_date=datetime(2024, 1, 1), catchup=False,
         tags=["sync", "ops"], default_args={"owner": "ops"}):
    EmptyOperator(task_id="sync")
""",
}


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module", params=["sqlite"])
def ui_home(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
) -> Iterator[ApiServer]:
    """A fresh home on SQLite (the server-side tests cover PostgreSQL): one per module."""
    yield from _server(request, tmp_path_factory.mktemp("ui") / "home", sqlite_template)


@pytest.fixture(scope="module")
def ui(ui_home: ApiServer) -> ApiServer:
    """A running API server and scheduler, with users: `admin` (Admin), `viewer` (Viewer),
    `scoped` (may read and edit my_dag only), all with PASSWORD."""
    server = ui_home
    for name, text in EXTRA_DAGS.items():
        (server.home / "dags" / name).write_text(text)
    server.create_user("admin", PASSWORD, "Admin")
    server.create_user("viewer", PASSWORD, "Viewer")
    for args in (
        ("roles", "create", "my_dag_team"),
        ("roles", "add-perms", "my_dag_team", "-r", "DAG:my_dag", "-a", "can_read", "can_edit"),
    ):
        assert server.slipstream(*args).returncode == 0
    server.create_user("scoped", PASSWORD, "my_dag_team")
    server.sync_dags()
    server.start()
    server.start_scheduler()
    return server


def run_and_wait(server: ApiServer, dag_id: str) -> bool:
    """Trigger a run of `dag_id` (the CLI wakes the scheduler) and wait until it ends;
    whether it succeeded."""
    result = server.slipstream("dags", "trigger", dag_id, "--wait")
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 0


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    context = chromium.new_context(
        viewport=VIEWPORT, color_scheme="light", locale="en-GB", timezone_id="UTC"
    )
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, server: ApiServer, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{server.base}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.base}/dags")
