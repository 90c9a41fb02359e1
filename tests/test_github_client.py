"""The GitHub forge against the fake GitHub's staged faults: credentials refused, primary and
secondary rate limits, 5xx, pagination, mergeable computing, merge refusals, checks in progress.
Waits go through an injected sleep that records them, so no test sleeps."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from tamma_trio.engine.forge.github.auth import TokenCredentials
from tamma_trio.engine.forge.github.pulls import MERGEABLE_WAITS
from tamma_trio.errors import EngineError
from tamma_trio.step_records import Target
from tests.fake_github import FakeGitHub, serving
from tests.github_helpers import REPO, Sleeps, fake_with_repo, make_forge
from tests.gitlab_helpers import push_to
from tests.store_helpers import FakeWall
from tests.workflow_helpers import git_out

SECONDARY = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."}


def push_branch(fake: FakeGitHub, tmp_path: Path, branch: str, text: str = "x\n") -> str:
    """A commit on ``branch`` in the fake's bare repository (someone pushed it)."""
    return push_to(fake.repos[REPO].bare, tmp_path, branch, text)


async def test_open_checks_identity_and_repositories(tmp_path: Path) -> None:
    fake = fake_with_repo(tmp_path)
    async with serving(fake):
        forge, _ = make_forge(fake)
        async with forge:
            info = await forge.repository(REPO)
        wrong, _ = make_forge(fake, bot_name="someone-else")
        with pytest.raises(EngineError) as mismatch:
            async with wrong:
                pass
        missing, _ = make_forge(fake, repositories=(REPO, "acme/gone"))
        with pytest.raises(EngineError) as unreachable:
            async with missing:
                pass
    assert info.clone_url == f"{fake.base_url}/git/{REPO}.git" and info.default_branch == "main"
    assert mismatch.value.code == "bot_name_mismatch" and "tamma-bot" in str(mismatch.value)
    assert unreachable.value.code == "not_found" and "acme/gone" in str(unreachable.value)


async def test_401_is_not_retried_and_names_the_repository_not_the_token(tmp_path: Path) -> None:
    fake = fake_with_repo(tmp_path)
    async with serving(fake):
        forge, stats = make_forge(fake, credentials=TokenCredentials("ghp_revoked_value"))
        with pytest.raises(EngineError) as caught:
            await forge.get_issue(REPO, 1)
        await forge.aclose()
    assert caught.value.code == "unauthorized" and not caught.value.retryable
    assert REPO in str(caught.value) and "ghp_revoked_value" not in str(caught.value)
    assert fake.calls("GET", "/issues/1$") == 1
    assert stats.requests == {("github", "401"): 1}


async def test_primary_rate_limit_is_waited_out_until_the_reset(tmp_path: Path) -> None:
    wall = FakeWall()
    fake = fake_with_repo(tmp_path, wall=wall)
    number = fake.add_issue(REPO, "t")
    reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(wall()) + 30)}
    fake.fail("GET", f"/issues/{number}$", 403, headers=reset, body={"message": "API rate limit"})
    sleeps = Sleeps()
    async with serving(fake):
        forge, stats = make_forge(fake, sleeps=sleeps, wall=wall)
        issue = await forge.get_issue(REPO, number)
        await forge.aclose()
    assert issue.title == "t" and sleeps.waits == [31.0]
    assert stats.requests == {("github", "403"): 1, ("github", "200"): 1}
    assert stats.rate_remaining[("github", "core")] == 4999


async def test_a_long_rate_limit_becomes_a_retry_at_the_reset(tmp_path: Path) -> None:
    wall = FakeWall()
    fake = fake_with_repo(tmp_path, wall=wall)
    reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(wall()) + 1800)}
    fake.fail("GET", "/issues/1$", 403, headers=reset, body={"message": "API rate limit"})
    sleeps = Sleeps()
    async with serving(fake):
        forge, _ = make_forge(fake, sleeps=sleeps, wall=wall, max_wait=60)
        with pytest.raises(EngineError) as caught:
            await forge.get_issue(REPO, 1)
        await forge.aclose()
    assert caught.value.code == "rate_limited" and caught.value.retryable
    assert caught.value.retry_at == wall() + 1801 and sleeps.waits == []


@pytest.mark.parametrize("status", [403, 429])
async def test_secondary_limit_waits_retry_after(tmp_path: Path, status: int) -> None:
    fake = fake_with_repo(tmp_path)
    number = fake.add_issue(REPO, "t")
    fake.fail("POST", "/comments$", status, headers={"retry-after": "7"}, body=SECONDARY)
    sleeps = Sleeps()
    async with serving(fake):
        forge, _ = make_forge(fake, sleeps=sleeps)
        await forge.comment(Target(repository=REPO, number=number), "hello", "tamma-bot")
        await forge.aclose()
    assert sleeps.waits == [7.0]
    assert [c["body"] for c in fake.repos[REPO].comments[number]] == ["hello"]


