"""The one-daemon lock is keyed on the real database file, whatever path names it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from tamma_trio.errors import StoreLockedError
from tamma_trio.store.sqlite import SqliteStore


def aliases(tmp_path: Path) -> dict[str, Path]:
    real_dir = tmp_path / "data"
    real_dir.mkdir()
    (tmp_path / "linked-dir").symlink_to(real_dir, target_is_directory=True)
    (tmp_path / "link.db").symlink_to(real_dir / "tasks.db")
    return {
        "symlink to the file": tmp_path / "link.db",
        "symlinked folder": tmp_path / "linked-dir" / "tasks.db",
        "dotted path": real_dir / ".." / "data" / "tasks.db",
    }


@pytest.mark.parametrize("alias", ["symlink to the file", "symlinked folder", "dotted path"])
def test_a_second_daemon_through_another_path_is_refused(tmp_path: Path, alias: str) -> None:
    other_path = aliases(tmp_path)[alias]
    first = SqliteStore(tmp_path / "data" / "tasks.db")
    first.lock_for_daemon()
    try:
        with pytest.raises(StoreLockedError, match="another tamma-trio daemon is using"):
            SqliteStore(other_path).lock_for_daemon()
    finally:
        trio.run(first.aclose)

    second = SqliteStore(other_path)
    second.lock_for_daemon()  # the first one is gone
    trio.run(second.aclose)
    assert sorted(os.listdir(tmp_path / "data")) == ["tasks.db.lock"]
