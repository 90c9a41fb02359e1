"""Outbound webhooks and `tamma-trio events` with a real `tamma-trio serve`, a real receiver on
loopback (tests/webhook_receiver.py) and the real CLI: signed JSON and the Slack shape, a 500
answered by a later redelivery, a notification pending at SIGTERM delivered once after a
restart, dead deliveries listed and retried, `events --follow --json`, and config errors that
name the key without printing the URL or the secret. Waits poll conditions, never sleep."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tamma_trio.cli import main as cli_main
from tests.test_lifecycle import DEADLINE, REPO_ROOT, Daemon, daemons, pr, run_cli, write_config
from tests.webhook_receiver import Received, Receiver, free_port, receiving

__all__ = ["daemons"]  # the fixture, imported for pytest

SECRET = "whsec-for-the-test"
HOOK_PATH = "/hooks/T0/B0/hidden-token-in-path"
CLI = [sys.executable, "-m", "tamma_trio"]


def poll(condition: Callable[[], Any], what: str, within: float = DEADLINE) -> Any:
    """Like wait_until, but gentler: each look opens the store, which costs the daemon CPU."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def with_notify(config: Path, *targets: dict[str, Any]) -> Path:
    text = config.read_text()
    for target in targets:
        text += "\n[[notify]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in target.items())
    config.write_text(text)
    return config


def start(daemons: list[Daemon], config: Path, name: str = "daemon") -> Daemon:
    daemon = Daemon(config, name).start()
    daemons.append(daemon)
    daemon.wait_listening()
    return daemon


def stop(daemon: Daemon) -> None:
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0, daemon.logs()


