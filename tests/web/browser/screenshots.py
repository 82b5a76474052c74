"""Screenshots of the UI for docs/screenshots/, taken by the browser tests while they walk
their journeys, only when SLIPSTREAM_SCREENSHOTS=1 (so an ordinary test run writes nothing
into the checkout). Always the same window size and light theme, so they compare over time.

Refresh them all with one command, from the checkout's root:

    python -m tests.web.browser.screenshots     (extra arguments go to pytest, e.g. -k users)

which runs the browser journeys (tests/web/browser) with SLIPSTREAM_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page

FOLDER = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
ENABLED = "SLIPSTREAM_SCREENSHOTS"
VIEWPORT = {"width": 1280, "height": 800}


def enabled() -> bool:
    return os.environ.get(ENABLED) == "1"


def screenshot(page: Page, name: str) -> Path | None:
    """Save the page as docs/screenshots/<name>.png when screenshots are enabled; the path
    written, or None."""
    if not enabled():
        return None
    FOLDER.mkdir(parents=True, exist_ok=True)
    path = FOLDER / f"{name}.png"
    page.screenshot(path=str(path), full_page=False, animations="disabled", caret="hide")
    return path


def main(argv: list[str]) -> int:
    """Run the browser journeys with screenshots on; pytest's exit code."""
    os.environ[ENABLED] = "1"
    journeys = Path(__file__).resolve().parent
    code = pytest.main([str(journeys), *argv])
    written = sorted(p.name for p in FOLDER.glob("*.png"))
    print(f"docs/screenshots/: {', '.join(written)}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
