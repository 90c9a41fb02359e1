"""Test agent: reads the prompt, changes nothing, exits 0."""

import sys
from pathlib import Path

Path(sys.argv[1]).read_text(encoding="utf-8")
print("nothing to do")
