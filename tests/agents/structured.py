"""Test agent with structured answers: JSON for analyze and plan, an edit for implement.

The mode comes from TAMMA_MODE (also available as the {mode} placeholder).
"""

import json
import os
from pathlib import Path

mode = os.environ["TAMMA_MODE"]
if mode == "analyze":
    answer = {"complexity": "medium", "riskLevel": "low", "summary": "Agent says: small."}
    print("Here is my analysis:\n```json\n" + json.dumps(answer) + "\n```")
elif mode == "plan":
    assert Path("greeting.py").is_file(), "plan runs in a checkout of the default branch"
    files = [{"path": "/docs/notes.md", "action": "create"}]
    print(json.dumps({"summary": "Write notes", "files": files, "estimatedHours": 0.5}))
else:
    Path("docs").mkdir(exist_ok=True)
    Path("docs/notes.md").write_text("notes\n", encoding="utf-8")
