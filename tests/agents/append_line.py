"""Test agent: appends one line naming the issue to CHANGES.txt in the worktree (cwd)."""

import os
import sys
from pathlib import Path

prompt = Path(sys.argv[1]).read_text(encoding="utf-8")
title = next(line[7:] for line in prompt.splitlines() if line.startswith("Title: "))
with Path("CHANGES.txt").open("a", encoding="utf-8") as changes:
    changes.write(f"#{os.environ['TAMMA_ISSUE_NUMBER']}: {title}\n")
print(f"appended a line for issue #{os.environ['TAMMA_ISSUE_NUMBER']}")
