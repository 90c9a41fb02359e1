"""Merge settings and the checks grace, shared by every forge that merges over an API.

A head with no CI registered yet counts as pending for ``checks_grace`` seconds after the forge
first saw it, so a merge never races CI that has not started; after that "no CI" passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tamma_trio.engine.forge.http_util import Wall


@dataclass(frozen=True)
class MergeSettings:
    merge_method: str = "merge"
    required_approvals: int = 1
    checks_grace: float = 120.0


@dataclass
class ChecksGrace:
    grace: float
    wall: Wall
    first_seen: dict[str, float] = field(default_factory=dict)

    def no_checks(self, sha: str) -> tuple[str, bool, str]:
        """(state, passed, reason) for a head that has no CI yet."""
        seen = self.first_seen.setdefault(sha, self.wall())
        waited = self.wall() - seen
        if waited < self.grace:
            left = self.grace - waited
            return "pending", False, f"no checks yet on the head (waiting {left:.0f} s more)"
        return "none", True, ""
