"""Pull requests on GitHub: find or open, one status poll, merge guarded by the head sha.

``mergeable`` is null while GitHub computes it (after a push or a base change): the status poll
asks again a few times with a growing pause, and still-null is reported as None ("pending"),
never as "not mergeable". CI is read on the head *sha* from both check runs and the combined
status; a head with neither counts as pending for ``checks_grace`` seconds after we first saw
it, so a merge never races CI that has not registered yet.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from tamma_trio.engine.forge.github.client import GitHubClient
from tamma_trio.engine.forge.github.verdicts import ci_state, review_counts
from tamma_trio.engine.forge.http_util import Sleep, Wall
from tamma_trio.engine.forge.merging import ChecksGrace, MergeSettings
from tamma_trio.errors import EngineError
from tamma_trio.step_records import MergeResult, PRStatus, PullRequest

MERGEABLE_WAITS = (1.0, 2.0, 4.0, 8.0)  # at most 15 s spent asking GitHub again

__all__ = ["MergeSettings", "PullRequestOps", "pull_record"]


def pull_record(repository: str, data: Mapping[str, Any]) -> PullRequest:
    state = "merged" if data.get("merged") or data.get("merged_at") else str(data["state"])
    return PullRequest(
        repository=repository,
        number=int(data["number"]),
        url=str(data.get("html_url", "")),
        head_branch=str(data["head"]["ref"]),
        head_sha=str(data["head"]["sha"]),
        base=str(data["base"]["ref"]),
        state="merged" if state == "merged" else ("open" if state == "open" else "closed"),
        author=str((data.get("user") or {}).get("login", "")),
        labels=tuple(str(label["name"]) for label in data.get("labels", ())),
    )


class PullRequestOps(abc.ABC):
    client: GitHubClient
    wall: Wall
    sleep: Sleep
    merging: MergeSettings
    _first_seen: dict[str, float]

    @abc.abstractmethod
    async def add_labels_to(self, repository: str, number: int, labels: tuple[str, ...]) -> None:
        """Labels are an issue operation; the forge provides it."""

    async def get_pull_request(self, repository: str, number: int) -> PullRequest:
        data = await self.client.get(f"/repos/{repository}/pulls/{number}", repository=repository)
        return pull_record(repository, data)

    async def find_pull_request(self, repository: str, head_branch: str) -> PullRequest | None:
        owner = repository.split("/", 1)[0]
        found = await self.client.get(
            f"/repos/{repository}/pulls",
            repository=repository,
            params={"head": f"{owner}:{head_branch}", "state": "open"},
        )
        return pull_record(repository, found[0]) if found else None

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
        pr = await self.find_pull_request(repository, head_branch)
        if pr is None:
            reply = await self.client.call(
                "POST",
                f"/repos/{repository}/pulls",
                repository=repository,
                body={"title": title, "body": body, "head": head_branch, "base": base},
                allow=(422,),  # "A pull request already exists": a race with ourselves
            )
            pr = (
                pull_record(repository, reply.data)
                if reply.status != 422
                else await self.find_pull_request(repository, head_branch)
            )
        if pr is None:
            raise EngineError(
                f"GitHub refused a pull request from {head_branch} in {repository}",
                code="pull_request_refused",
                retryable=False,
            )
        missing = tuple(label for label in labels if label not in pr.labels)
        if missing:
            await self.add_labels_to(repository, pr.number, missing)
            pr = pr.model_copy(update={"labels": (*pr.labels, *missing)})
        return pr

    async def _settled_pull(self, repository: str, number: int) -> Mapping[str, Any]:
        """The pull request, asked again (bounded) while GitHub still computes mergeable."""
        path = f"/repos/{repository}/pulls/{number}"
        data: Mapping[str, Any] = await self.client.get(path, repository=repository)
        for pause in MERGEABLE_WAITS:
            if data.get("mergeable") is not None or data.get("state") != "open":
                break
            await self.sleep(pause)
            data = await self.client.get(path, repository=repository)
        return data

    async def pull_request_status(self, repository: str, number: int) -> PRStatus:
        data = await self._settled_pull(repository, number)
        pr = pull_record(repository, data)
        reviews = await self.client.get_all(
            f"/repos/{repository}/pulls/{number}/reviews", repository=repository
        )
        approvals, changes_requested = review_counts(reviews)
        required = self.merging.required_approvals
        if pr.state != "open":
            return PRStatus(
                state=pr.state,
                mergeable=False,
                ci_state="none",
                ci_passed=False,
                approvals=approvals,
                required_approvals=required,
                changes_requested=changes_requested,
                head_sha=pr.head_sha,
                reasons=(f"pull request is {pr.state}",),
            )
        ci, ci_passed, ci_reason = await self._ci(repository, pr.head_sha)
        mergeable = data.get("mergeable")
        reasons = [
            *(["mergeability is still being computed"] if mergeable is None else []),
            *(["conflicts with the base branch"] if mergeable is False else []),
            *([ci_reason] if ci_reason else []),
            *([f"{approvals} of {required} required approvals"] if approvals < required else []),
            *(["changes requested"] if changes_requested else []),
        ]
        return PRStatus(
            state="open",
            mergeable=mergeable if isinstance(mergeable, bool) else None,
            ci_state=ci,
            ci_passed=ci_passed,
            approvals=approvals,
            required_approvals=required,
            changes_requested=changes_requested,
            head_sha=pr.head_sha,
            reasons=tuple(reasons),
        )

    async def _ci(self, repository: str, sha: str) -> tuple[Any, bool, str]:
        """(state, passed, reason) for the head sha; "none" passes only after the grace."""
        runs = await self.client.get_all(
            f"/repos/{repository}/commits/{sha}/check-runs", repository=repository, key="check_runs"
        )
        combined = await self.client.get(
            f"/repos/{repository}/commits/{sha}/status", repository=repository
        )
        state = ci_state(runs, combined)
        if state != "none":
            return state, state == "success", "" if state == "success" else f"CI is {state}"
        grace = ChecksGrace(self.merging.checks_grace, self.wall, self._first_seen)
        return grace.no_checks(sha)

    async def merge_pull_request(
        self, repository: str, number: int, expected_sha: str, message: str
    ) -> MergeResult:
        title, _, rest = message.partition("\n")
        reply = await self.client.call(
            "PUT",
            f"/repos/{repository}/pulls/{number}/merge",
            repository=repository,
            body={
                "merge_method": self.merging.merge_method,
                "sha": expected_sha,
                "commit_title": title,
                "commit_message": rest.strip(),
            },
            allow=(405, 409, 422),
        )
        if reply.status == 409:
            return MergeResult(merged=False, message=f"head moved: expected {expected_sha[:12]}")
        if reply.status in (405, 422):
            said = reply.data.get("message", "") if isinstance(reply.data, Mapping) else ""
            return MergeResult(merged=False, message=f"not mergeable: {said}".rstrip(": "))
        sha = str(reply.data.get("sha", ""))
        return MergeResult(merged=True, sha=sha, message=f"merged as {sha[:12]}")

    async def delete_branch(self, repository: str, branch: str) -> None:
        await self.client.call(
            "DELETE",
            f"/repos/{repository}/git/refs/heads/{quote(branch, safe='/')}",
            repository=repository,
            allow=(404, 422),  # already deleted (GitHub's "delete branch on merge" setting)
        )
