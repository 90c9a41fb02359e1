"""End to end through the webhook door: a real `tamma-trio serve`, signed deliveries over HTTP on
loopback, the local forge over a bare repository, the example agent and a real test command."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import trio

from tamma_trio.engine.forge.local_db import ForgeDb
from tamma_trio.models import TaskStatus, TaskType
from tamma_trio.store.sqlite import SqliteStore
from tests import webhook_payloads as gh
from tests.test_e2e_workflow import (
    BOT,
    CLI,
    REPO,
    add_issue,
    all_tasks,
    clean_env,
    finished,
    forge_rows,
    serving,
    until,
    write_config,
)
from tests.workflow_helpers import AGENTS, EXAMPLE_AGENT, git_out

SECRET = "e2e-webhook-secret-0123456789"
OLD_SECRET = "e2e-webhook-secret-being-rotated-out"
EXAMPLE = [sys.executable, str(EXAMPLE_AGENT), "{prompt_file}"]


def with_webhooks(config: Path) -> Path:
    """The e2e config plus a GitHub secret."""
    section = f'[webhooks.github]\nsecrets = ["{OLD_SECRET}", "{SECRET}"]\n'
    config.write_text(config.read_text() + section)
    return config


def health_url(log: Path) -> str:
    found = re.search(r"listening health=(\S+)", log.read_text())
    assert found is not None, log.read_text()
    return found.group(1)


def assign_bot(tmp_path: Path, number: int) -> None:
    """Assign the bot on the local forge: the engine reads the issue again before it acts and
    ignores an assignment event the issue no longer reflects."""
    db = ForgeDb(tmp_path / "tamma.forge.db")
    try:
        db.assign(REPO, number, BOT)
    finally:
        db.close()


def assignment(number: int, title: str) -> dict[str, Any]:
    payload = gh.assigned(full_name=REPO, number=number)
    payload["issue"]["title"] = title
    return payload


async def deliver(
    url: str, event: str, payload: Any, delivery: str, secret: str = SECRET
) -> httpx.Response:
    body = gh.encode(payload)
    headers = gh.github_headers(body, event, delivery, secret=secret)
    async with httpx.AsyncClient() as client:
        return await client.post(f"{url}/webhooks/github", content=body, headers=headers)


async def test_a_signed_assignment_becomes_a_merged_change_and_no_title_reaches_a_shell(
    tmp_path: Path,
) -> None:
    config = with_webhooks(write_config(tmp_path, EXAMPLE))
    marker = tmp_path / "pwned"
    title = f"Add a farewell $(touch {marker}) `touch {marker}`; touch {marker} #"
    async with serving(tmp_path, config) as daemon:
        number = await add_issue(config, title, "--label", "complexity:low")
        assert await all_tasks(tmp_path) == []  # no trigger label: nothing queued yet
        assign_bot(tmp_path, number)  # what GitHub did before it sent the "assigned" event
        url = health_url(daemon.log)
        unsigned = gh.encode(assignment(number, title))
        async with httpx.AsyncClient() as client:
            refused = await client.post(
                f"{url}/webhooks/github",
                content=unsigned,
                headers=gh.github_headers(unsigned, "issues", "e2e-0", secret=None),
            )
        assert refused.status_code == 401
        accepted = await deliver(url, "issues", assignment(number, title), "e2e-1")
        assert accepted.status_code == 202, accepted.text
        again = await deliver(url, "issues", assignment(number, title), "e2e-1")
        assert again.status_code == 200 and again.json()["task_id"] == accepted.json()["task_id"]
        other = await deliver(url, "issues", assignment(number, "another body"), "e2e-1")
        assert other.status_code == 409
        ping = await deliver(url, "ping", gh.ping(7), "e2e-2", secret=OLD_SECRET)  # rotation
        assert ping.status_code == 200 and ping.json()["hook_id"] == 7
        review = await until(finished(tmp_path, TaskType.PR_REVIEW_REQUESTED), "the merge")
    assert review.result is not None and review.result["action"] == "merged"
    issue_task = next(t for t in await all_tasks(tmp_path) if t.type is TaskType.ISSUE_ASSIGNED)
    assert issue_task.key == "github:e2e-1" and issue_task.id == accepted.json()["task_id"]
    issue, _comments, (pull,) = forge_rows(tmp_path, number)
    assert pull.state == "merged" and issue.state == "closed"
    assert git_out(tmp_path / "origin.git", "rev-parse", "main") == review.result["sha"]
    assert not marker.exists()  # the title was data: no shell ever ran it


async def comment(config: Path, number: int, text: str, author: str) -> str:
    argv = [*CLI, "issues", "comment", str(number), text, "--author", author]
    done = await trio.run_process(
        [*argv, "--config", str(config)], capture_stdout=True, capture_stderr=True, env=clean_env()
    )
    return done.stdout.decode()


async def test_an_escalated_issue_is_approved_with_a_comment_and_merged(tmp_path: Path) -> None:
    config = with_webhooks(write_config(tmp_path, EXAMPLE))
    async with serving(tmp_path, config):
        number = await add_issue(
            config,
            "Bump the dependency",
            "--body",
            "Raise the version in `package.json`.",
            "--label",
            "tamma",
            "--label",
            "complexity:low",
        )
        escalated = await until(finished(tmp_path, TaskType.ISSUE_ASSIGNED), "the escalation")
        assert escalated.result is not None
        assert escalated.result["action"] == "escalated_for_approval"
        _issue, comments, _ = forge_rows(tmp_path, number)
        assert any("/tamma approve" in body for body in comments), comments
        refused = await comment(config, number, "/tamma approve", BOT)
        assert "ignored" in refused or "refused" in refused
        said = await comment(config, number, "Looks right to me.\n/tamma approve", "alice")
        assert "queued" in said, said
        review = await until(finished(tmp_path, TaskType.PR_REVIEW_REQUESTED), "the merge")
    assert review.result is not None and review.result["action"] == "merged"
    approved = next(t for t in await all_tasks(tmp_path) if t.payload.get("approval"))
    assert approved.payload["approval"] == {"by": "alice", "of_task": escalated.id}
    assert approved.result is not None and approved.result["action"] == "auto_approved"
    store = SqliteStore(tmp_path / "tamma.db")
    async with store:
        events = await store.events(approved.id)
        [delivery, *_] = await store.list_deliveries()
    approval = [e.detail for e in events if e.kind == "approval"]
    assert approval[0]["approved_by"] == "alice" and approval[0]["of_task"] == escalated.id
    assert delivery.forge == "local" and delivery.task_ids == (approved.id,)


async def test_a_delivery_received_while_draining_is_processed_after_restart(
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "agent.pids"
    sleeper = [sys.executable, str(AGENTS / "sleep_forever.py"), str(pidfile)]
    config = with_webhooks(write_config(tmp_path, sleeper, shutdown_timeout=5))
    async with serving(tmp_path, config) as daemon:
        first = await add_issue(config, "Slow one", "--label", "tamma", "--label", "complexity:low")
        await until(lambda: _exists(pidfile), "the agent to start")
        second = await add_issue(config, "Add a farewell", "--label", "complexity:low")
        assign_bot(tmp_path, second)
        url = health_url(daemon.log)
        process = daemon.process
        assert process is not None
        process.send_signal(signal.SIGTERM)
        await until(lambda: _draining(url), "the daemon to drain")
        accepted = await deliver(url, "issues", assignment(second, "Add a farewell"), "drain-1")
        assert accepted.status_code == 202, accepted.text
        code = await until(lambda: _exit_code(process), "the drain to end", timeout=30)
        assert code - 1000 == 0, daemon.log.read_text()
    queued = [t for t in await all_tasks(tmp_path) if t.key == "github:drain-1"]
    assert [t.status for t in queued] == [TaskStatus.QUEUED]
    config.write_text(config.read_text().replace(json.dumps(sleeper), json.dumps(EXAMPLE)))
    async with serving(tmp_path, config):
        done = await until(lambda: _completed(tmp_path, "github:drain-1"), "the delivered task")
    assert done.result is not None and done.result["action"] == "auto_approved"
    assert first != second


async def _exit_code(process: subprocess.Popen[bytes]) -> int | None:
    code = process.poll()
    return None if code is None else code + 1000  # 0 must count as "exited"


async def _exists(path: Path) -> bool:
    return path.exists() and bool(path.read_text().strip())


async def _draining(url: str) -> bool:
    async with httpx.AsyncClient() as client:
        try:
            response = await client.get(f"{url}/ready")
        except httpx.HTTPError:
            return False
    return response.status_code == 503


async def _completed(tmp_path: Path, key: str) -> Any:
    for task in await all_tasks(tmp_path):
        if task.key == key and task.status is TaskStatus.COMPLETED:
            return task
    return None
