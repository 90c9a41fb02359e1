"""One way to run git: argv lists, a timeout on every call, no prompts, no operator config.

Every git call of the engine and of the local forge goes through ``Git.run`` so the rules hold
everywhere: GIT_TERMINAL_PROMPT=0 (a missing credential fails instead of hanging the daemon),
system and global config ignored (an operator's ``commit.gpgsign`` or credential helper must not
change what the daemon does), hooks disabled (an agent could plant one in the shared .git and
have it run with the engine's environment), and a timeout that is a retryable EngineError.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from tamma_trio.errors import EngineError

# Names passed from the daemon's environment to git and to agents; everything else is dropped,
# so a forge token in the daemon's environment never reaches a child by accident.
BASE_ENV_NAMES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "USER", "LOGNAME", "SHELL")


def minimal_env(extra_names: Sequence[str] = (), **overrides: str) -> dict[str, str]:
    """A child environment from a whitelist of the daemon's variables plus ``overrides``.

    This is the one place besides config.py that reads os.environ: a child needs PATH and HOME
    to run at all, and a whitelist is how we keep everything else (tokens) out.
    """
    names = (*BASE_ENV_NAMES, *extra_names)
    env = {name: os.environ[name] for name in names if name in os.environ}
    env.update(overrides)
    return env


@dataclass(frozen=True)
class GitResult:
    code: int
    stdout: str
    stderr: str


class Git:
    """Runs git by the daemon's rules; ``remote_env`` goes only to commands that reach origin."""

    def __init__(self, timeout: float, remote_env: Mapping[str, str] | None = None) -> None:
        self.timeout = timeout
        self._remote_env = dict(remote_env or {})
        self._env = minimal_env(
            GIT_TERMINAL_PROMPT="0",
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
            LC_ALL="C",
        )

    async def run(
        self,
        args: Sequence[str],
        cwd: Path,
        *,
        check: bool = True,
        remote: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> GitResult:
        """Run ``git <args>`` in ``cwd``; EngineError on timeout, and on failure if ``check``."""
        argv = ["git", "-c", f"core.hooksPath={os.devnull}", *args]
        child_env = {**self._env, **(self._remote_env if remote else {}), **(env or {})}
        with trio.move_on_after(self.timeout) as scope:
            done = await trio.run_process(
                argv,
                cwd=str(cwd),
                env=child_env,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                stdin=b"",
            )
        if scope.cancelled_caught:
            raise EngineError(
                f"git {args[0]} timed out after {self.timeout:g} s",
                code="git_timeout",
                retryable=True,
                context={"command": f"git {args[0]}"},
            )
        result = GitResult(done.returncode, _text(done.stdout), _text(done.stderr))
        if check and result.code != 0:
            raise git_failure(args, result)
        return result

    async def output(self, args: Sequence[str], cwd: Path) -> str:
        """stdout of a git command that must succeed, stripped."""
        return (await self.run(args, cwd)).stdout.strip()

    async def succeeds(self, args: Sequence[str], cwd: Path) -> bool:
        """True when the command exits 0 (for questions such as rev-parse --verify)."""
        return (await self.run(args, cwd, check=False)).code == 0


def git_failure(args: Sequence[str], result: GitResult, *, retryable: bool = True) -> EngineError:
    tail = result.stderr.strip()[-500:] or result.stdout.strip()[-500:]
    return EngineError(
        f"git {args[0]} failed (exit {result.code}): {tail}",
        code="git_failed",
        retryable=retryable,
        context={"command": f"git {args[0]}", "exit_code": result.code},
    )


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace")
