"""Test agent: leaves a detached child behind, the way a daemonising tool does.

argv: PIDFILE [--hang]. Starts ``setsid sleep 600`` with this agent's stdout and stderr (so the
child holds the run's pipes open from another session and process group), writes
"agent_pid child_pid" to PIDFILE, prints a line, then exits 0 (or hangs with --hang).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

child = subprocess.Popen(["setsid", "sleep", "600"])
Path(sys.argv[1]).write_text(f"{os.getpid()} {child.pid}\n", encoding="utf-8")
print("left a detached child behind", flush=True)
if "--hang" in sys.argv:
    while True:
        time.sleep(1)
