"""Test agent: starts a child (in the same process group), records both pids, then hangs.

argv: PIDFILE [--ignore-term]. With --ignore-term both ignore SIGTERM, so only the engine's
SIGKILL after the grace period ends them. Writes "leader child pgid" to PIDFILE.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

if "--ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen(  # inherits SIG_IGN for SIGTERM
    [sys.executable, "-c", "import time\nwhile True: time.sleep(1)"]
)
Path(sys.argv[1]).write_text(f"{os.getpid()} {child.pid} {os.getpgid(0)}\n", encoding="utf-8")
print("hanging", flush=True)
while True:
    time.sleep(1)
