"""End to end as a GitHub App: a real `tamma-trio serve` whose only credential is the App's
private key. The fake GitHub on loopback checks the App's JWT, hands out installation tokens,
and serves git; signed webhook deliveries bring the assignment and the approval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tamma_trio.models import TaskStatus, TaskType
from tests import webhook_payloads as gh
from tests.fake_github import APP_SLUG, FakeGitHub, serving
from tests.github_helpers import REPO, fake_with_repo, rsa_key_pair
from tests.test_e2e_github import checks_pass_and_alice_approves, scrape_metrics, write_config
from tests.test_e2e_webhooks import SECRET, deliver, health_url
from tests.test_e2e_workflow import Daemon, finished, until
from tests.workflow_helpers import git_out

APP_ID = 4242
APP_BOT = f"{APP_SLUG}[bot]"


def app_config(tmp_path: Path, fake: FakeGitHub, key: bytes) -> Path:
    pem = tmp_path / "app.pem"
    pem.write_bytes(key)
    pem.chmod(0o600)
    forge = {"app_id": APP_ID, "private_key_path": str(pem)}
    webhooks = {"webhooks.github": {"secrets": [SECRET]}}
    return write_config(tmp_path, fake, bot=APP_BOT, forge=forge, extra=webhooks)


def assignment(number: int, title: str) -> dict[str, Any]:
    payload = gh.assigned(APP_BOT, full_name=REPO, number=number)
    payload["issue"]["title"] = title
    return payload


def approval(number: int) -> dict[str, Any]:
    payload = gh.review_submitted("approved", pr_author=APP_BOT)
    payload["pull_request"] = gh.pull_request(number, author=APP_BOT)
    payload["repository"] = gh.repository(REPO)
    return payload


async def test_an_app_turns_a_signed_assignment_into_a_merged_pull_request(
    tmp_path: Path,
) -> None:
    private, public = rsa_key_pair()
    fake = fake_with_repo(tmp_path)
    fake.app_id, fake.app_public_key = APP_ID, public
    repo = fake.repos[REPO]
    title = "Add a farewell"
    number = fake.add_issue(REPO, title, labels=("complexity:low",), assignees=(APP_BOT,))
    async with serving(fake):
        daemon = Daemon(tmp_path, app_config(tmp_path, fake, private))
        await daemon.start()
        try:
            url = health_url(daemon.log)
            sent = await deliver(url, "issues", assignment(number, title), "d-assign")
            opened = await until(finished(tmp_path, TaskType.ISSUE_ASSIGNED), "the pull request")
            assert opened.result is not None, opened.error
            pr = opened.result["pull_request"]
            checks_pass_and_alice_approves(repo, pr)
            fake.installation_tokens.clear()  # revoked: the daemon's cached token now gets 401
            approved = await deliver(url, "pull_request_review", approval(pr["number"]), "d-ok")
            merged = await until(finished(tmp_path, TaskType.PR_REVIEW_REQUESTED), "the merge")
            metrics = await scrape_metrics(daemon)
        finally:
            assert await daemon.stop() == 0, daemon.log.read_text()
    assert (sent.status_code, approved.status_code) == (202, 202), (sent.text, approved.text)
    assert opened.status is TaskStatus.COMPLETED and opened.result["action"] == "auto_approved"
    assert merged.status is TaskStatus.COMPLETED and merged.result is not None
    assert merged.result["action"] == "merged", merged.result
    assert git_out(repo.bare, "rev-parse", "main") == merged.result["sha"]
    assert repo.items[number]["state"] == "closed"
    assert repo.items[pr["number"]]["user"]["login"] == APP_BOT  # opened as the App
    # The JWT found each installation, tokens came from it, and the revoked one was replaced.
    assert fake.calls("GET", f"/repos/{REPO}/installation$") == 1
    assert fake.calls("POST", "/access_tokens$") == 2
    assert ("GET", f"/repos/{REPO}/pulls/{pr['number']}", 401) in fake.log
    assert fake.git_auth and all(h.startswith("Basic ") for h in fake.git_auth)
    assert 'tamma_forge_requests_total{forge="github",status="401"}' in metrics
    log = "".join(p.read_text() for p in tmp_path.glob("serve-*.log"))
    assert all(token not in log for token in fake.installation_tokens)
    assert "PRIVATE KEY" not in log
