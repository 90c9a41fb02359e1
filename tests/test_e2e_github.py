"""End to end on the GitHub forge: a real `tamma-trio serve` process against the fake GitHub on
loopback (in this test process), git over the fake's smart HTTP. The token reaches the daemon
only through TAMMA_ENGINE__FORGE__TOKEN and never appears in its log."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import trio

from tamma_trio.models import TaskStatus, TaskType
from tests.fake_github import FakeGitHub, FakeRepo, serving
from tests.github_helpers import BOT, REPO, TOKEN, fake_with_repo
from tests.test_e2e_workflow import CLI, Daemon, clean_env, finished, toml_value, until
from tests.workflow_helpers import EXAMPLE_AGENT, UNITTEST, git_out


def write_config(
    tmp_path: Path,
    fake: FakeGitHub,
    bot: str = BOT,
    *,
    forge: Mapping[str, Any] | None = None,
    extra: Mapping[str, dict[str, Any]] | None = None,
) -> Path:
    """The daemon's config on the fake GitHub; ``forge`` adds [engine.forge] keys (an App's),
    ``extra`` whole tables (webhooks)."""
    sections: dict[str, dict[str, Any]] = {
        "service": {
            "poll_interval": 0.2,
            "retry_delay": 0.1,
            "max_retry_delay": 1,
            "bot_name": bot,
        },
        "service.queue.sqlite": {"path": str(tmp_path / "tamma.db"), "synchronous": "NORMAL"},
        "service.health_check": {"port": 0},
        "service.metrics": {"port": 0},
        "engine": {"name": "workflow", "workspace_dir": str(tmp_path / "workspaces")},
        "engine.forge": {
            "kind": "github",
            "api_url": fake.base_url,
            "repositories": [REPO],
            "checks_grace": 0,
            **(forge or {}),
        },
        "engine.agent": {
            "command": [sys.executable, str(EXAMPLE_AGENT), "{prompt_file}"],
            "timeout": 30,
        },
        "engine.tests": {"command": list(UNITTEST), "timeout": 60},
        **(extra or {}),
    }
    text = "".join(
        f"[{name}]\n" + "".join(f"{key} = {toml_value(v)}\n" for key, v in table.items()) + "\n"
        for name, table in sections.items()
    )
    path = tmp_path / "tamma.toml"
    path.write_text(text)
    return path


async def add_task(config: Path, task_type: str, payload: Mapping[str, object]) -> None:
    await trio.run_process(
        [
            *CLI,
            "tasks",
            "add",
            task_type,
            "--payload",
            json.dumps(payload),
            "--config",
            str(config),
        ],
        capture_stdout=True,
        env=clean_env(),
    )


async def test_assigned_issue_becomes_a_merged_pull_request(tmp_path: Path) -> None:
    fake = fake_with_repo(tmp_path)
    repo = fake.repos[REPO]
    number = fake.add_issue(REPO, "Add a farewell", labels=("complexity:low",), assignees=(BOT,))
    async with serving(fake):
        config = write_config(tmp_path, fake)
        daemon = Daemon(tmp_path, config, env={"TAMMA_ENGINE__FORGE__TOKEN": TOKEN})
        await daemon.start()
        try:
            issue = {"number": number, "title": "Add a farewell"}
            await add_task(config, "issue_assigned", {"repository": REPO, "issue": issue})
            opened = await until(finished(tmp_path, TaskType.ISSUE_ASSIGNED), "the pull request")
            assert opened.result is not None, opened.error
            pr = opened.result["pull_request"]
            checks_pass_and_alice_approves(repo, pr)
            review = {"repository": REPO, "pull_request": {"number": pr["number"]}}
            await add_task(config, "pr_review_requested", review)
            merged = await until(finished(tmp_path, TaskType.PR_REVIEW_REQUESTED), "the merge")
            metrics = await scrape_metrics(daemon)
        finally:
            assert await daemon.stop() == 0, daemon.log.read_text()
    assert opened.status is TaskStatus.COMPLETED and opened.result["action"] == "auto_approved"
    assert merged.status is TaskStatus.COMPLETED and merged.result is not None
    assert merged.result["action"] == "merged", merged.result
    assert git_out(repo.bare, "rev-parse", "main") == merged.result["sha"]
    assert f"#{number}: Add a farewell" in git_out(repo.bare, "show", "main:CHANGELOG.md")
    assert repo.items[number]["state"] == "closed"
    assert git_out(repo.bare, "branch", "--list", "tamma/*") == ""
    assert 'tamma_forge_requests_total{forge="github",status="200"}' in metrics
    assert 'tamma_forge_rate_limit_remaining{forge="github",resource="core"}' in metrics
    log = "".join(p.read_text() for p in tmp_path.glob("serve-*.log"))
    assert TOKEN not in log and all(h.startswith("Basic ") for h in fake.git_auth)


async def test_a_bot_name_that_is_not_the_token_user_refuses_to_start(tmp_path: Path) -> None:
    fake = fake_with_repo(tmp_path)
    done = await refused_start(tmp_path, fake, TOKEN, bot="somebody")
    err = done.stderr.decode()
    assert done.returncode == 1 and "bot_name is 'somebody'" in err and "'tamma-bot'" in err
    assert TOKEN not in err + done.stdout.decode()


async def test_a_rejected_token_refuses_to_start_and_names_no_secret(tmp_path: Path) -> None:
    fake = fake_with_repo(tmp_path)
    revoked = "ghp_REVOKEDtoken0987654321"
    done = await refused_start(tmp_path, fake, revoked)
    err = done.stderr.decode()
    assert done.returncode == 1 and "GitHub refused the credentials (401) for /user" in err
    assert revoked not in err + done.stdout.decode()
    assert fake.calls("GET", "/user$") == 1  # refused once, not retried


async def refused_start(
    tmp_path: Path, fake: FakeGitHub, token: str, bot: str = BOT
) -> subprocess.CompletedProcess[bytes]:
    """`tamma-trio serve` with ``token`` against the fake, expected to stop at its checks."""
    async with serving(fake):
        config = write_config(tmp_path, fake, bot=bot)
        env = {**clean_env(), "TAMMA_ENGINE__FORGE__TOKEN": token}
        return await trio.run_process(
            [*CLI, "serve", "--config", str(config)],
            env=env,
            cwd=tmp_path,
            check=False,
            capture_stdout=True,
            capture_stderr=True,
        )


def checks_pass_and_alice_approves(repo: FakeRepo, pr: Mapping[str, Any]) -> None:
    """What a team does to the bot's pull request on GitHub: CI goes green, a human approves."""
    success = {"name": "ci", "status": "completed", "conclusion": "success"}
    repo.check_runs[pr["head_sha"]] = [success]
    repo.reviews[pr["number"]] = [{"user": {"login": "alice"}, "state": "APPROVED"}]


async def scrape_metrics(daemon: Daemon) -> str:
    line = next(x for x in daemon.log.read_text().splitlines() if "listening health=" in x)
    url = line.split("metrics=")[1].split()[0]
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{url}/metrics")).text
