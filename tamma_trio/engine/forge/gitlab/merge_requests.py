"""Merge requests on GitLab: find or open, one status poll, merge guarded by the head sha.

``detailed_merge_status`` is computed asynchronously after a push: while it is
"checking"/"unchecked" the poll asks again with a growing pause (bounded), and still unknown is
reported as None ("pending"), never as "not mergeable". CI is the head pipeline of the merge
request, counted only when it ran on the head sha; a head without one counts as pending for
``checks_grace`` seconds. Merges send the expected ``sha``, so a moved head is refused (409).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from tamma_trio.engine.forge.gitlab.client import GitLabClient, project_path
from tamma_trio.engine.forge.gitlab.verdicts import (
    approval_count,
    changes_requested_by,
    merge_state,
    pipeline_state,
)
from tamma_trio.engine.forge.http_util import Sleep, Wall
from tamma_trio.engine.forge.merging import ChecksGrace, MergeSettings
from tamma_trio.errors import EngineError
from tamma_trio.step_records import MergeResult, PRStatus, PullRequest

MERGE_STATUS_WAITS = (1.0, 2.0, 4.0, 8.0)  # at most 15 s spent asking GitLab again
STATES = {"opened": "open", "merged": "merged"}


def merge_request_record(repository: str, data: Mapping[str, Any]) -> PullRequest:
    return PullRequest(
        repository=repository,
        number=int(data["iid"]),
        url=str(data.get("web_url", "")),
        head_branch=str(data["source_branch"]),
        head_sha=str(data.get("sha") or ""),
        base=str(data["target_branch"]),
        state=STATES.get(str(data["state"]), "closed"),
        author=str((data.get("author") or {}).get("username", "")),
        labels=tuple(str(label) for label in data.get("labels") or ()),
        reference=f"!{data['iid']}",
    )


class MergeRequestOps(abc.ABC):
    client: GitLabClient
    wall: Wall
    sleep: Sleep
    merging: MergeSettings
    _first_seen: dict[str, float]

    @abc.abstractmethod
    async def ensure_labels(self, repository: str, labels: tuple[str, ...]) -> None:
        """Labels are a project operation; the forge provides it."""

    def _mr_path(self, repository: str, number: int, tail: str = "") -> str:
        return project_path(repository, f"/merge_requests/{number}{tail}")

    async def get_pull_request(self, repository: str, number: int) -> PullRequest:
        data = await self.client.get(self._mr_path(repository, number), project=repository)
        return merge_request_record(repository, data)

    async def find_pull_request(self, repository: str, head_branch: str) -> PullRequest | None:
        found = await self.client.get(
            project_path(repository, "/merge_requests"),
            project=repository,
            params={"source_branch": head_branch, "state": "opened"},
        )
        return merge_request_record(repository, found[0]) if found else None

    async def open_pull_request(
        self,
        repository: str,
        *,
        title: str,
        body: str,
        head_branch: str,
        base: str,
        author: str,
        labels: tuple[str, ...] = (),
    ) -> PullRequest:
        mr = await self.find_pull_request(repository, head_branch)
        if mr is None:
            await self.ensure_labels(repository, labels)
            reply = await self.client.call(
                "POST",
                project_path(repository, "/merge_requests"),
                project=repository,
                body={
                    "source_branch": head_branch,
                    "target_branch": base,
                    "title": title,
                    "description": body,
                    "labels": ",".join(labels),
                    "remove_source_branch": True,
                },
                allow=(409,),  # "Another open merge request already exists": a race with us
            )
            mr = (
                merge_request_record(repository, reply.data)
                if reply.status != 409
                else await self.find_pull_request(repository, head_branch)
            )
        if mr is None:
            raise EngineError(
                f"GitLab refused a merge request from {head_branch} in {repository}",
                code="pull_request_refused",
                retryable=False,
            )
        return await self._with_labels(mr, labels)

    async def _with_labels(self, mr: PullRequest, labels: tuple[str, ...]) -> PullRequest:
        missing = tuple(label for label in labels if label not in mr.labels)
        if not missing:
            return mr
        await self.ensure_labels(mr.repository, missing)
        await self.client.call(
            "PUT",
            self._mr_path(mr.repository, mr.number),
            project=mr.repository,
            body={"add_labels": ",".join(missing)},
        )
        return mr.model_copy(update={"labels": (*mr.labels, *missing)})

    async def _settled(self, repository: str, number: int) -> Mapping[str, Any]:
        """The merge request, asked again (bounded) while GitLab still checks mergeability."""
        path = self._mr_path(repository, number)
        data: Mapping[str, Any] = await self.client.get(path, project=repository)
        for pause in MERGE_STATUS_WAITS:
            settled = merge_state(str(data.get("detailed_merge_status", "")))[0] is not None
            if settled or data.get("state") != "opened":
                break
            await self.sleep(pause)
            data = await self.client.get(path, project=repository)
        return data

    async def pull_request_status(self, repository: str, number: int) -> PRStatus:
        data = await self._settled(repository, number)
        mr = merge_request_record(repository, data)
        path = self._mr_path(repository, number, "/approvals")
        approvals = approval_count(await self.client.get(path, project=repository))
        required = self.merging.required_approvals
        if mr.state != "open":
            return PRStatus(
                state=mr.state,
                mergeable=False,
                ci_state="none",
                ci_passed=False,
                approvals=approvals,
                required_approvals=required,
                changes_requested=False,
                head_sha=mr.head_sha,
                reasons=(f"merge request is {mr.state}",),
            )
        mergeable, merge_reason = merge_state(str(data.get("detailed_merge_status", "")))
        ci, ci_passed, ci_reason = self._ci(data.get("head_pipeline"), mr.head_sha)
        requesters = await self._changes_requested_by(repository, number)
        reasons = [
            *([merge_reason] if merge_reason else []),
            *([ci_reason] if ci_reason else []),
            *([f"{approvals} of {required} required approvals"] if approvals < required else []),
            *([f"changes requested by {', '.join(requesters)}"] if requesters else []),
        ]
        return PRStatus(
            state="open",
            mergeable=mergeable,
            ci_state=ci,
            ci_passed=ci_passed,
            approvals=approvals,
            required_approvals=required,
            changes_requested=bool(requesters),
            head_sha=mr.head_sha,
            reasons=tuple(reasons),
        )

    async def _changes_requested_by(self, repository: str, number: int) -> tuple[str, ...]:
        """Reviewers who asked for changes; a GitLab older than the reviewers API (404) has
        no "request changes" to read."""
        reply = await self.client.call(
            "GET",
            self._mr_path(repository, number, "/reviewers"),
            project=repository,
            params={"per_page": "100"},
            allow=(404,),
        )
        return changes_requested_by(reply.data) if reply.status == 200 else ()

    def _ci(self, pipeline: Mapping[str, Any] | None, sha: str) -> tuple[str, bool, str]:
        state = pipeline_state(pipeline, sha)
        if state != "none":
            return state, state == "success", "" if state == "success" else f"pipeline is {state}"
        return ChecksGrace(self.merging.checks_grace, self.wall, self._first_seen).no_checks(sha)

    async def merge_pull_request(
        self, repository: str, number: int, expected_sha: str, message: str
    ) -> MergeResult:
        squash = self.merging.merge_method == "squash"
        reply = await self.client.call(
            "PUT",
            self._mr_path(repository, number, "/merge"),
            project=repository,
            body={
                "sha": expected_sha,
                "squash": squash,
                ("squash_commit_message" if squash else "merge_commit_message"): message,
                "should_remove_source_branch": True,
            },
            allow=(405, 406, 409, 422),
        )
        said = reply.data.get("message", "") if isinstance(reply.data, Mapping) else ""
        if reply.status == 409:
            return MergeResult(merged=False, message=f"head moved: expected {expected_sha[:12]}")
        if reply.status in (405, 406, 422):
            return MergeResult(merged=False, message=f"not mergeable: {said}".rstrip(": "))
        sha = str(reply.data.get("merge_commit_sha") or reply.data.get("squash_commit_sha") or "")
        return MergeResult(merged=True, sha=sha, message=f"merged as {sha[:12]}")

    async def delete_branch(self, repository: str, branch: str) -> None:
        await self.client.call(
            "DELETE",
            project_path(repository, f"/repository/branches/{quote(branch, safe='')}"),
            project=repository,
            allow=(404,),  # already removed by should_remove_source_branch
        )
