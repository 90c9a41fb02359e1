"""Create a bare repository to act as the local forge's origin, with a small first commit.

Used by `tamma-trio forge init` (the quickstart's first command) and by the tests. The project
it seeds is tiny but real: a module, a unittest test (runs under both ``python -m unittest`` and
pytest) and a changelog the example agent appends to.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from tamma_trio.engine.git import minimal_env

GIT_TIMEOUT = 30

STARTER_FILES: Mapping[str, str] = {
    ".gitignore": "__pycache__/\n.pytest_cache/\n",
    "README.md": "# Demo project\n\nWorked on by tamma-trio.\n",
    "CHANGELOG.md": "# Changelog\n\n",
    "greeting.py": 'def greet(name: str) -> str:\n    return f"Hello, {name}!"\n',
    "test_greeting.py": (
        "import unittest\n\nfrom greeting import greet\n\n\n"
        "class GreetTest(unittest.TestCase):\n"
        "    def test_greets_by_name(self) -> None:\n"
        '        self.assertEqual(greet("Ada"), "Hello, Ada!")\n\n\n'
        'if __name__ == "__main__":\n    unittest.main()\n'
    ),
}


def _git(args: Sequence[str], cwd: Path) -> None:
    env = minimal_env(
        GIT_TERMINAL_PROMPT="0",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="tamma-trio",
        GIT_AUTHOR_EMAIL="tamma-trio@localhost",
        GIT_COMMITTER_NAME="tamma-trio",
        GIT_COMMITTER_EMAIL="tamma-trio@localhost",
    )
    subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, timeout=GIT_TIMEOUT
    )


def is_bare_repository(path: Path) -> bool:
    """True when ``path`` is itself a bare git repository (what `forge init` made earlier)."""
    if not (path / "HEAD").is_file():
        return False
    done = subprocess.run(
        ["git", "rev-parse", "--is-bare-repository"],
        cwd=path,
        env=minimal_env(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull),
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT,
        check=False,
    )
    return done.returncode == 0 and done.stdout.strip() == "true"


def init_origin(
    origin: Path, default_branch: str = "main", files: Mapping[str, str] | None = None
) -> None:
    """A bare repository at ``origin`` whose ``default_branch`` holds ``files`` (the starter
    project by default). Raises FileExistsError when ``origin`` exists and is not empty."""
    if origin.exists() and any(origin.iterdir()):
        raise FileExistsError(f"{origin} already exists and is not empty")
    origin.mkdir(parents=True, exist_ok=True)
    _git(["init", "-q", "--bare", f"--initial-branch={default_branch}", str(origin)], origin)
    with tempfile.TemporaryDirectory(prefix="tamma-seed-") as scratch:
        work = Path(scratch)
        _git(["init", "-q", f"--initial-branch={default_branch}"], work)
        for name, text in (files if files is not None else STARTER_FILES).items():
            path = work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        _git(["add", "-A"], work)
        _git(["commit", "-q", "-m", "Initial commit"], work)
        _git(["push", "-q", str(origin), f"HEAD:refs/heads/{default_branch}"], work)