async def test_secondary_limit_without_retry_after_waits_a_minute(tmp_path: Path) -> None:
    fake = fake_with_repo(tmp_path)
    number = fake.add_issue(REPO, "t")
    fake.fail("GET", f"/issues/{number}$", 403, body=SECONDARY)
    sleeps = Sleeps()
    async with serving(fake):
        forge, _ = make_forge(fake, sleeps=sleeps)
        await forge.get_issue(REPO, number)
        await forge.aclose()
    assert sleeps.waits == [60.0]


async def test_a_plain_403_is_not_a_rate_limit(tmp_path: Path) -> None:
    fake = fake_with_repo(tmp_path)
    fake.fail("GET", "/issues/1$", 403, body={"message": "Resource not accessible by integration"})
    sleeps = Sleeps()
    async with serving(fake):
        forge, _ = make_forge(fake, sleeps=sleeps)
        with pytest.raises(EngineError) as caught:
            await forge.get_issue(REPO, 1)
        await forge.aclose()
    assert caught.value.code == "github_403" and not caught.value.retryable
    assert sleeps.waits == []


async def test_bad_gateway_is_retried_with_backoff(tmp_path: Path) -> None:
    fake = fake_with_repo(tmp_path)
    number = fake.add_issue(REPO, "t")
    fake.fail("GET", f"/issues/{number}$", 502, times=2)
    sleeps = Sleeps()
    async with serving(fake):
        forge, stats = make_forge(fake, sleeps=sleeps)
        await forge.get_issue(REPO, number)
        fake.fail("GET", f"/issues/{number}$", 503, times=10)
        with pytest.raises(EngineError) as caught:
            await forge.get_issue(REPO, number)
        await forge.aclose()
    assert sleeps.waits == [1.0, 2.0, 1.0, 2.0, 4.0]
    assert caught.value.retryable and caught.value.code == "github_503"
    assert stats.requests[("github", "502")] == 2


async def test_comments_follow_link_pagination(tmp_path: Path) -> None:
    fake = fake_with_repo(tmp_path)
    number = fake.add_issue(REPO, "t")
    fake.repos[REPO].comments[number] = [
        {"id": i, "body": f"c{i}", "user": {"login": "alice"}, "created_at": ""} for i in range(250)
    ]
    async with serving(fake):
        forge, _ = make_forge(fake)
        comments = await forge.list_comments(Target(repository=REPO, number=number))
        await forge.aclose()
    assert [c.body for c in comments] == [f"c{i}" for i in range(250)]
    assert fake.calls("GET", f"/issues/{number}/comments$") == 3


async def test_pull_requests_are_dropped_from_issues(tmp_path: Path) -> None:
    fake = fake_with_repo(tmp_path)
    push_branch(fake, tmp_path, "feature")
    async with serving(fake):
        forge, _ = make_forge(fake)
        pr = await forge.open_pull_request(
            REPO, title="t", body="b", head_branch="feature", base="main", author="x"
        )
        with pytest.raises(EngineError) as caught:
            await forge.get_issue(REPO, pr.number)
        again = await forge.open_pull_request(
            REPO, title="t", body="b", head_branch="feature", base="main", author="x"
        )
        await forge.aclose()
    assert caught.value.code == "not_an_issue"
    assert again.number == pr.number and fake.calls("POST", "/pulls$") == 1


async def test_mergeable_null_is_asked_again_then_true(tmp_path: Path) -> None:
    fake = fake_with_repo(tmp_path)
    sha = push_branch(fake, tmp_path, "feature")
    sleeps = Sleeps()
    async with serving(fake):
        forge, _ = make_forge(fake, sleeps=sleeps, required_approvals=0, checks_grace=0)
        pr = await forge.open_pull_request(
            REPO, title="t", body="b", head_branch="feature", base="main", author="x"
        )
        fake.repos[REPO].mergeable[pr.number] = [None, None, True]
        status = await forge.pull_request_status(REPO, pr.number)
        fake.repos[REPO].mergeable[pr.number] = [None] * 10
        computing = await forge.pull_request_status(REPO, pr.number)
        await forge.aclose()
    assert status.mergeable is True and status.head_sha == sha and sleeps.waits[:2] == [1.0, 2.0]
    assert computing.mergeable is None and not computing.ready_to_merge
    assert "mergeability is still being computed" in computing.reasons
    assert sleeps.waits[2:] == list(MERGEABLE_WAITS)


async def test_check_run_in_progress_then_success(tmp_path: Path) -> None:
    wall = FakeWall()
    fake = fake_with_repo(tmp_path, wall=wall)
    sha = push_branch(fake, tmp_path, "feature")
    repo = fake.repos[REPO]
    async with serving(fake):
        forge, _ = make_forge(fake, wall=wall, required_approvals=0, checks_grace=120)
        pr = await forge.open_pull_request(
            REPO, title="t", body="b", head_branch="feature", base="main", author="x"
        )
        no_checks = await forge.pull_request_status(REPO, pr.number)
        repo.check_runs[sha] = [{"name": "ci", "status": "in_progress", "conclusion": None}]
        running = await forge.pull_request_status(REPO, pr.number)
        repo.check_runs[sha][0].update(status="completed", conclusion="success")
        repo.statuses[sha] = [{"context": "lint", "state": "success"}]
        green = await forge.pull_request_status(REPO, pr.number)
        repo.statuses[sha] = [{"context": "lint", "state": "failure"}]
        red = await forge.pull_request_status(REPO, pr.number)
        await forge.aclose()
    assert (no_checks.ci_state, no_checks.ci_passed) == ("pending", False)
    assert (running.ci_state, running.ci_passed) == ("pending", False)
    assert (green.ci_state, green.ci_passed, green.ready_to_merge) == ("success", True, True)
    assert (red.ci_state, red.ci_passed) == ("failure", False)


