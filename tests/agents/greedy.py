"""Test agent that crosses a resource limit, chosen by its arguments.

    greedy.py PIDFILE KIND [PROMPT_FILE]
    KIND: memory:MB     allocate MB megabytes in one process, touching every page
          spread:NxMB   N child processes each holding MB megabytes (none over a per-process cap)
          cpu           spin forever
          fork:DEPTH    a bounded fork bomb: every process forks two children down to DEPTH
                        (2**(DEPTH+1)-1 processes at most, so a failed limit cannot hurt the host)
          title         read the issue title from PROMPT_FILE: "Hog ..." allocates 2048 MB,
                        anything else appends a line to CHANGES.txt like append_line.py

It writes "PID PGID" to PIDFILE first, so a test can look for survivors of its group.
"""

import os
import sys
import time
from pathlib import Path

MB = 1024 * 1024


def hold(megabytes: int) -> bytearray:
    block = bytearray(megabytes * MB)
    for offset in range(0, len(block), 4096):
        block[offset] = 1
    return block


def fork_bomb(depth: int) -> None:
    for _ in range(2):
        if depth > 0 and os.fork() == 0:
            fork_bomb(depth - 1)
    time.sleep(120)
    os._exit(0)


def spread(count: int, megabytes: int) -> None:
    for _ in range(count):
        if os.fork() == 0:
            kept = hold(megabytes)
            time.sleep(120)
            del kept
            os._exit(0)
    time.sleep(120)


def by_title(prompt_file: str) -> None:
    prompt = Path(prompt_file).read_text(encoding="utf-8")
    title = next(line[7:] for line in prompt.splitlines() if line.startswith("Title: "))
    if title.startswith("Hog"):
        hold(2048)
        return
    with Path("CHANGES.txt").open("a", encoding="utf-8") as changes:
        changes.write(f"#{os.environ['TAMMA_ISSUE_NUMBER']}: {title}\n")


def main() -> None:
    pidfile, kind = sys.argv[1], sys.argv[2]
    Path(pidfile).write_text(f"{os.getpid()} {os.getpgid(0)}\n")
    name, _, value = kind.partition(":")
    if name == "memory":
        hold(int(value))
        time.sleep(120)
    elif name == "spread":
        count, megabytes = value.split("x")
        spread(int(count), int(megabytes))
    elif name == "cpu":
        while True:
            pass
    elif name == "fork":
        fork_bomb(int(value))
    elif name == "title":
        by_title(sys.argv[3])


main()
