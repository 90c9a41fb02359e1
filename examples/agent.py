"""The example coding agent of the README quickstart: deterministic, offline, no model.

tamma-trio runs it in the task's worktree as `python examples/agent.py PROMPT_FILE`. It reads
the prompt the engine wrote and:
- writes every fenced block of the issue whose info string is ``file:<path>`` to that path
  (so an issue can say exactly what a file should contain), and
- records the issue in CHANGELOG.md ("- #7: Add a farewell"), creating the file if needed.

It never commits or pushes: the engine does. Swap it for a real agent by setting
``[engine.agent] command = "claude"`` (or "codex", "aider").
"""

from __future__ import annotations

import re
import sys
from pathlib import Path, PurePosixPath

FILE_BLOCK = re.compile(r"^```file:(?P<path>\S+)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)


def field(prompt: str, name: str) -> str:
    for line in prompt.splitlines():
        if line.startswith(f"{name}: "):
            return line[len(name) + 2 :].strip()
    raise SystemExit(f"example agent: the prompt has no {name!r} line")


def safe_path(raw: str) -> Path:
    path = PurePosixPath(raw)
    if path.is_absolute() or ".." in path.parts:
        raise SystemExit(f"example agent: refusing to write outside the worktree: {raw}")
    return Path(*path.parts)


def main(prompt_file: str) -> None:
    prompt = Path(prompt_file).read_text(encoding="utf-8")
    number, title = field(prompt, "Issue"), field(prompt, "Title")
    for block in FILE_BLOCK.finditer(prompt):
        target = safe_path(block["path"])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block["body"], encoding="utf-8")
        print(f"wrote {target}")
    changelog = Path("CHANGELOG.md")
    text = changelog.read_text(encoding="utf-8") if changelog.exists() else "# Changelog\n\n"
    separator = "" if text.endswith("\n") else "\n"
    changelog.write_text(f"{text}{separator}- {number}: {title}\n", encoding="utf-8")
    print(f"recorded {number} in {changelog}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: agent.py PROMPT_FILE")
    main(sys.argv[1])
