"""Script calls made at the same moment share one pipeline: one thread hop, one round trip.

A daemon's workers finish in bursts, and every task writes a step event, its ending and the
next claim; sent one by one, each would cost a thread hop and a network round trip. The first
caller becomes the flusher: it sends everything queued so far as one pipeline (EVALSHA per
call, no MULTI: each script is atomic by itself), hands every caller its own answer, and goes
on while calls keep arriving. This is the SQLite store's group commit, for Redis.

Scripts are loaded once; an answer NOSCRIPT (the server restarted or flushed its scripts)
means that call did not run, so the script is loaded again and the call sent again.

The waits are shielded: a caller cancelled meanwhile still receives what its call did (a claim
must reach its worker), and is cancelled at its next checkpoint, as with SQLite.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import outcome
import redis
import trio
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from tamma_trio.errors import StoreError
from tamma_trio.store.redis_server import Calls


@dataclass
class _Call:
    script: Script
    args: Sequence[Any]
    waiter: trio.lowlevel.Task | None = None
    result: outcome.Outcome[Any] | None = None

    def finish(self, result: outcome.Outcome[Any]) -> None:
        self.result = result
        if self.waiter is not None:
            trio.lowlevel.reschedule(self.waiter)


class ScriptBatcher:
    """Runs script calls for one client, batching the ones that overlap in time."""

    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self._pending: list[_Call] = []
        self._flushing = False

    async def run(self, client: redis.Redis, script: Script, args: Sequence[Any]) -> Any:
        call = _Call(script, args)
        self._pending.append(call)
        if self._flushing:
            # Uncancellable and cheaper than a shielded scope per call: the flusher always
            # finishes the batch (its own wait is shielded), and wakes this task.
            call.waiter = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(_cannot_abort)
        else:
            with trio.CancelScope(shield=True):
                await self._flush(client)
        assert call.result is not None
        return call.result.unwrap()

    async def _flush(self, client: redis.Redis) -> None:
        self._flushing = True
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    answers = await self.calls.run(functools.partial(_execute, client, batch))
                except StoreError as exc:
                    answers = [outcome.Error(exc) for _ in batch]
                for call, answer in zip(batch, answers, strict=True):
                    call.finish(answer)
        finally:
            self._flushing = False


def _cannot_abort(_: object) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


def _execute(client: redis.Redis, batch: list[_Call]) -> list[outcome.Outcome[Any]]:
    """Send ``batch`` as one pipeline; resend the calls that met NOSCRIPT after loading."""
    answers = _pipeline(client, batch)
    unloaded = [i for i, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
    if unloaded:
        for script in {batch[i].script for i in unloaded}:
            script.sha = client.script_load(script.script)
        again = _pipeline(client, [batch[i] for i in unloaded])
        for index, answer in zip(unloaded, again, strict=True):
            answers[index] = answer
    return [_outcome(answer) for answer in answers]


def _pipeline(client: redis.Redis, batch: list[_Call]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for call in batch:
        pipe.evalsha(call.script.sha, 0, *call.args)
    return list(pipe.execute(raise_on_error=False))


def _outcome(answer: Any) -> outcome.Outcome[Any]:
    if isinstance(answer, redis.RedisError):
        reason = f"{type(answer).__name__}: {answer}"
        return outcome.Error(StoreError(f"a Redis script failed: {reason}"))
    return outcome.Value(answer)
