"""`tamma-trio serve` under the fault kit: kill -9 at chosen points, and a disk that fills up.

Invariants after each fault: every acknowledged task is there, none is completed twice, the
daemon exits with a documented code, and it is ready again once the fault is gone.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import test_lifecycle
from tests.test_daemon_start import FaultyDaemon
from tests.test_lifecycle import Daemon, pr, run_cli, wait_until, write_config

daemons = test_lifecycle.daemons  # the fixture: every daemon a test starts is killed at the end


def show(config: Path, task_id: int) -> dict[str, Any]:
    code, out, err = run_cli("tasks", "show", str(task_id), "--json", "--config", str(config))
    assert code == 0, err
    shown: dict[str, Any] = json.loads(out)
    return shown


def journal_runs(tmp_path: Path, step: str) -> int:
    journal = tmp_path / "journal.txt"
    lines = journal.read_text().splitlines() if journal.exists() else []
    return sum(1 for line in lines if line.startswith(f"{step} "))


# point -> (recovered as an orphan after the restart?, times the engine ran the task)
KILL_POINTS = {
    "claimed": (True, 1),  # claimed, never started: nothing ran
    "before_complete": (True, 2),  # the work ran, its completion was never written
    "after_complete": (False, 1),  # written, then killed: nothing to redo
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_kill_9_at_a_chosen_point_loses_nothing_and_completes_once(
    tmp_path: Path, daemons: list[Daemon], point: str
) -> None:
    config = write_config(tmp_path, {})
    code, out, err = run_cli(
        "tasks", "add", "pr_review_requested", "--payload", json.dumps(pr(12)), "--config",
        str(config),
    )  # fmt: skip
    assert code == 0, err
    task_id = int(out)
    first = FaultyDaemon(config, point, "KILL", name="first").start()
    daemons.append(first)
    assert first.wait_exit() == -signal.SIGKILL, first.logs()

    second = Daemon(config, "second").start()
    daemons.append(second)
    second.wait_listening()
    wait_until(lambda: show(config, task_id)["status"] == "completed", "the task to complete")
    second.signal(signal.SIGTERM)
    assert second.wait_exit() == 0

    kinds = [event["kind"] for event in show(config, task_id)["events"]]
    recovered, runs = KILL_POINTS[point]
    assert kinds.count("completed") == 1
    assert ("orphan_recovered" in kinds) is recovered
    assert journal_runs(tmp_path, "monitor_pr") == runs


def test_a_full_disk_turns_ready_503_answers_503_and_recovers(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    config = write_config(tmp_path, {})
    daemon = FaultyDaemon(config, "--full-db").start()
    daemons.append(daemon)
    url = daemon.wait_listening()
    accepted: list[int] = []
    with httpx.Client(base_url=url, timeout=10) as http:

        def post(number: int) -> httpx.Response:
            body = {"type": "pr_review_requested", "payload": pr(number)}
            return http.post("/api/tasks", json=body)

        refused = None
        for number in range(1, 3000):
            response = post(number)
            if response.status_code != 201:
                refused = response
                break
            accepted.append(response.json()["id"])
        assert refused is not None and refused.status_code == 503, "the disk never filled"
        assert refused.headers["Retry-After"].isdigit()

        more = iter(range(50_000, 60_000))

        def not_ready() -> str | None:
            response = http.get("/ready")
            if response.status_code == 503:
                return str(response.json()["reason"])
            # A task in flight when the disk filled may still complete (its row fitted in a
            # page) and, rightly, clear the failure; with nothing in flight, the next refused
            # write is the last word.
            again = post(next(more))
            if again.status_code == 201:
                accepted.append(again.json()["id"])
            return None

        reason = wait_until(not_ready, "/ready to turn 503")
        # The store's write probe or the poller's failing claims may notice first; either way
        # the reason names the full disk.
        assert "database or disk is full" in reason
        assert reason.startswith(("store unavailable", "claiming tasks failed"))
        assert http.get("/health").status_code == 200

        daemon.signal(signal.SIGUSR1)  # the operator freed space
        assert post(100_000).status_code == 201
        wait_until(lambda: http.get("/ready").status_code == 200, "/ready to recover")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    code, out, _err = run_cli("tasks", "list", "--limit", "5000", "--json", "--config", str(config))
    stored = {task["id"] for task in json.loads(out)}
    assert code == 0 and set(accepted) <= stored  # nothing acknowledged was lost
