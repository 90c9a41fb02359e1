"""Test command for the SIGTERM-mid-task scenario.

argv: MARKER. The first run writes "<pid> <pgid>" to MARKER and hangs (so the daemon is
stopped while the tests run); every later run (the resumed task, then CI) runs the real tests.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

marker = Path(sys.argv[1])
if not marker.exists():
    marker.write_text(f"{os.getpid()} {os.getpgid(0)}\n", encoding="utf-8")
    print("first run: hanging", flush=True)
    while True:
        time.sleep(1)
sys.exit(subprocess.call([sys.executable, "-m", "unittest", "-q"]))
