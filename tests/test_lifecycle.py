"""`tamma-trio serve` as a real process: HTTP on loopback, real signals, kill -9 and restart.

The daemon runs the fake engine from tests/ on a SQLite file in tmp_path with ports 0, and
prints ``listening health=URL metrics=URL`` once it serves; tasks are added with the CLI.
Every wait polls a condition against a deadline; nothing sleeps a fixed time to synchronise.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tamma_trio.cli import main as cli_main

REPO_ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 20.0
SERVE = (sys.executable, "-m", "tamma_trio", "serve")


def wait_until(condition: Callable[[], Any], what: str, within: float = DEADLINE) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` on timeout."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def write_config(tmp_path: Path, engine: dict[str, Any], **service: Any) -> Path:
    """A config on ports 0 with the fake engine; ``engine`` holds its options."""
    lines = [
        "[service]",
        "poll_interval = 0.2",
        "retry_delay = 0.2",
        *(f"{key} = {json.dumps(value)}" for key, value in service.items()),
        "[service.queue.sqlite]",
        f"path = {json.dumps(str(tmp_path / 'tasks.db'))}",
        "[service.health_check]",
        "port = 0",
        "[service.metrics]",
        "port = 0",
        "[engine]",
        'name = "tests.fake_engine:create"',
        f"journal = {json.dumps(str(tmp_path / 'journal.txt'))}",
        *(f"{key} = {_toml(value)}" for key, value in engine.items()),
    ]
    path = tmp_path / "tamma.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


class Daemon:
    """One `tamma-trio serve` process; its stdout and stderr go to files in tmp_path."""

    def __init__(
        self,
        config: Path,
        name: str = "daemon",
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.args = args
        self.env = env
        self.out = config.parent / f"{name}.out"
        self.err = config.parent / f"{name}.err"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> Daemon:
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [*SERVE, "--config", str(self.config), *self.args],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=out,
                stderr=err,
            )
        return self

    def wait_listening(self, within: float = DEADLINE) -> str:
        line = wait_until(self._listening_line, f"the daemon to listen ({self.logs()})", within)
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        assert fields["health"] == fields["metrics"]  # equal ports: one server
        self.url = fields["health"]
        return self.url

    def _listening_line(self) -> str | None:
        self._check_alive()
        for line in self.out.read_text().splitlines():
            if line.startswith("listening "):
                return line
        return None

    def _check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the daemon exited early: {self.logs()}")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait_exit(self, within: float = DEADLINE) -> int:
        assert self.process is not None
        return self.process.wait(timeout=within)

    def logs(self) -> str:
        return f"stdout: {self.out.read_text()!r} stderr: {self.err.read_text()[-3000:]!r}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=DEADLINE)


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Every daemon a test starts is killed at the end, whatever happened."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.stop()


def run_cli(*args: str) -> tuple[int, str, str]:
    """The CLI in a child process: its own trio run, its own store connection."""
    done = subprocess.run(
        [sys.executable, "-m", "tamma_trio", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def add_task(
    capsys: pytest.CaptureFixture[str], config: Path, type_name: str, payload: dict[str, Any]
) -> int:
    """`tamma-trio tasks add`, in this process (a second interpreter per task is slow)."""
    capsys.readouterr()
    argv = ["tasks", "add", type_name, "--payload", json.dumps(payload), "--config", str(config)]
    assert cli_main(argv) == 0
    return int(capsys.readouterr().out.strip())


def pr(number: int) -> dict[str, Any]:
    return {"repository": "acme/widgets", "pull_request": {"number": number}}


def get_task(http: httpx.Client, task_id: int) -> dict[str, Any]:
    response = http.get(f"/api/tasks/{task_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def status_of(http: httpx.Client, task_id: int) -> str:
    return str(get_task(http, task_id)["status"])


def completed(http: httpx.Client, task_id: int) -> Callable[[], bool]:
    """A check for wait_until: has the task completed?"""
    return lambda: status_of(http, task_id) == "completed"


def completed_events(http: httpx.Client, task_id: int) -> int:
    events = get_task(http, task_id)["events"]
    return sum(1 for event in events if event["kind"] == "completed")


# --- the tests ------------------------------------------------------------------------------


def test_serve_runs_tasks_and_answers_health_ready_and_metrics(
    tmp_path: Path, daemons: list[Daemon], capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, {})
    daemon = Daemon(config).start()
    daemons.append(daemon)
    url = daemon.wait_listening()
    issue = {"repository": "acme/widgets", "issue": {"number": 7, "title": "t"}}
    chatter = {**issue, "comment": {"body": "thanks!", "author": "alice"}}
    ids = [
        add_task(capsys, config, "issue_assigned", issue),
        add_task(capsys, config, "pr_review_requested", pr(12)),
        add_task(capsys, config, "issue_comment", chatter),
    ]
    with httpx.Client(base_url=url, timeout=5) as http:
        for task_id in ids:
            wait_until(completed(http, task_id), f"task {task_id}")
        actions = [get_task(http, task_id)["result"]["action"] for task_id in ids]
        assert actions == ["auto_approved", "merged", "ignored"]
        health = http.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "healthy"
        assert health.json()["components"]["engine"] == "FakeEngine"
        assert http.get("/ready").status_code == 200
        metrics = http.get("/metrics").text
        assert 'tamma_task_outcomes_total{outcome="completed",type="issue_assigned"} 1.0' in metrics
        assert "_created" not in metrics  # serve turns the series off for its process
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    assert "stopped: 3 completed, 0 interrupted" in daemon.err.read_text()


def test_sigterm_waits_for_the_slow_task_then_exits_0(
    tmp_path: Path, daemons: list[Daemon], capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, {"delays": {"monitor_pr": 2.0}})
    daemon = Daemon(config).start()
    daemons.append(daemon)
    url = daemon.wait_listening()
    with httpx.Client(base_url=url, timeout=5) as http:
        task_id = add_task(capsys, config, "pr_review_requested", pr(12))
        wait_until(lambda: status_of(http, task_id) == "in_progress", "the task to start")
        daemon.signal(signal.SIGTERM)
        ready = wait_until(
            lambda: http.get("/ready").status_code == 503 or None, "/ready to turn 503"
        )
        assert ready
        assert http.get("/health").status_code == 200
        # Intake still accepts while draining (from loopback, no token configured).
        late = http.post("/api/tasks", json={"type": "pr_review_requested", "payload": pr(13)})
        assert late.status_code == 201
    assert daemon.wait_exit() == 0
    code, out, err = run_cli("tasks", "list", "--json", "--config", str(config))
    assert code == 0, err
    statuses = {task["id"]: task["status"] for task in json.loads(out)}
    assert statuses == {task_id: "completed", late.json()["id"]: "queued"}


def test_a_second_signal_stops_at_once_and_hands_the_task_back(
    tmp_path: Path, daemons: list[Daemon], capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, {"delays": {"monitor_pr": 60.0}})
    daemon = Daemon(config).start()
    daemons.append(daemon)
    url = daemon.wait_listening()
    with httpx.Client(base_url=url, timeout=5) as http:
        task_id = add_task(capsys, config, "pr_review_requested", pr(12))
        wait_until(lambda: status_of(http, task_id) == "in_progress", "the task to start")
    daemon.signal(signal.SIGTERM)
    wait_until(lambda: "draining" in daemon.err.read_text(), "the drain to begin")
    daemon.signal(signal.SIGINT)
    assert daemon.wait_exit(within=10) == 1
    code, out, _ = run_cli("tasks", "show", str(task_id), "--json", "--config", str(config))
    assert code == 0
    shown = json.loads(out)
    assert (shown["status"], shown["attempts"]) == ("queued", 0)


def test_kill_9_loses_no_task_and_completes_none_twice(
    tmp_path: Path, daemons: list[Daemon], capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, {"delays": {"monitor_pr": 0.5}}, max_concurrent_tasks=4)
    first = Daemon(config, "first").start()
    daemons.append(first)
    url = first.wait_listening()
    ids = [add_task(capsys, config, "pr_review_requested", pr(n)) for n in range(1, 13)]
    with httpx.Client(base_url=url, timeout=5) as http:

        def some_done_some_running() -> bool:
            statuses = [status_of(http, task_id) for task_id in ids]
            return "completed" in statuses and "in_progress" in statuses

        wait_until(some_done_some_running, "work in flight")
    assert first.process is not None
    os.kill(first.process.pid, signal.SIGKILL)
    assert first.wait_exit() == -signal.SIGKILL

    second = Daemon(config, "second").start()
    daemons.append(second)
    url = second.wait_listening()
    with httpx.Client(base_url=url, timeout=5) as http:
        for task_id in ids:
            wait_until(completed(http, task_id), f"task {task_id}")
        assert [completed_events(http, task_id) for task_id in ids] == [1] * len(ids)
        recovered = [
            task_id
            for task_id in ids
            if any(e["kind"] == "orphan_recovered" for e in get_task(http, task_id)["events"])
        ]
    assert recovered  # the tasks in flight at the kill were handed back, then finished
    assert "recovered" in second.err.read_text()
    second.signal(signal.SIGTERM)
    assert second.wait_exit() == 0


def test_a_second_daemon_on_the_same_file_refuses_to_start(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    config = write_config(tmp_path, {})
    first = Daemon(config, "first").start()
    daemons.append(first)
    first.wait_listening()
    second = Daemon(config, "second").start()
    daemons.append(second)
    assert second.wait_exit() == 1
    assert f"error: another tamma-trio daemon is using {tmp_path / 'tasks.db'}" in (
        second.err.read_text()
    )
    assert second.out.read_text() == ""
    first.signal(signal.SIGTERM)
    assert first.wait_exit() == 0


def test_a_taken_port_is_one_clear_error_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, {})
        text = config.read_text().replace(
            "port = 0\n[service.metrics]", f"port = {port}\n[service.metrics]"
        )
        config.write_text(text)
        code, _out, err = run_cli("serve", "--config", str(config))
    assert code == 1
    assert err == f"error: cannot serve health on 127.0.0.1:{port}: Address already in use\n"


@pytest.mark.parametrize(
    ("engine_name", "message"),
    [
        ("nonsense", "error: engine.name 'nonsense' is neither a built-in engine"),
        ("tests.nowhere:create", "error: engine.name 'tests.nowhere:create': cannot import"),
    ],
)
def test_a_bad_engine_is_refused_at_start_with_exit_2(
    tmp_path: Path, engine_name: str, message: str
) -> None:
    config = write_config(tmp_path, {})
    config.write_text(
        config.read_text().replace('"tests.fake_engine:create"', json.dumps(engine_name))
    )
    code, out, err = run_cli("serve", "--config", str(config))
    assert code == 2
    assert message in err
    assert out == ""


def test_an_engine_that_cannot_start_is_one_clear_error_and_exit_1(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"failures": {"initialize": {}}})
    code, out, err = run_cli("serve", "--config", str(config))
    assert code == 1
    assert err.endswith("error: initialize failed (injected)\n")
    assert "Traceback" not in err and out == ""
    # A failed start leaves nothing behind: the database it created and its lock are gone.
    assert not (tmp_path / "tasks.db").exists() and not (tmp_path / "tasks.db.lock").exists()


def test_engine_options_it_does_not_know_are_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"colour": "blue"})
    code, out, err = run_cli("serve", "--config", str(config))
    assert code == 2
    assert err == (
        "error: invalid [engine] options for 'tests.fake_engine:create'\n"
        "  engine.colour = ***: unknown key\n"
    )
    assert out == ""
