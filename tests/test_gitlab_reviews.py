"""GitLab's "Request changes" (GitLab 17): a reviewer whose state is ``requested_changes`` in
GET .../merge_requests/:iid/reviewers holds the merge request back, with a reason naming who,
the way a GitHub review that requests changes does."""

from __future__ import annotations

from pathlib import Path

from tamma_trio.engine.forge.gitlab.verdicts import changes_requested_by, merge_state
from tests.fake_gitlab import serving
from tests.gitlab_helpers import PROJECT, fake_with_project, make_forge
from tests.test_gitlab_client import open_mr
from tests.test_gitlab_engine import engine_for


async def test_a_reviewer_requesting_changes_holds_the_merge_request(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    project = fake.projects[PROJECT]
    async with serving(fake):
        number, sha = await open_mr(fake, tmp_path)
        project.pipelines[sha] = ["success"]
        project.approvals[number] = ["alice"]
        project.reviewers[number] = {"alice": "approved", "carol": "requested_changes"}
        forge, _ = make_forge(fake, checks_grace=0)
        held = await forge.pull_request_status(PROJECT, number)
        project.reviewers[number]["carol"] = "reviewed"  # she looked again and is content
        released = await forge.pull_request_status(PROJECT, number)
        await forge.aclose()
    assert held.changes_requested and not held.ready_to_merge
    assert held.mergeable is True and held.ci_passed and held.approvals == 1
    assert held.reasons == ("changes requested by carol",)
    assert not released.changes_requested and released.ready_to_merge


async def test_the_engine_does_not_merge_while_changes_are_requested(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    project = fake.projects[PROJECT]
    async with serving(fake):
        number, sha = await open_mr(fake, tmp_path)
        project.pipelines[sha] = ["success"]
        project.approvals[number] = ["alice"]
        project.reviewers[number] = {"carol": "requested_changes"}
        project.merge_statuses[number] = ["requested_changes"]  # "prevent merge" is on
        engine = engine_for(tmp_path, fake)
        async with engine:
            result = await engine.merge_pr(PROJECT, number, sha)
    assert not result.merged and result.message == "changes requested by carol"
    assert project.merge_requests[number]["state"] == "opened"
    assert fake.calls("PUT", "/merge$") == 0


async def test_a_gitlab_without_the_reviewers_api_has_no_requested_changes(
    tmp_path: Path,
) -> None:
    fake = fake_with_project(tmp_path)
    project = fake.projects[PROJECT]
    async with serving(fake):
        number, sha = await open_mr(fake, tmp_path)
        project.pipelines[sha] = ["success"]
        fake.fail("GET", "/reviewers$", 404, body={"message": "404 Not found"})
        forge, _ = make_forge(fake, required_approvals=0)
        status = await forge.pull_request_status(PROJECT, number)
        await forge.aclose()
    assert not status.changes_requested and status.ready_to_merge


def test_reviewer_states_read_from_the_reviewers_list() -> None:
    reviewers = [
        {"user": {"username": "carol"}, "state": "requested_changes"},
        {"user": {"username": "dave"}, "state": "unreviewed"},
        {"user": {"username": "carol"}, "state": "requested_changes"},
        {"user": {}, "state": "requested_changes"},
        "not an entry",
    ]
    assert changes_requested_by(reviewers) == ("carol",)
    assert changes_requested_by({"message": "404 Not found"}) == ()
    assert merge_state("requested_changes") == (True, "")  # reported as its own reason
