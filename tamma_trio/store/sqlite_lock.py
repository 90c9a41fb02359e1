"""The one-daemon lock of a SQLite store: an exclusive flock on ``<real path>.lock``.

Two daemons on one file would each requeue the other's running tasks as orphans, so the daemon
(never the CLI) takes this lock before opening the store, and closing the descriptor drops it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from tamma_trio.errors import StoreError, StoreLockedError


def take_daemon_lock(path: Path, boot_id: str) -> int:
    """The locked descriptor of ``<path>.lock``; StoreLockedError if a daemon holds it."""
    # Keyed on the real file: a symlink (or a path through a symlinked folder) names the
    # same database, and a lock beside the link would let a second daemon in.
    lock_path = Path(f"{os.path.realpath(path)}.lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot create the lock file {lock_path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreLockedError(f"another tamma-trio daemon is using {path}") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} boot {boot_id}\n".encode())
    return fd