async def test_no_checks_pass_only_after_the_grace(tmp_path: Path) -> None:
    wall = FakeWall()
    fake = fake_with_repo(tmp_path, wall=wall)
    push_branch(fake, tmp_path, "feature")
    async with serving(fake):
        forge, _ = make_forge(fake, wall=wall, required_approvals=0, checks_grace=120)
        pr = await forge.open_pull_request(
            REPO, title="t", body="b", head_branch="feature", base="main", author="x"
        )
        early = await forge.pull_request_status(REPO, pr.number)
        wall.advance(121)
        late = await forge.pull_request_status(REPO, pr.number)
        await forge.aclose()
    assert not early.ci_passed and any("no checks yet" in r for r in early.reasons)
    assert late.ci_state == "none" and late.ci_passed and late.ready_to_merge


async def test_merge_405_and_409_are_clear_results(tmp_path: Path) -> None:
    fake = fake_with_repo(tmp_path)
    sha = push_branch(fake, tmp_path, "feature")
    async with serving(fake):
        forge, _ = make_forge(fake)
        pr = await forge.open_pull_request(
            REPO, title="t", body="b", head_branch="feature", base="main", author="x"
        )
        moved = await forge.merge_pull_request(REPO, pr.number, "0" * 40, "Merge")
        fake.repos[REPO].mergeable[pr.number] = [False]
        refused = await forge.merge_pull_request(REPO, pr.number, sha, "Merge")
        fake.repos[REPO].mergeable[pr.number] = [True]
        merged = await forge.merge_pull_request(REPO, pr.number, sha, "Merge it\n\nbody")
        await forge.delete_branch(REPO, "feature")
        await forge.delete_branch(REPO, "feature")  # already gone: fine
        await forge.aclose()
    assert not moved.merged and "head moved" in moved.message
    assert not refused.merged and "not mergeable" in refused.message
    assert merged.merged and merged.sha == git_out(fake.repos[REPO].bare, "rev-parse", "main")
    assert git_out(fake.repos[REPO].bare, "log", "-1", "--format=%s", "main") == "Merge it"


async def test_labels_are_created_when_missing_and_removal_is_idempotent(tmp_path: Path) -> None:
    fake = fake_with_repo(tmp_path)
    number = fake.add_issue(REPO, "t", labels=("bug",))
    target = Target(repository=REPO, number=number)
    async with serving(fake):
        forge, _ = make_forge(fake)
        await forge.add_labels(target, ("bug", "tamma:in-progress"))
        await forge.add_labels(target, ("tamma:in-progress",))  # known now: not created again
        await forge.remove_label(target, "bug")
        await forge.remove_label(target, "bug")
        issue = await forge.get_issue(REPO, number)
        await forge.aclose()
    assert issue.labels == ("tamma:in-progress",)
    assert fake.calls("POST", f"{REPO}/labels$") == 2  # bug (422: exists) and the new one
    assert "tamma:in-progress" in fake.repos[REPO].labels


async def test_author_permission_is_checked_live_and_cached(tmp_path: Path) -> None:
    wall = FakeWall()
    fake = fake_with_repo(tmp_path, wall=wall)
    fake.repos[REPO].collaborators.update({"writer": "write", "reader": "read", "boss": "admin"})
    async with serving(fake):
        forge, _ = make_forge(fake, wall=wall)
        answers = [
            await forge.author_may_command(REPO, login)
            for login in ("writer", "reader", "boss", "stranger", "writer")
        ]
        first = fake.calls("GET", "/permission$")
        fake.repos[REPO].collaborators["writer"] = "read"
        cached = await forge.author_may_command(REPO, "writer")
        wall.advance(301)
        expired = await forge.author_may_command(REPO, "writer")
        await forge.aclose()
    assert answers == [True, False, True, False, True] and first == 4
    assert cached is True and expired is False


async def test_mutations_of_one_repository_are_serialised(tmp_path: Path) -> None:
    """Three comments at once: the fake holds the first; the others must not arrive meanwhile."""
    fake = fake_with_repo(tmp_path)
    number = fake.add_issue(REPO, "t")
    target = Target(repository=REPO, number=number)
    fake.write_gate = trio.Event()
    async with serving(fake):
        forge, _ = make_forge(fake)
        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(forge.comment, target, f"c{i}", "x")
            with trio.fail_after(10):
                while fake.writes_entered == 0:
                    await trio.testing.wait_all_tasks_blocked(0.01)
            await trio.testing.wait_all_tasks_blocked(0.2)
            held = fake.writes_entered
            fake.write_gate.set()
        await forge.aclose()
    assert held == 1 and len(fake.repos[REPO].comments[number]) == 3
