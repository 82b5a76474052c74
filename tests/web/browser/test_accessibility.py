"""Accessibility in a real browser: every main page, as an Admin, checked by script in the page
itself. Every button, link, input, select and textarea has an accessible name (its text, not
counting what is hidden from screen readers; aria-label; aria-labelledby; a <label>; or title),
and every state shown by colour (a `state-*` class) also says it in words, on it or in the
label of the icon or link it is. The pages hold a run with groups, a mapped task and a failed
task, and the Runs tab a note editor and a conf, so that what a page only shows then is
checked too."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from tests.api.conftest import ApiServer
from tests.web.browser.conftest import run_and_wait, sign_in
from tests.web.graph_example import DAG_ID, FILE_NAME, SOURCE

pytestmark = pytest.mark.slow

# Runs in the page: what is wrong on it, each as "<problem>: <the element's start>".
AUDIT = """() => {
  const problems = [];
  const start = (el) => el.outerHTML.replace(/\\s+/g, " ").slice(0, 160);
  // Text a screen reader reads out: without what is aria-hidden (visually hidden text counts).
  const spoken = (node) => {
    if (node.nodeType === Node.TEXT_NODE) return node.textContent;
    if (node.nodeType !== Node.ELEMENT_NODE) return "";
    if (node.getAttribute("aria-hidden") === "true") return "";
    if (node.tagName === "IMG") return node.getAttribute("alt") || "";
    return Array.from(node.childNodes).map(spoken).join("");
  };
  const attr = (el, name) => (el.getAttribute(name) || "").trim();
  const labelledBy = (el) => attr(el, "aria-labelledby").split(/\\s+/).filter(Boolean)
    .map((id) => document.getElementById(id)).filter(Boolean)
    .map((target) => spoken(target)).join(" ").trim();
  const labels = (el) => {
    const found = [];
    if (el.id) {
      document.querySelectorAll("label[for]").forEach((label) => {
        if (label.htmlFor === el.id) found.push(spoken(label));
      });
    }
    const wrapping = el.closest("label");
    if (wrapping) found.push(spoken(wrapping));
    return found.join(" ").trim();
  };
  const isField = (el) => ["INPUT", "SELECT", "TEXTAREA"].includes(el.tagName);
  const nameOf = (el) => {
    if (attr(el, "aria-label")) return attr(el, "aria-label");
    if (labelledBy(el)) return labelledBy(el);
    if (isField(el) && labels(el)) return labels(el);
    if (el.tagName === "INPUT" && ["submit", "button", "reset"].includes(el.type)) {
      if (attr(el, "value")) return attr(el, "value");
    }
    if (!isField(el) && spoken(el).trim()) return spoken(el).trim();
    return attr(el, "title");
  };
  const controls = document.querySelectorAll(
    "a[href], button, input:not([type=hidden]), select, textarea, summary");
  controls.forEach((el) => {
    if (!nameOf(el)) problems.push("no accessible name: " + start(el));
  });
  // A state by colour: its words on it, or in the label of the icon or link it is part of.
  document.querySelectorAll("[class*='state-']").forEach((el) => {
    if (!Array.from(el.classList).some((c) => c.startsWith("state-"))) return;
    if (spoken(el).replace(/[^\\p{L}\\p{N}]/gu, "")) return;
    const holder = el.closest("[title], [aria-label], [role=img]");
    if (holder && (attr(holder, "title") || attr(holder, "aria-label"))) return;
    problems.push("a state told by colour alone: " + start(el));
  });
  return problems;
}"""


def audit(page: Page) -> list[str]:
    problems: list[str] = page.evaluate(AUDIT)
    return [f"{page.url}: {problem}" for problem in problems]


@pytest.fixture(scope="module")
def audited_ui(ui: ApiServer) -> ApiServer:
    (ui.home / "dags" / FILE_NAME).write_text(SOURCE)
    ui.sync_dags()
    run_and_wait(ui, DAG_ID)
    assert run_and_wait(ui, "my_dag")
    return ui


def test_every_main_page_names_its_controls_and_says_its_states_in_words(
    page: Page, audited_ui: ApiServer
) -> None:
    server = audited_ui
    page.goto(f"{server.base}/sign-in")
    problems = audit(page)
    sign_in(page, server, "admin")
    runs, _ = server.runs.list_runs(DAG_ID, limit=None)
    run_path = f"/dags/{DAG_ID}/runs/{quote(runs[0].run_id, safe='')}"
    pages = [
        "/dags",
        f"/dags/{DAG_ID}/grid",
        f"/dags/{DAG_ID}/graph",
        f"/dags/{DAG_ID}/graph?collapsed=extract",
        f"/dags/{DAG_ID}/runs",
        run_path,
        "/dags/my_dag/trigger",
        f"/dags/{DAG_ID}/trigger",
        f"/dags/{DAG_ID}/code",
        f"/dags/{DAG_ID}/details",
        f"{run_path}/tasks/check_totals/log?map_index=-1&try=1",
        f"{run_path}/tasks/load?map_index=1",
        "/security/users",
        "/security/users/viewer",
        "/security/roles",
        "/security/roles/Viewer",
        "/security/tokens",
        "/account",
        "/admin/pools",
        "/admin/pools/default_pool",
        "/admin/variables",
        "/admin/connections",
    ]
    for path in pages:
        answer = page.goto(f"{server.base}{path}")
        assert answer is not None and answer.status == 200, path
        expect(page.locator("main")).to_be_visible()
        problems += audit(page)

    # The task instance panel, opened from a grid cell as a person would.
    page.goto(f"{server.base}/dags/{DAG_ID}/grid")
    page.locator('a.cell[href*="/tasks/check_totals"]').first.click()
    panel = page.locator("#ti-panel")
    expect(panel).to_contain_text("check_totals")
    expect(panel.get_by_role("link", name=re.compile("Log"))).not_to_have_count(0)
    problems += audit(page)
    # The Runs tab with a note editor open and the user menu open.
    page.goto(f"{server.base}/dags/{DAG_ID}/runs")
    page.get_by_text("Add a note").first.click()
    page.locator("details.user-menu summary").click()
    problems += audit(page)
    assert problems == []


def test_the_audit_finds_an_unnamed_control_and_a_state_in_colour_only(
    page: Page, audited_ui: ApiServer
) -> None:
    """The check itself can fail: on a page given an icon-only button, a bare input and a
    coloured square without words, it names each."""
    sign_in(page, audited_ui, "admin")
    assert audit(page) == []
    page.evaluate(
        """() => {
        const main = document.querySelector("main");
        main.insertAdjacentHTML("beforeend",
          '<button type="button"><span aria-hidden="true">x</span></button>' +
          '<input type="text" name="nameless">' +
          '<span class="sq state-failed"><span aria-hidden="true">!</span></span>');
    }"""
    )
    found = audit(page)
    assert len(found) == 3, found
    assert "no accessible name: <button" in found[0]
    assert 'no accessible name: <input type="text" name="nameless">' in found[1]
    assert 'a state told by colour alone: <span class="sq state-failed">' in found[2]
