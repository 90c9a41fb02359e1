"""The fault kit: ways to break a store, a database or an agent that any test can reuse.

- ``FailingStore``: any TaskStore whose chosen methods raise StoreError while switched on
  (a store that cannot write: the disk is full, the database is locked, Redis is away).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from tamma_trio.errors import StoreError
from tamma_trio.store.base import TaskStore


class FailingStore:
    """Forwards to ``inner``; the methods named in ``failing`` raise StoreError instead.

    ``failing`` is a plain set the test edits while the daemon runs, so a fault can start and
    end at chosen moments. ``refused`` counts the refused calls by method name.
    """

    def __init__(self, inner: TaskStore, failing: Iterable[str] = ()) -> None:
        self.inner = inner
        self.failing = set(failing)
        self.refused: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not callable(target):
            return target
        return self._guard(name, target)

    def _guard(self, name: str, target: Callable[..., Any]) -> Callable[..., Any]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            if name in self.failing:
                self.refused[name] = self.refused.get(name, 0) + 1
                raise StoreError(f"injected fault: {name} failed")
            return await target(*args, **kwargs)

        return call if name not in _SYNC_METHODS else target

    def as_store(self) -> TaskStore:
        return cast(TaskStore, self)


_SYNC_METHODS = frozenset({"lock_for_daemon"})
