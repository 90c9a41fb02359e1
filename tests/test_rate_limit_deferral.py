"""A rate-limited task waits for the forge's reset without spending a retry (MockClock).

The worker defers it to the reset with the attempt refunded; the number of deferrals is bounded
(policy.MAX_DEFERRALS), after which a rate limit spends retries like any failure. The last test
takes the rate limit from the fake GitHub on loopback through the real GitHub client.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from trio.testing import MockClock

from tamma_trio.engine.forge.github.forge import GitHubForge
from tamma_trio.models import TaskStatus
from tamma_trio.policy import MAX_DEFERRALS
from tamma_trio.step_records import Issue
from tamma_trio.store.base import TaskStore
from tests.fake_engine import FakeEngine, FakeOptions
from tests.fake_github import FakeGitHub, serving
from tests.github_helpers import BOT, TOKEN, Sleeps, make_forge
from tests.service_helpers import (
    REPO,
    Stores,
    event_kinds,
    fake,
    has_event,
    issue_task,
    pr_task,
    running,
    wait_for,
)


async def test_a_rate_limited_attempt_is_refunded_and_runs_again_at_the_reset(
    autojump_clock: MockClock, service_stores: Stores, service_store: TaskStore
) -> None:
    reset = service_stores.wall() + 3600
    limited = {"times": 1, "code": "rate_limited", "retry_at": reset}
    engine = fake(failures={"monitor_pr": limited})
    async with running(service_stores, service_store, engine, poll_interval=60) as daemon:
        task = await daemon.enqueue(pr_task())
        await engine.entered.wait_value(lambda calls: calls >= 1)
        await wait_for(lambda: has_event(service_store, task.id, "deferred"))
        waiting = await service_store.get(task.id)
        await engine.entered.wait_value(lambda calls: calls >= 2)
        await wait_for(lambda: has_event(service_store, task.id, "completed"))
    first, second = engine.times[:2]
    assert second - first == pytest.approx(3600, abs=0.01)
    assert (waiting.status, waiting.attempts) == (TaskStatus.QUEUED, 0)
    done = await service_store.get(task.id)
    assert (done.status, done.attempts) == (TaskStatus.COMPLETED, 1)
    kinds = await event_kinds(service_store, task.id)
    assert kinds == ["enqueued", "claimed", "deferred", "claimed", "completed"]
    assert (
        daemon.metrics.registry.get_sample_value(
            "tamma_task_outcomes_total", {"type": "pr_review_requested", "outcome": "deferred"}
        )
        == 1
    )


async def test_deferrals_are_bounded_then_a_rate_limit_spends_retries(
    autojump_clock: MockClock, service_stores: Stores, service_store: TaskStore
) -> None:
    reset = service_stores.wall() + 100  # later deferrals find the reset passed and run at once
    engine = fake(failures={"monitor_pr": {"code": "rate_limited", "retry_at": reset}})
    async with running(service_stores, service_store, engine, retry_delay=1) as daemon:
        task = await daemon.enqueue(pr_task())
        await wait_for(lambda: has_event(service_store, task.id, "escalated"), within=3600)
    failed = await service_store.get(task.id)
    assert (failed.status, failed.attempts) == (TaskStatus.FAILED, 4)  # max 3 retries
    kinds = await event_kinds(service_store, task.id)
    assert kinds.count("deferred") == MAX_DEFERRALS
    assert kinds.count("retry_scheduled") == 3
    assert engine.steps().count("monitor_pr") == MAX_DEFERRALS + 4


async def test_an_operator_retry_starts_the_deferral_count_again(
    autojump_clock: MockClock, service_stores: Stores, service_store: TaskStore
) -> None:
    reset = service_stores.wall() + 100
    times = MAX_DEFERRALS + 4  # the deferrals, then the four attempts of max 3 retries
    limited = {"times": times + 1, "code": "rate_limited", "retry_at": reset}
    engine = fake(failures={"monitor_pr": limited})
    async with running(service_stores, service_store, engine, retry_delay=1) as daemon:
        task = await daemon.enqueue(pr_task())
        await wait_for(lambda: has_event(service_store, task.id, "escalated"), within=3600)
        await service_store.retry(task.id)
        await wait_for(lambda: has_event(service_store, task.id, "completed"), within=3600)
    kinds = await event_kinds(service_store, task.id)
    after_retry = kinds[kinds.index("retried") :]
    assert after_retry == ["retried", "claimed", "deferred", "claimed", "completed"]
    assert (await service_store.get(task.id)).attempts == 1


class GitHubReadingEngine(FakeEngine):
    """The fake engine, except that selecting an issue reads it from GitHub through the real
    forge, so the forge's own rate-limit error reaches the worker."""

    def __init__(self, forge: GitHubForge) -> None:
        super().__init__(FakeOptions(), bot_name=BOT)
        self.forge = forge
        self.read: list[Issue] = []

    async def select_issue(
        self, repository: str, number: int, *, require_trigger: bool = False
    ) -> Issue:
        self.read.append(await self.forge.get_issue(repository, number))
        return await super().select_issue(repository, number, require_trigger=require_trigger)


async def test_a_github_403_rate_limit_defers_the_task_to_its_reset(
    autojump_clock: MockClock, service_stores: Stores, service_store: TaskStore, tmp_path: Path
) -> None:
    wall = service_stores.wall
    github = FakeGitHub(tokens={TOKEN: BOT}, wall=wall)
    github.add_repo(REPO, tmp_path / "unused.git")  # the issue is read, no git is served
    number = github.add_issue(REPO, "Rate limited", assignees=(BOT,))
    reset = int(wall()) + 7200
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    github.fail("GET", f"/issues/{number}$", 403, headers=headers, body={"message": "API rate"})
    sleeps = Sleeps()
    async with serving(github):
        forge, stats = make_forge(github, repositories=(REPO,), sleeps=sleeps, wall=wall)
        engine = GitHubReadingEngine(forge)
        async with running(service_stores, service_store, engine, poll_interval=60) as daemon:
            task = await daemon.enqueue(issue_task(number))
            await wait_for(lambda: has_event(service_store, task.id, "deferred"))
            waiting = await service_store.get(task.id)
            await engine.entered.wait_value(lambda calls: calls >= 1)
            await wait_for(lambda: has_event(service_store, task.id, "completed"))
        await forge.aclose()
    assert (waiting.status, waiting.attempts) == (TaskStatus.QUEUED, 0)
    assert waiting.not_before.timestamp() == pytest.approx(reset + 1, abs=0.01)
    assert [issue.title for issue in engine.read] == ["Rate limited"]
    offset = wall() - autojump_clock.current_time()
    assert engine.times[0] + offset == pytest.approx(reset + 1, abs=0.01)  # at the reset
    done = await service_store.get(task.id)
    assert (done.status, done.attempts) == (TaskStatus.COMPLETED, 1)
    assert sleeps.waits == []  # nothing held a worker through the wait
    assert stats.requests[("github", "403")] == 1 and github.calls("GET", "/issues/") == 2
