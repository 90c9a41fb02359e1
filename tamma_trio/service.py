"""The only wiring: the store, the engine, and one root nursery holding every part of the daemon.

    root nursery
    ├── HTTP server(s): /health, /ready, /metrics, /api (stopped last, through its trigger)
    └── background: status snapshots, lease keeper (kept through the drain)
        └── workers: one task per claimed task, bounded by CapacityLimiter(max_concurrent_tasks)
            └── control: poller, retry timer (cancelled first: "stop claiming")

Each part is started with ``nursery.start``, so "started" means ready. Shutdown: stop claiming,
wait up to shutdown_timeout for the tasks in flight, interrupt the rest (released without
spending a retry), stop the servers. Every wait reads trio's clock, so MockClock drives it.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import trio
from trio_util import AsyncValue

from tamma_trio.cli_intake import CliIntakeTally
from tamma_trio.config import Config
from tamma_trio.engine.base import Engine, EngineContext
from tamma_trio.engine.kept_work import KeepsWork
from tamma_trio.engine.workflow_options import LocalForgeOptions
from tamma_trio.errors import sole_cause
from tamma_trio.event_feed import EventFeed
from tamma_trio.handlers import Handlers
from tamma_trio.intake import Intake
from tamma_trio.lease_keeper import LeaseKeeper
from tamma_trio.log import REDACTOR, Redactor
from tamma_trio.metrics import Metrics
from tamma_trio.models import NewTask, Task, TaskStatus
from tamma_trio.notify.publisher import Publisher
from tamma_trio.notify.sender import Sender
from tamma_trio.periodic import every
from tamma_trio.policy import Failure
from tamma_trio.poller import Poller, RetryTimer
from tamma_trio.reclaimer import LeaseReclaimer, reclaim_interval
from tamma_trio.retention import Retention
from tamma_trio.service_events import EventKind
from tamma_trio.status import ServiceState, ServiceStatus
from tamma_trio.store.base import TaskStore, WallClock
from tamma_trio.worker import Worker
from tamma_trio.workspace_retention import WorkspaceRetention

log = logging.getLogger(__name__)

SNAPSHOT_INTERVAL = 1.0
SNAPSHOT_TIMEOUT = 2.0
PRUNE_INTERVAL = 3600.0
DEFAULT_REPOSITORY = LocalForgeOptions().repository
DEFAULT_TRIGGER_LABEL = LocalForgeOptions().trigger_label

EngineBuilder = Callable[[EngineContext], Engine]


def trio_wall_clock() -> WallClock:
    """Wall time that follows trio's clock, so MockClock also moves persisted timestamps.

    Call inside ``trio.run``: the offset between the two clocks is taken once, at the call.
    Values are whole microseconds, the precision stores keep: a task added at ``t`` and stored
    as ``t`` rounded to the microsecond must be due to a claim at the same ``t``.
    """
    offset = time.time() - trio.current_time()
    return lambda: round(offset + trio.current_time(), 6)


class Service:
    """The daemon's parts, wired; ``run`` serves until ``request_shutdown`` has drained it."""

    def __init__(
        self,
        config: Config,
        store: TaskStore,
        build_engine: EngineBuilder,
        *,
        wall: WallClock,
        database_path: Path | None = None,
        rng: Callable[[], float] = random.random,
        redactor: Redactor = REDACTOR,
    ) -> None:
        svc = config.service
        self.config = config
        self.store = store
        self.wall = wall
        self.redactor = redactor
        self.status = ServiceStatus(started_at=trio.current_time())
        self.state = AsyncValue(ServiceState.STARTING)
        self.metrics = Metrics(self.status)
        self.limiter = trio.CapacityLimiter(svc.max_concurrent_tasks)
        self.poller = Poller(
            store,
            self.limiter,
            poll_interval=svc.poll_interval,
            lease_seconds=svc.lease_duration,
            on_claim=self.status.record_claim,
        )
        self.retry_timer = RetryTimer(store, wall, self.poller.wake)
        self.intake = Intake(store, self.poller.wake, self.metrics.tasks_received)
        context = EngineContext(
            bot_name=svc.bot_name,
            database_path=database_path,
            enqueue=self.enqueue,
            forge_stats=self.status.forge,
            redactor=redactor,
        )
        self.engine = build_engine(context)
        self.handlers = Handlers(self.engine, store, svc)
        self.event_feed = EventFeed()
        self.sender = Sender(
            store, config.notify, wall=wall, rng=rng, poll_interval=svc.poll_interval
        )
        self.publisher = Publisher(store, config.notify, self.event_feed, self.sender.wake)
        self.worker = Worker(
            store,
            self.handlers,
            svc,
            status=self.status,
            metrics=self.metrics,
            wall=wall,
            rng=rng,
            on_done=self.poller.wake,
            on_retry_scheduled=self.retry_timer.schedule,
            events=self.publisher,
        )
        self.lease_keeper = LeaseKeeper(store, self.worker, svc.lease_duration)
        self.cli_intake = CliIntakeTally(store, self.metrics.tasks_received)
        workspaces = (
            WorkspaceRetention(store, self.engine.kept_work())
            if isinstance(self.engine, KeepsWork)
            else None
        )
        self.retention = Retention(
            store, config.retention, wall, workspaces.sweep if workspaces else None
        )
        self.reclaimer = LeaseReclaimer(
            store, reclaim_interval(svc.lease_duration), self._on_reclaimed
        )
        self.urls: dict[str, str] = {}
        self._stopping = False
        self._stop_at = math.inf
        self._claiming = trio.CancelScope()  # around the poller and the retry timer
        self._http_stop = trio.Event()

    # --- called from outside ----------------------------------------------------------------

    async def enqueue(self, new: NewTask) -> Task:
        """Add a task and claim it at once (the engine's and the embedders' intake)."""
        task, _created = await self.intake.submit_one(new, source="forge")
        return task

    def request_shutdown(self) -> None:
        """Stop claiming and start the drain; the deadline counts from the first request."""
        if self._stopping:
            return
        self._stopping = True
        self._stop_at = trio.current_time() + self.config.service.shutdown_timeout
        self._set_state(ServiceState.DRAINING)
        self._claiming.cancel()  # at once: a task added after this call is never claimed

    # --- the daemon -------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[dict[str, str]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Recover orphans, start every part, serve, drain; started() gets the bound URLs."""
        quarantined = await self._recover_orphans()
        try:
            async with self.engine:
                await self._serve(quarantined, task_status)
        finally:
            self._set_state(ServiceState.STOPPED)  # once the engine has closed

    async def _serve(
        self, quarantined: list[Task], task_status: trio.TaskStatus[dict[str, str]]
    ) -> None:
        self.status.engine = type(self.engine).__name__
        for task in quarantined:
            await self._quarantined(task)
        async with trio.open_nursery() as root:
            self.urls = await self._start_http(root)
            async with trio.open_nursery() as background:
                await background.start(self._snapshots)
                await background.start(self.lease_keeper.run)
                await background.start(self.reclaimer.run)
                await background.start(self.sender.run)
                await background.start(self._prune_deliveries)
                if self.config.service.metrics.enabled:  # nobody could read the count
                    await background.start(self.cli_intake.run)
                if self.config.retention.enabled:
                    await background.start(self.retention.run)
                await self._work(task_status)
                await self.publisher.emit(EventKind.SERVICE_STOPPED, reason="shutdown")
                background.cancel_scope.cancel()
            self._http_stop.set()

    async def _work(self, task_status: trio.TaskStatus[dict[str, str]]) -> None:
        async with trio.open_nursery() as workers:
            start = partial(self._start_task, workers)
            reported = False
            with self._claiming:
                async with trio.open_nursery() as control:
                    await control.start(self.retry_timer.run)
                    await control.start(self.poller.run, start)
                    if not self._stopping:
                        self._set_state(ServiceState.RUNNING)
                    log.info("started: %d worker slot(s)", self.limiter.total_tokens)
                    await self.publisher.emit(
                        EventKind.SERVICE_STARTED, reason=f"boot {self.store.boot_id}"
                    )
                    task_status.started(self.urls)
                    reported = True
                    await trio.sleep_forever()  # until request_shutdown cancels _claiming
            if not reported:  # asked to stop while starting
                task_status.started(self.urls)
            await self._drain()

    def _start_task(self, workers: trio.Nursery, task: Task, slot: object) -> None:
        self.worker.start(workers, task, slot, self.limiter)
        if self.config.service.metrics.enabled:
            self.cli_intake.claimed(task)

    async def _drain(self) -> None:
        """Let tasks in flight finish until the deadline, then interrupt (release) the rest."""
        in_flight = len(self.worker.running)
        log.info("draining: %d task(s) in flight", in_flight)
        with trio.move_on_at(self._stop_at):
            while self.worker.running:
                await self.worker.idle.wait()
        if self.worker.running:
            log.warning("drain deadline reached: interrupting %d task(s)", len(self.worker.running))
            self.worker.interrupt_all()

    def _set_state(self, state: ServiceState) -> None:
        self.status.state = state
        self.state.value = state

    async def _recover_orphans(self) -> list[Task]:
        """Requeue what a crashed daemon left in progress; return the quarantined ones.

        Only on a single-daemon store: on a shared one the other boots are alive, and what a
        dead one held comes back when its leases expire.
        """
        if not self.store.single_daemon:
            return []
        recovered = await self.store.recover_orphans()
        quarantined = [task for task in recovered if task.status is TaskStatus.FAILED]
        if recovered:
            log.warning(
                "recovered %d task(s) left in progress by an earlier run (%d quarantined)",
                len(recovered),
                len(quarantined),
            )
        self.status.failed += len(quarantined)
        return quarantined

    async def _on_reclaimed(self, tasks: list[Task]) -> None:
        """Stop any attempt of ours still running a reclaimed task, let the poller claim the
        requeued ones, and escalate the ones quarantined for expiring too often."""
        for task in tasks:
            self.worker.lose(task.id)
        self.poller.wake()
        self.status.reclaimed += len(tasks)
        for task in tasks:
            if task.status is TaskStatus.FAILED:
                self.status.failed += 1
                await self._quarantined(task)

    async def _quarantined(self, task: Task) -> None:
        failure = _crash_loop(task)
        await self.publisher.emit(EventKind.TASK_QUARANTINED, task, failure.message)
        await self.worker.escalate_failed(task, failure)

    async def _prune_deliveries(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Forget deliveries older than delivery_retention_days, at start and then hourly."""
        task_status.started()
        retention = self.config.webhooks.delivery_retention_days * 86_400
        while True:
            try:
                pruned = await self.store.prune_deliveries(self.wall() - retention)
            except Exception as exc:  # a busy store: the next round will catch up
                log.warning("pruning the deliveries log failed: %s", exc)
            else:
                if pruned:
                    log.info("pruned %d delivery record(s) older than the retention", pruned)
            await trio.sleep(PRUNE_INTERVAL)

    # --- status and HTTP --------------------------------------------------------------------

    async def _snapshots(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Refresh what /health, /ready and /metrics read, so they never wait on the store."""
        await self._snapshot()
        task_status.started()
        await every(SNAPSHOT_INTERVAL, self._snapshot)

    async def _snapshot(self) -> None:
        status = self.status
        with trio.move_on_after(SNAPSHOT_TIMEOUT) as bounded:
            try:
                await self.store.ping()
                status.queue = await self.store.stats()
            except Exception as exc:
                status.store_ok, status.store_error = False, str(exc)
            else:
                status.store_ok, status.store_error = True, None
        if bounded.cancelled_caught:
            status.store_ok = False
            status.store_error = f"the store did not answer within {SNAPSHOT_TIMEOUT:g} s"

    async def _start_http(self, root: trio.Nursery) -> dict[str, str]:
        """Health and metrics share one server when their ports are equal, else two servers.

        The tasks API rides on the health server (or on the metrics one if health is off).
        """
        svc = self.config.service
        health, metrics = svc.health_check.enabled, svc.metrics.enabled
        if not (health or metrics):
            return {}
        # Imported here: a daemon with both servers off (tests, embedding) never loads quart.
        from tamma_trio.web import WebDeps, create_app, serve_app

        deps = WebDeps(
            self.store,
            self.status,
            self.metrics,
            self.poller.wake,
            svc,
            trio.current_time,
            events=self.event_feed,
            webhooks=self.config.webhooks,
            served=served_repositories(self.config),
            may_command=self.engine.author_may_command,
            trigger_label=trigger_label(self.config),
            forge_kind=self.config.engine.forge_kind,
            wall=self.worker.wall,
            redactor=self.redactor,
        )
        host = svc.health_check.host
        shared = health and metrics and svc.health_check.port == svc.metrics.port
        plan: list[tuple[tuple[str, ...], int, dict[str, bool]]] = []
        if shared:
            plan.append((("health", "metrics"), svc.health_check.port, {}))
        else:
            if health:
                flags = {"health": True, "metrics": False, "api": True}
                plan.append((("health",), svc.health_check.port, flags))
            if metrics:
                flags = {"health": False, "metrics": True, "api": not health}
                plan.append((("metrics",), svc.metrics.port, flags))
        urls: dict[str, str] = {}
        for names, port, flags in plan:
            app = create_app(deps, **flags)
            serve = partial(serve_app, app, host, port, shutdown_trigger=self._http_stop.wait)
            try:
                bound: list[str] = await root.start(serve)
            except* OSError as group:
                first = sole_cause(group)
                reason = first.strerror if isinstance(first, OSError) else str(first)
                where = f"{host}:{port}"
                raise OSError(f"cannot serve {' and '.join(names)} on {where}: {reason}") from None
            urls.update(dict.fromkeys(names, bound[0]))
        return urls


def _crash_loop(task: Task) -> Failure:
    """The store failed a task that kept dying with the daemon; a human hears of it as usual."""
    return Failure("crash_loop", task.error or "the daemon kept stopping during this task", False)


def _forge_options(config: Config) -> dict[str, Any]:
    forge = config.engine.options().get("forge")
    return forge if isinstance(forge, dict) else {}


def served_repositories(config: Config) -> frozenset[str]:
    """The repositories whose webhook deliveries are accepted: a remote forge's
    ``repositories``, else the local forge's ``repository`` (its default when unset)."""
    forge = _forge_options(config)
    if isinstance(forge.get("repositories"), list):
        return frozenset(str(name) for name in forge["repositories"])
    return frozenset({str(forge.get("repository", DEFAULT_REPOSITORY))})


def trigger_label(config: Config) -> str:
    """The label that asks the bot to work on an issue, as the forge is configured."""
    return str(_forge_options(config).get("trigger_label", DEFAULT_TRIGGER_LABEL))
