"""Runs one claimed task under its timeout and records how the attempt ended.

Every attempt ends in exactly one of: completed; queued again at its backoff (retried); queued
at a forge's rate-limit reset with the attempt refunded (deferred); failed and escalated
(retries spent, or the error cannot be helped by a retry); released without spending a retry
(shutdown); dropped (the lease was lost: an operator cancelled the task or a newer attempt owns
it). Cleanup after a cancellation is shielded and bounded, and catches
``BaseException`` because a handler's own nursery turns Cancelled into an exception group.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from tamma_trio.config import ServiceConfig
from tamma_trio.errors import LeaseLostError
from tamma_trio.log import task_logger
from tamma_trio.models import ESCALATED_FOR_APPROVAL, Outcome, Task, TaskStatus
from tamma_trio.policy import Failure, classify, deferral_time, retries_left, retry_delay
from tamma_trio.service_events import EventKind
from tamma_trio.status import ServiceStatus
from tamma_trio.store.base import TaskStore, WallClock
from tamma_trio.store.lifecycle import deferrals_of
from tamma_trio.worker_ports import NoEvents, TaskEvents, TaskHandlers, TaskMetrics

# Store writes after a cancellation: long enough for a busy SQLite, short enough for a drain.
CLEANUP_TIMEOUT = 5.0
# An escalation comment after the attempt must not hang a worker or a drain.
ESCALATE_TIMEOUT = 30.0

SHUTDOWN = "shutdown"
LEASE_LOST = "lease_lost"


@dataclass
class Running:
    """A task in flight: the scope that stops it and why it was stopped, if it was."""

    task: Task
    token: str
    free_slot: Callable[[], None]
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    stop_reason: str | None = None


class Worker:
    """Runs tasks handed over by the poller; the service's worker nursery bounds how many."""

    def __init__(
        self,
        store: TaskStore,
        handlers: TaskHandlers,
        config: ServiceConfig,
        *,
        status: ServiceStatus,
        metrics: TaskMetrics,
        wall: WallClock,
        rng: Callable[[], float],
        on_done: Callable[[], None],
        on_retry_scheduled: Callable[[float], None],
        events: TaskEvents | None = None,
    ) -> None:
        self.store = store
        self.handlers = handlers
        self.config = config
        self.status = status
        self.metrics = metrics
        self.wall = wall
        self.rng = rng
        self.on_done = on_done
        self.on_retry_scheduled = on_retry_scheduled
        self.events: TaskEvents = events or NoEvents()
        self.running: dict[str, Running] = {}
        self.idle = trio.Event()
        self.idle.set()

    # --- control, called by the service and the lease keeper --------------------------------

    def tokens(self) -> list[str]:
        return list(self.running)

    def stop(self, token: str, reason: str) -> None:
        """Cancel the attempt holding ``token``; it ends as ``reason`` says (no-op if gone)."""
        entry = self.running.get(token)
        if entry is not None and entry.stop_reason is None:
            entry.stop_reason = reason
            entry.scope.cancel()

    def lose(self, task_id: int) -> None:
        """The store took ``task_id`` back (its lease expired): stop the attempt running it, so
        the task never runs twice at once here; its late ending is refused by the token."""
        for token, entry in list(self.running.items()):
            if entry.task.id == task_id:
                self.stop(token, LEASE_LOST)

    def interrupt_all(self) -> None:
        """The drain deadline passed: stop every attempt; each is released, not retried."""
        for token in list(self.running):
            self.stop(token, SHUTDOWN)

    async def escalate_failed(self, task: Task, failure: Failure) -> None:
        """Escalate a task that failed outside an attempt (quarantined after crashes)."""
        tlog = task_logger(task)
        await self._escalate(task, failure, tlog)
        await self._finish(task, None, tlog)

    # --- one attempt ------------------------------------------------------------------------

    def start(
        self, nursery: trio.Nursery, task: Task, slot: object, limiter: trio.CapacityLimiter
    ) -> None:
        """Run ``task`` in ``nursery``, holding the capacity token taken on behalf of ``slot``.

        Synchronous, so the task is in ``running`` (seen by the drain and the lease keeper)
        from the moment the poller hands it over. The token is given back as soon as the
        handler is done, before the ending is written: the poller's next claim then joins
        those writes in one group commit, while no more than max_concurrent_tasks handlers
        ever run at once.
        """
        if task.lease_token is None:
            raise ValueError(f"task {task.id} was handed over without a lease")
        freed = False

        def free_slot() -> None:
            nonlocal freed
            if not freed:
                freed = True
                limiter.release_on_behalf_of(slot)
                self.on_done()

        entry = Running(task, task.lease_token, free_slot)
        self._enter(entry)
        nursery.start_soon(self._run, entry)

    async def _run(self, entry: Running) -> None:
        task = entry.task
        started = trio.current_time()
        tlog = task_logger(task)
        tlog.debug("attempt %d started", task.attempts)
        outcome = "failed"
        try:
            outcome = await self._attempt(entry, tlog)
        except LeaseLostError:
            outcome = await self._dropped(entry, tlog)
        except Exception:
            tlog.exception("recording the end of the attempt failed; its lease will expire")
        except BaseException:
            outcome = "interrupted"
            await self._release(entry, "interrupted by a hard stop", tlog)
            raise
        finally:
            entry.free_slot()
            self._leave(entry)
            self.metrics.task_finished(task.type.value, outcome, trio.current_time() - started)

    def _enter(self, entry: Running) -> None:
        self.running[entry.token] = entry
        self.status.active_tasks += 1
        self.metrics.task_started(entry.task.type.value)
        if self.idle.is_set():
            self.idle = trio.Event()

    def _leave(self, entry: Running) -> None:
        del self.running[entry.token]
        self.status.active_tasks -= 1
        if not self.running:
            self.idle.set()

    async def _attempt(self, entry: Running, tlog: logging.LoggerAdapter[logging.Logger]) -> str:
        """Run the handler, then record the ending; returns the metrics outcome."""
        if entry.task.undecodable is not None:
            entry.free_slot()
            return await self._unreadable(entry, tlog)
        # One scope for the timeout and for stop(): stop_reason tells them apart.
        entry.scope.deadline = trio.current_time() + self.config.task_timeout
        result: Outcome | None = None
        try:
            with entry.scope:
                result = await self.handlers.run(entry.task, entry.token)
        except LeaseLostError:
            entry.free_slot()
            return await self._dropped(entry, tlog)
        except Exception as exc:
            entry.free_slot()
            if entry.stop_reason is not None:
                return await self._stopped(entry, tlog)
            return await self._failed(entry, exc, tlog)
        entry.free_slot()
        if result is not None:  # finished, even if a stop came too late to interrupt it
            return await self._completed(entry, result, tlog)
        if entry.stop_reason is not None:
            return await self._stopped(entry, tlog)
        return await self._failed(entry, trio.TooSlowError(), tlog)  # the deadline passed

    async def _completed(
        self, entry: Running, result: Outcome, tlog: logging.LoggerAdapter[logging.Logger]
    ) -> str:
        await self.store.complete(entry.task.id, entry.token, result.as_result())
        self.status.completed += 1
        tlog.info("attempt %d completed: %s", entry.task.attempts, result.action)
        detail = {"action": result.action, "attempts": entry.task.attempts}
        await self.events.task_event(EventKind.TASK_COMPLETED, entry.task, result.action, detail)
        if result.action == ESCALATED_FOR_APPROVAL:
            reasons = result.detail.get("reasons") or ["the plan needs a human's approval"]
            reason = "; ".join(str(item) for item in reasons)
            kind = EventKind.ESCALATION_REQUIRED
            await self.events.task_event(kind, entry.task, reason, result.detail)
        await self._finish(entry.task, result, tlog)
        return "completed"

    async def _failed(
        self, entry: Running, exc: Exception, tlog: logging.LoggerAdapter[logging.Logger]
    ) -> str:
        failure = classify(exc)
        task = entry.task
        trace = exc if failure.code == "internal_error" else None
        if failure.retry_at is not None and await self._deferred(entry, failure, tlog):
            return "deferred"
        if failure.retryable and retries_left(task.attempts, task.max_retries):
            cfg = self.config
            delay = retry_delay(
                task.attempts - 1, cfg.retry_delay, cfg.max_retry_delay, rng=self.rng
            )
            not_before = max(self.wall() + delay, failure.retry_at or 0.0)  # deferrals spent
            delay = not_before - self.wall()
            await self.store.retry_later(task.id, entry.token, failure.message, not_before)
            self.status.retried += 1
            self.on_retry_scheduled(not_before)
            tlog.warning(
                "attempt %d failed, retry in %.1f s: %s",
                task.attempts,
                delay,
                failure.message,
                exc_info=trace,
            )
            detail = {"code": failure.code, "attempts": task.attempts, "retry_in": round(delay, 3)}
            await self.events.task_event(EventKind.TASK_RETRYING, task, failure.message, detail)
            return "retried"
        await self.store.fail(task.id, entry.token, failure.message)
        self.status.failed += 1
        detail = {"code": failure.code, "attempts": task.attempts}
        await self.events.task_event(EventKind.TASK_FAILED, task, failure.message, detail)
        tlog.error("failed after %d attempt(s): %s", task.attempts, failure.message, exc_info=trace)
        await self._escalate(task, failure, tlog)
        await self._finish(task, None, tlog)
        return "failed"

    async def _deferred(
        self, entry: Running, failure: Failure, tlog: logging.LoggerAdapter[logging.Logger]
    ) -> bool:
        """Queue the task again at the forge's reset with its attempt refunded; False once it
        has been deferred MAX_DEFERRALS times (counted in its own trail, which every store
        keeps), and the failure then spends a retry like any other."""
        task = entry.task
        deferrals = deferrals_of(await self.store.events(task.id))
        not_before = deferral_time(failure, deferrals, self.wall())
        if not_before is None:
            return False
        await self.store.retry_later(task.id, entry.token, failure.message, not_before, defer=True)
        self.status.retried += 1
        self.on_retry_scheduled(not_before)
        delay = not_before - self.wall()
        tlog.warning("deferred for %.1f s, attempt refunded: %s", delay, failure.message)
        detail = {"code": failure.code, "deferred": deferrals + 1, "retry_in": round(delay, 3)}
        await self.events.task_event(EventKind.TASK_RETRYING, task, failure.message, detail)
        return True

    async def _unreadable(self, entry: Running, tlog: logging.LoggerAdapter[logging.Logger]) -> str:
        """A stored row that cannot be read fails alone, unrun, with the decode error as its
        evidence: a retry would read the same bytes, and the engine could not even tell which
        repository to comment on."""
        error = f"the stored task cannot be read: {entry.task.undecodable}"
        await self.store.fail(entry.task.id, entry.token, error)
        self.status.failed += 1
        tlog.error("failed without running: %s", error)
        return "failed"

    async def _escalate(
        self, task: Task, failure: Failure, tlog: logging.LoggerAdapter[logging.Logger]
    ) -> None:
        """Tell a human through the engine, and leave an event saying whether that worked."""
        self.status.escalated += 1
        self.metrics.escalated(task.type.value)
        detail: dict[str, object] = {
            "code": failure.code,
            "error": failure.message,
            "attempts": task.attempts,
            "notified": True,
        }
        try:
            with trio.fail_after(ESCALATE_TIMEOUT):
                await self.handlers.escalate(task, failure)
        except Exception as exc:
            detail.update(notified=False, notify_error=classify(exc).message)
            tlog.error("escalation could not be delivered: %s", detail["notify_error"])
        tlog.warning("escalated to a human: %s", failure.message)
        await self.store.record_event(task.id, "escalated", detail)
        await self.events.task_event(EventKind.TASK_ESCALATED, task, failure.message, detail)

    async def _finish(
        self, task: Task, result: Outcome | None, tlog: logging.LoggerAdapter[logging.Logger]
    ) -> None:
        """The task ended for good: let the engine free its workspace (errors only logged).

        The handlers bound the engine call themselves: most tasks need none, and a timeout
        scope per task is measurable at thousands of tasks a second.
        """
        try:
            await self.handlers.finish(task, result)
        except Exception as exc:
            tlog.warning("engine cleanup failed: %s", classify(exc).message)

    async def _tell_cancelled(
        self, task: Task, tlog: logging.LoggerAdapter[logging.Logger]
    ) -> None:
        """Let the forge know the work stopped and who stopped it (errors only logged)."""
        with trio.move_on_after(CLEANUP_TIMEOUT, shield=True):
            try:
                await self.handlers.cancelled(task)
            except Exception as exc:
                tlog.warning("could not tell the forge of the cancel: %s", classify(exc).message)

    async def _stopped(self, entry: Running, tlog: logging.LoggerAdapter[logging.Logger]) -> str:
        if entry.stop_reason == SHUTDOWN:
            await self._release(entry, "interrupted by shutdown", tlog)
            return "interrupted"
        return await self._dropped(entry, tlog)

    async def _release(
        self, entry: Running, reason: str, tlog: logging.LoggerAdapter[logging.Logger]
    ) -> None:
        """Hand the task back without spending a retry; shielded, so a cancel cannot skip it."""
        with trio.move_on_after(CLEANUP_TIMEOUT, shield=True) as bounded:
            try:
                await self.store.release(entry.task.id, entry.token, reason)
            except Exception as exc:
                tlog.warning("could not release the task (%s); its lease will expire", exc)
                return
            self.status.interrupted += 1
            tlog.info("released: %s", reason)
        if bounded.cancelled_caught:
            tlog.warning("releasing the task timed out; its lease will expire")

    async def _dropped(self, entry: Running, tlog: logging.LoggerAdapter[logging.Logger]) -> str:
        """The lease is gone: say whether an operator cancelled the task or a newer attempt won."""
        task = entry.task
        current: Task | None = None
        with trio.move_on_after(CLEANUP_TIMEOUT, shield=True):
            try:
                current = await self.store.get(task.id)
            except Exception as exc:
                tlog.warning("could not read the task after losing its lease: %s", exc)
        if current is not None and current.status is TaskStatus.CANCELLED:
            tlog.info("cancelled by an operator; the attempt's result is dropped")
            await self._tell_cancelled(current, tlog)
            await self._finish(task, None, tlog)
            return "cancelled"
        tlog.warning("lease lost to a newer attempt; this attempt's result is dropped")
        return "lease_lost"
