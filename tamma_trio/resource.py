"""Things that open and close (a task store, a forge, an engine): ``async with`` is the one way.

Following trio's ``open_*`` convention, a factory builds the thing and ``async with`` opens it
and closes it on the way out, so no caller writes its own try/finally and none forgets to close
after a failed start. Closing is shielded and bounded: it runs even when the surrounding scope
was cancelled (a second signal, a drain deadline), and a stuck close cannot hang the exit.
"""

from __future__ import annotations

from typing import Self

import trio

CLOSE_TIMEOUT = 10.0


class Resource:
    """Base of a thing opened by ``async with``: subclasses write ``_open`` and ``aclose``.

    ``aclose`` must be safe after a failed or partial ``_open`` and when called twice: a failed
    open is closed at once, so what it had acquired (a lock, a connection) is released. Entering
    a thing that is already open is the backend's to refuse, and that refusal closes nothing.
    """

    _entered = False

    async def _open(self) -> None:
        """Connect, create or check what the thing needs; raise when it cannot serve."""

    async def aclose(self) -> None:
        """Release what ``_open`` acquired."""

    async def __aenter__(self) -> Self:
        already_open = self._entered
        try:
            await self._open()
        except BaseException:
            if not already_open:
                await self._close_bounded()
            raise
        self._entered = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._entered = False
        await self._close_bounded()

    async def _close_bounded(self) -> None:
        with trio.move_on_after(CLOSE_TIMEOUT, shield=True):
            await self.aclose()
