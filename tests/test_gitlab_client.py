"""The GitLab forge against the fake GitLab's staged faults: a refused token, 429 with
Retry-After or RateLimit-Reset, 5xx, pagination by headers, merge status "checking" then
mergeable, a pipeline running then success, merge refusals (409, 405), and the live access-level
check. Waits go through an injected sleep that records them, so no test sleeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from tamma_trio.engine.forge.gitlab.merge_requests import MERGE_STATUS_WAITS
from tamma_trio.errors import EngineError
from tamma_trio.step_records import Target
from tests.fake_gitlab import FakeGitLab, serving
from tests.github_helpers import Sleeps
from tests.gitlab_helpers import BOT, PROJECT, fake_with_project, make_forge, push_to
from tests.store_helpers import FakeWall

TARGET = Target(repository=PROJECT, number=1)


async def open_mr(fake: FakeGitLab, tmp_path: Path, branch: str = "tamma/1") -> tuple[int, str]:
    sha = push_to(fake.projects[PROJECT].bare, tmp_path, branch)
    forge, _ = make_forge(fake)
    mr = await forge.open_pull_request(
        PROJECT, title="t", body="b", head_branch=branch, base="main", author=BOT
    )
    await forge.aclose()
    return mr.number, sha


async def test_open_checks_the_bot_name_and_the_projects(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    async with serving(fake):
        forge, _ = make_forge(fake)
        async with forge:
            info = await forge.repository(PROJECT)
        wrong, _ = make_forge(fake, bot_name="someone-else")
        with pytest.raises(EngineError) as mismatch:
            async with wrong:
                pass
        del fake.projects[PROJECT]
        gone, _ = make_forge(fake)
        with pytest.raises(EngineError) as unreachable:
            async with gone:
                pass
    assert info.clone_url == f"{fake.base_url}/git/{PROJECT}.git" and info.default_branch == "main"
    assert mismatch.value.code == "bot_name_mismatch" and "'tamma-bot'" in str(mismatch.value)
    assert unreachable.value.code == "not_found" and PROJECT in str(unreachable.value)
    assert fake.calls("GET", "/api/v4/projects/acme/tools/demo$") >= 1


async def test_401_is_not_retried_and_never_shows_the_token(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    async with serving(fake):
        forge, stats = make_forge(fake, token="glpat-revoked-value")
        with pytest.raises(EngineError) as caught:
            async with forge:
                pass
    assert caught.value.code == "unauthorized" and not caught.value.retryable
    assert "glpat-revoked-value" not in str(caught.value)
    assert stats.requests == {("gitlab", "401"): 1}


async def test_429_with_retry_after_is_waited_out(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    iid = fake.add_issue(PROJECT, "t")
    fake.fail("GET", f"/issues/{iid}$", 429, headers={"Retry-After": "7"}, body={"message": "x"})
    sleeps = Sleeps()
    async with serving(fake):
        forge, stats = make_forge(fake, sleeps=sleeps)
        issue = await forge.get_issue(PROJECT, iid)
        await forge.aclose()
    assert issue.title == "t" and sleeps.waits == [7.0]
    assert stats.requests[("gitlab", "429")] == 1 and stats.requests[("gitlab", "200")] == 1


async def test_a_long_rate_limit_becomes_a_retry_at_the_reset(tmp_path: Path) -> None:
    wall = FakeWall()
    fake = fake_with_project(tmp_path)
    fake.wall = wall
    reset = {"RateLimit-Reset": str(int(wall()) + 600), "RateLimit-Remaining": "0"}
    fake.fail("GET", "/issues/1$", 429, headers=reset, body={"message": "Retry later"})
    sleeps = Sleeps()
    async with serving(fake):
        forge, _ = make_forge(fake, sleeps=sleeps, max_wait=60)
        with pytest.raises(EngineError) as caught:
            await forge.get_issue(PROJECT, 1)
        await forge.aclose()
    assert caught.value.code == "rate_limited" and caught.value.retryable
    assert caught.value.retry_at == pytest.approx(wall() + 601)
    assert sleeps.waits == []


async def test_bad_gateway_is_retried_with_backoff(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    iid = fake.add_issue(PROJECT, "t")
    fake.fail("GET", f"/issues/{iid}$", 502, times=2)
    sleeps = Sleeps()
    async with serving(fake):
        forge, _ = make_forge(fake, sleeps=sleeps)
        await forge.get_issue(PROJECT, iid)
        await forge.aclose()
    assert sleeps.waits == [1.0, 2.0]


async def test_notes_follow_pagination_headers_and_skip_system_notes(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    iid = fake.add_issue(PROJECT, "t")
    async with serving(fake):
        forge, _ = make_forge(fake)
        target = Target(repository=PROJECT, number=iid)
        for n in range(105):
            await forge.comment(target, f"note {n}", BOT)
        fake.projects[PROJECT].notes[iid][0]["system"] = True
        notes = await forge.list_comments(target)
        await forge.aclose()
    assert [n.body for n in notes] == [f"note {n}" for n in range(1, 105)]
    assert fake.calls("GET", f"/issues/{iid}/notes$") == 2  # 100 per page, then the rest


async def test_merge_status_checking_is_asked_again_then_mergeable(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    async with serving(fake):
        number, sha = await open_mr(fake, tmp_path)
        fake.projects[PROJECT].merge_statuses[number] = ["checking", "unchecked", "mergeable"]
        sleeps = Sleeps()
        forge, _ = make_forge(fake, sleeps=sleeps, required_approvals=0, checks_grace=0)
        status = await forge.pull_request_status(PROJECT, number)
        fake.projects[PROJECT].merge_statuses[number] = ["checking"]
        still = await forge.pull_request_status(PROJECT, number)
        await forge.aclose()
    assert status.mergeable is True and status.ready_to_merge and status.head_sha == sha
    assert sleeps.waits[:2] == [1.0, 2.0]
    assert still.mergeable is None and "mergeability is still being computed" in still.reasons
    assert sleeps.waits[2:] == list(MERGE_STATUS_WAITS)  # bounded


async def test_pipeline_running_then_success(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    async with serving(fake):
        number, sha = await open_mr(fake, tmp_path)
        fake.projects[PROJECT].pipelines[sha] = ["running", "success"]
        forge, _ = make_forge(fake, required_approvals=0)
        running = await forge.pull_request_status(PROJECT, number)
        passed = await forge.pull_request_status(PROJECT, number)
        await forge.aclose()
    assert running.ci_state == "pending" and "pipeline is pending" in running.reasons
    assert not running.ready_to_merge
    assert passed.ci_state == "success" and passed.ready_to_merge


async def test_no_pipeline_counts_as_pending_during_the_grace(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    async with serving(fake):
        number, _ = await open_mr(fake, tmp_path)
        forge, _ = make_forge(fake, required_approvals=0, checks_grace=120)
        status = await forge.pull_request_status(PROJECT, number)
        await forge.aclose()
    assert status.ci_state == "pending" and not status.ready_to_merge


async def test_merge_409_and_405_are_clear_results(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    async with serving(fake):
        number, sha = await open_mr(fake, tmp_path)
        forge, _ = make_forge(fake)
        moved = await forge.merge_pull_request(PROJECT, number, "0" * 40, "m")
        fake.projects[PROJECT].merge_statuses[number] = ["conflict"]
        refused = await forge.merge_pull_request(PROJECT, number, sha, "m")
        fake.projects[PROJECT].merge_statuses[number] = ["mergeable"]
        fake.fail(
            "PUT", "/merge$", 409, body={"message": "SHA does not match HEAD of source branch"}
        )
        raced = await forge.merge_pull_request(PROJECT, number, sha, "m")
        merged = await forge.merge_pull_request(PROJECT, number, sha, "m")
        await forge.aclose()
    assert not moved.merged and "head moved" in moved.message
    assert not refused.merged and refused.message.startswith("not mergeable")
    assert not raced.merged and "head moved" in raced.message
    assert (
        merged.merged
        and merged.sha
        and fake.projects[PROJECT].merge_requests[number]["state"] == "merged"
    )


async def test_a_second_open_finds_the_first_merge_request(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    async with serving(fake):
        first, _ = await open_mr(fake, tmp_path)
        forge, _ = make_forge(fake)
        again = await forge.open_pull_request(
            PROJECT, title="t", body="b", head_branch="tamma/1", base="main", author=BOT
        )
        await forge.aclose()
    assert again.number == first and len(fake.projects[PROJECT].merge_requests) == 1


async def test_access_level_is_checked_live_and_cached(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    project = fake.projects[PROJECT]
    fake.user("dev")
    fake.user("guest")
    project.members.update({"dev": 30, "guest": 10})
    async with serving(fake):
        forge, _ = make_forge(fake)
        dev = await forge.author_may_command(PROJECT, "dev")
        guest = await forge.author_may_command(PROJECT, "guest")
        stranger = await forge.author_may_command(PROJECT, "nobody-here")
        again = await forge.author_may_command(PROJECT, "dev")
        await forge.aclose()
    assert (dev, guest, stranger, again) == (True, False, False, True)
    assert fake.calls("GET", "/members/all/") == 2  # the stranger has no user id to ask about


async def test_labels_are_created_once_and_removed(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    iid = fake.add_issue(PROJECT, "t", labels=("bug",))
    async with serving(fake):
        forge, _ = make_forge(fake)
        target = Target(repository=PROJECT, number=iid)
        await forge.add_labels(target, ("bug", "tamma-in-progress"))
        await forge.remove_label(target, "bug")
        await forge.assign(target, BOT)
        issue = await forge.get_issue(PROJECT, iid)
        await forge.close_issue(target)
        await forge.aclose()
    assert issue.labels == ("tamma-in-progress",) and issue.assignees == (BOT,)
    assert (
        fake.calls("POST", "/labels$") == 2 and "tamma-in-progress" in fake.projects[PROJECT].labels
    )
    assert fake.projects[PROJECT].issues[iid]["state"] == "closed"