def notifications(config: Path, *flags: str) -> list[dict[str, Any]]:
    """`notify list --json`, in this process (polling through a new interpreter is slow)."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli_main(["notify", "list", "--json", "--config", str(config), *flags])
    assert code == 0
    rows: list[dict[str, Any]] = json.loads(stdout.getvalue())
    return rows


def of_type(requests: list[Received], kind: str) -> list[Received]:
    return [r for r in requests if r.headers["x-tamma-event"] == kind]


def test_signed_json_and_slack_deliveries(tmp_path: Path, daemons: list[Daemon]) -> None:
    receiver = Receiver()
    with receiving(receiver) as base:
        config = with_notify(
            write_config(tmp_path, {}),
            {"url": base + HOOK_PATH, "events": ["service.started"], "secret": SECRET},
            {"url": base + "/slack", "events": ["service.started"], "format": "slack"},
        )
        daemon = start(daemons, config)
        receiver.wait_for(lambda got: len(got) == 2)
        stop(daemon)
    signed = next(r for r in receiver.requests if r.path == HOOK_PATH)
    slack = next(r for r in receiver.requests if r.path == "/slack")

    expected = "sha256=" + hmac.new(SECRET.encode(), signed.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signed.headers["x-tamma-signature-256"], expected)
    event = signed.json()
    assert event["type"] == "service.started" and event["reason"].startswith("boot ")
    assert signed.headers["x-tamma-event-id"] == str(event["id"])
    assert signed.headers["content-type"] == "application/json"

    assert "x-tamma-signature-256" not in slack.headers  # no secret: unsigned
    (text,) = slack.json().values()
    assert text.startswith("*tamma-trio started*") and f"event {event['id']} at " in text
    assert "hidden-token" not in daemon.logs() and SECRET not in daemon.logs()


def test_a_receiver_answering_500_gets_the_event_again(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    receiver = Receiver(statuses=[500])
    with receiving(receiver) as base:
        target = {"url": base + "/hook", "events": ["service.started"]}
        config = with_notify(write_config(tmp_path, {}), target)
        daemon = start(daemons, config)
        receiver.wait_for(lambda got: len(got) == 2)
        (row,) = poll(
            lambda: [d for d in notifications(config) if d["status"] == "delivered"], "delivered"
        )
        stop(daemon)
    first, again = receiver.requests
    assert (first.body == again.body and first.headers["x-tamma-event-id"] == row["event_id"]) or (
        first.json()["id"] == again.json()["id"] == row["event_id"]
    )
    assert row["attempts"] == 1 and row["last_error"] == "HTTP 500"


def test_a_notification_pending_at_sigterm_is_delivered_once_after_restart(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    port = free_port()  # nobody listens there yet: the receiver is down
    target = {"url": f"http://127.0.0.1:{port}/hook", "events": ["service.started"]}
    config = with_notify(write_config(tmp_path, {}), target)
    first = start(daemons, config, "first")
    poll(lambda: notifications(config)[0]["attempts"] >= 1, "a failed attempt")
    stop(first)
    (pending,) = notifications(config)
    assert pending["status"] == "pending"
    assert pending["last_error"] == "cannot reach the receiver (ConnectError)"

    receiver = Receiver()
    with receiving(receiver, port):
        second = start(daemons, config, "second")
        poll(
            lambda: (
                all(d["status"] == "delivered" for d in notifications(config))
                and len(notifications(config)) == 2
            ),
            "both boots' events delivered",
        )
        stop(second)
    ids = [r.json()["id"] for r in receiver.requests]
    assert (
        sorted(ids) == sorted({pending["event_id"], *ids}) and ids.count(pending["event_id"]) == 1
    )


def test_dead_deliveries_are_listed_and_retried(tmp_path: Path, daemons: list[Daemon]) -> None:
    receiver = Receiver(statuses=[500, 500])
    with receiving(receiver) as base:
        target = {"url": base + "/hook", "events": ["service.started"], "max_attempts": 2}
        config = with_notify(write_config(tmp_path, {}), target)
        daemon = start(daemons, config)
        (dead,) = poll(lambda: notifications(config, "--failed"), "a dead delivery")
        assert (dead["attempts"], dead["last_error"]) == (2, "HTTP 500")
        assert dead["target_url"] == base + "/..."
        code, out, _ = run_cli("notify", "list", "--failed", "--config", str(config))
        assert code == 0 and "dead" in out and "/hook" not in out
        code, out, _ = run_cli("notify", "retry", "--all", "--config", str(config))
        assert (code, out.strip()) == (0, "1 delivery queued again")
        poll(lambda: notifications(config)[0]["status"] == "delivered", "the retry")
        stop(daemon)
    assert len(receiver.requests) == 3
    assert notifications(config, "--failed") == []


def test_events_follow_prints_json_lines_live(tmp_path: Path, daemons: list[Daemon]) -> None:
    config = write_config(tmp_path, {})
    daemon = start(daemons, config)
    follow = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tamma_trio",
            "events",
            "--follow",
            "--json",
            "--config",
            str(config),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: read_lines(follow, lines), daemon=True)
    reader.start()
    try:
        poll(lambda: [e for e in lines if e["type"] == "service.started"], "service.started")
        code, out, err = run_cli(
            "tasks",
            "add",
            "pr_review_requested",
            "--payload",
            json.dumps(pr(4)),
            "--config",
            str(config),
        )
        assert code == 0, err
        done = poll(lambda: [e for e in lines if e["type"] == "task.completed"], "completed")
        stop(daemon)
        poll(lambda: [e for e in lines if e["type"] == "service.stopped"], "stopped")
    finally:
        follow.send_signal(signal.SIGINT)
        exit_code = follow.wait(timeout=20)
        reader.join(timeout=20)
        assert follow.stdout is not None
        follow.stdout.close()
    assert exit_code == 0
    assert done[0]["task_id"] == int(out.strip())
    assert done[0]["subject"] == "acme/widgets#!4" and done[0]["reason"] == "merged"
    ids = [e["id"] for e in lines]
    assert ids == sorted(set(ids))  # in order, each once


def read_lines(process: subprocess.Popen[str], into: list[dict[str, Any]]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        into.append(json.loads(line))


def test_bad_notify_config_names_the_key_and_hides_secrets(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "bad.toml"
    secret_url = "ftp://alice:pa55word@hooks.example.com/secret-path"
    config.write_text(
        "[[notify]]\n"
        f"url = {json.dumps(secret_url)}\n"
        'events = ["task.exploded"]\n'
        'secret = "s3cret-value"\n'
        'format = "xml"\n'
    )
    assert cli_main(["config", "check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "notify.0.url = ***: Value error, must be an http:// or https:// URL" in err
    assert "notify.0.events.0 = 'task.exploded'" in err
    assert "notify.0.format = 'xml'" in err
    assert "pa55word" not in err and "secret-path" not in err and "s3cret-value" not in err

    good = tmp_path / "good.toml"
    good.write_text(
        '[engine]\nname = "tests.fake_engine:create"\n'
        f"[[notify]]\nurl = {json.dumps('https://bob:pw@hooks.example.com/T/B/hook-path-token')}\n"
        'secret = "s3cret-value"\n'
    )
    assert cli_main(["config", "check", "--config", str(good)]) == 0
    out = capsys.readouterr().out
    assert "[[notify]]" in out and 'url = "**********"' in out
    assert "pw@" not in out and "hook-path-token" not in out and "s3cret-value" not in out
