"""`tamma-trio serve` starting and stopping as a real process: what a failed start leaves (nothing),
signals during start-up and SIGHUP, and an API exposed beyond loopback.

Signals at chosen points come from the fault kit's failpoint runner (tests/failpoint.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests import test_e2e_workflow as e2e
from tests import test_lifecycle
from tests.test_lifecycle import (
    DEADLINE,
    REPO_ROOT,
    Daemon,
    add_task,
    pr,
    run_cli,
    status_of,
    wait_until,
    write_config,
)

daemons = test_lifecycle.daemons  # the fixture: every daemon a test starts is killed at the end


class FaultyDaemon(Daemon):
    """A daemon run through the fault kit's runner: ``faults`` are its arguments, e.g.
    ``("claimed", "KILL")`` (that signal at that point) or ``("--full-db",)``."""

    def __init__(self, config: Path, *faults: str, name: str = "daemon") -> None:
        super().__init__(config, name)
        self.faults = faults

    def start(self) -> FaultyDaemon:
        argv = [sys.executable, "-m", "tests.failpoint", *self.faults]
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [*argv, "serve", "--config", str(self.config)],
                cwd=REPO_ROOT,
                stdout=out,
                stderr=err,
            )
        return self


def files_in(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def with_port(config: Path, port: int) -> None:
    text = config.read_text().replace(
        "port = 0\n[service.metrics]", f"port = {port}\n[service.metrics]"
    )
    config.write_text(text)


# --- a failed start leaves nothing behind ---------------------------------------------------


def test_bad_engine_options_exit_2_before_any_file_exists(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"colour": "blue"})
    code, out, err = run_cli("serve", "--config", str(config))
    assert (code, out) == (2, "")
    assert "engine.colour = ***: unknown key" in err
    assert files_in(tmp_path) == ["tamma.toml"]


def test_a_start_that_fails_later_removes_the_files_it_created(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = write_config(tmp_path, {})
        with_port(config, taken.getsockname()[1])
        code, _out, err = run_cli("serve", "--config", str(config))
    assert code == 1 and "Address already in use" in err
    assert files_in(tmp_path) == ["tamma.toml"]


def test_a_failed_start_of_the_workflow_engine_removes_the_local_forge_file(
    tmp_path: Path,
) -> None:
    """Opening the workflow engine creates the local forge's own file beside the task
    database; a start that fails after that (the port is taken) removes it with the store's."""
    config = e2e.write_config(tmp_path, [sys.executable, "-c", "pass"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        text = config.read_text()
        config.write_text(
            text.replace(
                "[service.health_check]\nport = 0\n", f"[service.health_check]\nport = {port}\n"
            )
        )
        code, _out, err = run_cli("serve", "--config", str(config))
    assert code == 1 and "Address already in use" in err
    assert [name for name in files_in(tmp_path) if name.startswith("tamma.")] == ["tamma.toml"]


def test_a_failed_start_keeps_a_database_that_was_there_before(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"failures": {"initialize": {}}})
    code, out, err = run_cli(
        "tasks",
        "add",
        "pr_review_requested",
        "--payload",
        '{"repository": "acme/widgets", "pull_request": {"number": 1}}',
        "--config",
        str(config),
    )
    assert code == 0, err
    code, _out, err = run_cli("serve", "--config", str(config))
    assert code == 1 and "initialize failed" in err
    assert (tmp_path / "tasks.db").exists()
    code, out, _err = run_cli("tasks", "list", "--json", "--config", str(config))
    assert code == 0 and '"pull_request"' in out


# --- signals --------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["config_loaded", "store_opened", "engine_initialized"])
@pytest.mark.parametrize("signal_name", ["TERM", "HUP"])
def test_a_stop_signal_during_start_up_exits_0(
    tmp_path: Path, daemons: list[Daemon], point: str, signal_name: str
) -> None:
    config = write_config(tmp_path, {})
    daemon = FaultyDaemon(config, point, signal_name).start()
    daemons.append(daemon)
    assert daemon.wait_exit() == 0, daemon.logs()
    assert "Traceback" not in daemon.err.read_text()
    assert f"SIG{signal_name} received" in daemon.err.read_text()


def test_sighup_drains_like_sigterm(
    tmp_path: Path, daemons: list[Daemon], capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, {"delays": {"monitor_pr": 1.0}})
    daemon = Daemon(config).start()
    daemons.append(daemon)
    url = daemon.wait_listening()
    with httpx.Client(base_url=url, timeout=5) as http:
        task_id = add_task(capsys, config, "pr_review_requested", pr(12))
        wait_until(lambda: status_of(http, task_id) == "in_progress", "the task to start")
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: http.get("/ready").status_code == 503, "/ready to turn 503")
    assert daemon.wait_exit() == 0
    assert "SIGHUP received: draining" in daemon.err.read_text()
    code, out, _err = run_cli("tasks", "show", str(task_id), "--json", "--config", str(config))
    assert code == 0 and '"status": "completed"' in out


# --- exposure -------------------------------------------------------------------------------


def exposed_config(tmp_path: Path, api: str) -> Path:
    config = write_config(tmp_path, {})
    text = config.read_text().replace(
        "[service.health_check]\n", '[service.health_check]\nhost = "0.0.0.0"\n'
    )
    config.write_text(text.replace("[engine]\n", f"[service.api]\n{api}\n[engine]\n"))
    return config


def test_a_non_loopback_bind_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    config = exposed_config(tmp_path, "")
    code, out, err = run_cli("serve", "--config", str(config))
    assert (code, out) == (2, "")
    assert err.startswith("error: service.health_check.host = '0.0.0.0' serves the tasks API")
    assert "allow_unauthenticated = true" in err and err.count("\n") == 1
    assert files_in(tmp_path) == ["tamma.toml"]


@pytest.mark.parametrize("api", ['token = "t0ken-for-tests"', "allow_unauthenticated = true"])
def test_a_non_loopback_bind_starts_with_a_token_or_when_allowed(
    tmp_path: Path, daemons: list[Daemon], api: str
) -> None:
    daemon = Daemon(exposed_config(tmp_path, api)).start()
    daemons.append(daemon)
    assert daemon.wait_listening().startswith("http://0.0.0.0:")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(within=DEADLINE) == 0
