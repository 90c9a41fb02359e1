"""The dashboard in a real browser: headless Chromium on the overview of a running daemon.

The daemon runs the fake engine with FIFO gates on two steps of an issue task, so the test
decides when the task moves on. The page is loaded once; after the first gate opens, the
overview's script must replace the running task's step without a reload. The browser waits for
that with a MutationObserver (no polling, no sleep); the only timeout is the failure bound.

Chromium missing is a failure, not a skip: CI (.ci/run) installs Debian's package.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import httpx
import pytest

from tests.cdp import chromium_path, headless_page
from tests.test_lifecycle import Daemon, add_task, daemons, pr, wait_until, write_config

__all__ = ["daemons"]  # the fixture that kills every daemon a test started

TITLE = "Make the widget <b>faster</b>"
ISSUE = {"repository": "acme/widgets", "issue": {"number": 7, "title": TITLE}}
# Set to a path to keep the screenshot (the README's docs/dashboard.png is made this way).
SCREENSHOT_ENV = "TAMMA_UI_SCREENSHOT"

STEP_BECOMES = """new Promise((resolve, reject) => {
  const read = () => {
    const cell = document.querySelector('tr[data-task="%(task)d"] td.step');
    return cell ? cell.textContent : null;
  };
  if (read() === %(step)s) { resolve(read()); return; }
  const observer = new MutationObserver(() => {
    if (read() === %(step)s) { observer.disconnect(); resolve(read()); }
  });
  observer.observe(document.getElementById('live'), { childList: true, subtree: true });
  setTimeout(() => reject(new Error('the step still reads ' + read())), %(within)d);
})"""


def step_becomes(task_id: int, step: str | None, within_ms: int = 20_000) -> str:
    """A promise resolved once the task's step cell reads ``step`` (None: its row is gone)."""
    return STEP_BECOMES % {"task": task_id, "step": json.dumps(step), "within": within_ms}


def open_gate(gate: Path) -> None:
    """Let the step waiting on ``gate`` go on; the step must already be waiting (O_NONBLOCK)."""
    fd = os.open(gate, os.O_WRONLY | os.O_NONBLOCK)
    os.close(fd)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_overview_shows_the_running_step_and_follows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], daemons: list[Daemon]
) -> None:
    if chromium_path() is None:
        pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
    gates = {step: tmp_path / f"{step}.gate" for step in ("implement_code", "run_tests")}
    for gate in gates.values():
        os.mkfifo(gate)
    # The first pull request's merge fails for good: the overview then shows a failure too.
    engine = {
        "gates": {step: str(path) for step, path in gates.items()},
        "failures": {"merge_pr": {"times": 1, "retryable": False}},
    }
    config = write_config(tmp_path, engine, max_concurrent_tasks=4)
    daemon = Daemon(config).start()
    daemons.append(daemon)
    url = daemon.wait_listening()
    for number in (101, 102, 103):
        add_task(capsys, config, "pr_review_requested", pr(number))
    task_id = add_task(capsys, config, "issue_assigned", ISSUE)
    with httpx.Client(base_url=url, timeout=10) as http:
        wait_until(lambda: _running_step(http, task_id) == "implement_code", "implement_code")
        _follow_in_the_browser(tmp_path, url, task_id, gates)
        assert _status(http, task_id) == "completed"  # off the running table: it finished


def _follow_in_the_browser(tmp_path: Path, url: str, task_id: int, gates: dict[str, Path]) -> None:
    with headless_page(tmp_path / "profile") as page:
        page.set_viewport(1100, 820)
        page.navigate(f"{url}/ui/")
        cell = f"document.querySelector('tr[data-task=\"{task_id}\"] td.step').textContent"
        assert page.evaluate(cell) == "implement_code"
        title = f"document.querySelector('tr[data-task=\"{task_id}\"] .title').textContent"
        assert page.evaluate(title) == TITLE  # shown as text, not markup
        shot = page.screenshot(tmp_path / "overview.png")
        width, height = png_size(shot)
        assert (width, height) == (1100, 820)

        open_gate(gates["implement_code"])
        assert page.evaluate(step_becomes(task_id, "run_tests"), await_promise=True) == (
            "run_tests"
        )
        assert page.evaluate("location.pathname") == "/ui/"  # the same page, never reloaded
        keep = os.environ.get(SCREENSHOT_ENV)
        if keep:
            shutil.copyfile(tmp_path / "overview.png", keep)

        open_gate(gates["run_tests"])
        assert page.evaluate(step_becomes(task_id, None), await_promise=True) is None


def _running_step(http: httpx.Client, task_id: int) -> str | None:
    events = http.get(f"/api/tasks/{task_id}").json()["events"]
    steps = [e["detail"].get("step") for e in events if e["kind"] == "step"]
    return steps[-1] if steps else None


def _status(http: httpx.Client, task_id: int) -> str:
    return str(http.get(f"/api/tasks/{task_id}").json()["status"])
