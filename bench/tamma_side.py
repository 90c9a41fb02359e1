"""tamma-trio's half of the comparison: `tamma-trio serve` as a subprocess on loopback.

Each phase gets a fresh SQLite file at synchronous FULL and the no-op engine; pre-filled tasks go
in through the store's own add_many before the daemon starts, so the drain measures claiming and
completing, not intake. Timings come from the tasks' own started_at/finished_at.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from bench.common import BIN_DIR, bench_env, log_tail, peak_rss_mb, running
from bench.rawhttp import RawClient
from tamma_trio.config import Config, load_config
from tamma_trio.models import NewTask, Task, TaskStatus
from tamma_trio.store import open_store

DAEMON_GRACE = 40.0  # the drain deadline (30 s) plus start-up slack
PREFILL_BATCH = 5_000
REPOSITORY = "bench/repo"


def review_payload(number: int) -> dict[str, Any]:
    """A pr_review_requested payload; distinct numbers, since a subject runs one task at a time."""
    return {"repository": REPOSITORY, "pull_request": {"number": number}}


@dataclass
class Daemon:
    """One daemon run: its directory, config file and, once started, its base URL."""

    workdir: Path
    log_level: str
    url: str = ""

    @property
    def config_path(self) -> Path:
        return self.workdir / "tamma.toml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "daemon.log"

    def write_config(self, concurrency: int) -> Config:
        self.workdir.mkdir(parents=True, exist_ok=True)
        db = json.dumps(str(self.workdir / "tasks.db"))
        self.config_path.write_text(
            f"[service]\nmax_concurrent_tasks = {concurrency}\n"
            f'[service.queue]\ntype = "sqlite"\n'
            f'[service.queue.sqlite]\npath = {db}\nsynchronous = "FULL"\n'
            f'[service.health_check]\nhost = "127.0.0.1"\nport = 0\n'
            f"[service.metrics]\nport = 0\n"
            f'[engine]\nname = "bench.noop_engine:create"\n'
            f'[log]\nlevel = "{self.log_level}"\n'
        )
        return load_config(self.config_path, env={})

    def argv(self) -> list[str]:
        return [str(BIN_DIR / "tamma-trio"), "serve", "--config", str(self.config_path)]


async def prefill(config: Config, count: int, first_number: int = 1) -> None:
    store = open_store(config.service.queue)
    async with store:
        for start in range(first_number, first_number + count, PREFILL_BATCH):
            stop = min(start + PREFILL_BATCH, first_number + count)
            news = [
                NewTask.build("pr_review_requested", review_payload(n)) for n in range(start, stop)
            ]
            await store.add_many(news)


async def completed_tasks(config: Config, count: int) -> list[Task]:
    store = open_store(config.service.queue)
    async with store:
        return await store.list_tasks(status=TaskStatus.COMPLETED, limit=count)


async def wait_listening(daemon: Daemon, proc: Any, deadline: float) -> str:
    """The health URL from the daemon's ``listening health=URL ...`` line."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited early:\n{log_tail(daemon.log_path)}")
        for line in daemon.log_path.read_text(errors="replace").splitlines():
            if line.startswith("listening "):
                fields = dict(part.split("=", 1) for part in line.split()[1:])
                return fields["health"]
        await trio.sleep(0.02)
    raise TimeoutError(f"daemon did not start:\n{log_tail(daemon.log_path)}")


async def completed_count(http: httpx.AsyncClient) -> int:
    body = (await http.get("/health")).json()
    return int(body["metrics"]["tasks_completed"])


async def wait_completed(http: httpx.AsyncClient, count: int, deadline: float) -> None:
    while await completed_count(http) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {await completed_count(http)} of {count} tasks completed")
        await trio.sleep(0.05)


def _seconds(stamp: str | dt.datetime | None) -> float:
    if stamp is None:
        raise ValueError("a completed task without a timestamp")
    moment = stamp if isinstance(stamp, dt.datetime) else dt.datetime.fromisoformat(stamp)
    return moment.timestamp()


async def drain(
    workdir: Path, count: int, concurrency: int, log_level: str, timeout: float
) -> float:
    """Tasks per second from the first start to the last finish of ``count`` queued tasks."""
    daemon = Daemon(workdir / "drain", log_level)
    config = daemon.write_config(concurrency)
    await prefill(config, count)
    deadline = time.monotonic() + timeout
    with running(
        daemon.argv(),
        env=bench_env(),
        log_path=daemon.log_path,
        stop_signal=signal.SIGTERM,
        grace=DAEMON_GRACE,
    ) as proc:
        url = await wait_listening(daemon, proc, deadline)
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            await wait_completed(http, count, deadline)
    tasks = await completed_tasks(config, count)
    first = min(_seconds(task.started_at) for task in tasks)
    last = max(_seconds(task.finished_at) for task in tasks)
    return len(tasks) / (last - first)


async def _post_many(url: str, numbers: range) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        for number in numbers:
            body = {"type": "pr_review_requested", "payload": review_payload(number)}
            response = await http.post("/api/tasks", json=body)
            if response.status_code != 201:
                raise RuntimeError(f"intake refused: {response.status_code} {response.text}")


async def _post_many_raw(url: str, numbers: range) -> None:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    client = await RawClient.connect(host, int(port))
    try:
        for number in numbers:
            body = {"type": "pr_review_requested", "payload": review_payload(number)}
            status, answer = await client.request(client.encode("POST", "/api/tasks", body))
            if status != 201:
                raise RuntimeError(f"intake refused: {status} {answer!r}")
    finally:
        await client.aclose()


BATCH_SIZE = 100


async def _post_batches(url: str, numbers: range) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for start in range(numbers.start, numbers.stop, BATCH_SIZE):
            chunk = range(start, min(start + BATCH_SIZE, numbers.stop))
            tasks = [{"type": "pr_review_requested", "payload": review_payload(n)} for n in chunk]
            response = await http.post("/api/tasks/batch", json={"tasks": tasks})
            if response.status_code != 201:
                raise RuntimeError(f"intake refused: {response.status_code} {response.text}")


async def intake_batched(url: str, count: int, clients: int, *, first: int) -> float:
    """Tasks per second added through POST /api/tasks/batch, BATCH_SIZE tasks a request."""
    share = count // clients
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for index in range(clients):
            start = first + index * share
            nursery.start_soon(_post_batches, url, range(start, start + share))
    return share * clients / (time.perf_counter() - started)


async def intake(url: str, count: int, clients: int, *, first: int = 1, raw: bool = False) -> float:
    """Tasks per second added through POST /api/tasks by ``clients`` concurrent clients.

    ``raw`` uses bench.rawhttp instead of httpx, to tell the server's limit from the client's.
    """
    share = count // clients
    post_many = _post_many_raw if raw else _post_many
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for index in range(clients):
            start = first + index * share
            nursery.start_soon(post_many, url, range(start, start + share))
    return share * clients / (time.perf_counter() - started)


async def _one_pickup(http: httpx.AsyncClient, number: int, deadline: float) -> float:
    body = {"type": "pr_review_requested", "payload": review_payload(number)}
    task = (await http.post("/api/tasks", json=body)).json()
    while task["status"] != "completed":
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task['id']} was not picked up")
        await trio.sleep(0.01)
        task = (await http.get(f"/api/tasks/{task['id']}")).json()
    return _seconds(task["started_at"]) - _seconds(task["created_at"])


async def pickups(
    url: str, samples: int, gaps: tuple[float, float], first_number: int, deadline: float
) -> list[float]:
    """created_at -> started_at of single tasks added through the API to an idle daemon."""
    found = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        for index in range(samples):
            await trio.sleep(random.uniform(*gaps))
            found.append(await _one_pickup(http, first_number + index, deadline))
    return found


@dataclass(frozen=True)
class IntakeRates:
    """Tasks per second through POST /api/tasks (httpx, then raw clients) and the batch route."""

    httpx_clients: float
    raw_clients: float
    batched: float


async def _intake_rates(url: str, count: int, clients: int, deadline: float) -> IntakeRates:
    """The three intake figures, then wait until the daemon has run what they added."""
    rates = IntakeRates(
        httpx_clients=await intake(url, count, clients),
        raw_clients=await intake(url, count, clients, first=count + 1, raw=True),
        batched=await intake_batched(url, count, clients, first=2 * count + 1),
    )
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        await wait_completed(http, 3 * (count - count % clients), deadline)
    return rates


async def intake_and_pickup(
    workdir: Path,
    *,
    count: int,
    clients: int,
    samples: int,
    gaps: tuple[float, float],
    log_level: str,
    timeout: float,
) -> tuple[IntakeRates | None, list[float]]:
    """(intake rates, pickup latencies in seconds), from one daemon run.

    ``count`` 0 skips the intake figures (None) and ``samples`` 0 the pickups ([]), so either
    can be measured alone; pickups come last, once the intake's tasks have all run.
    """
    daemon = Daemon(workdir / "intake", log_level)
    daemon.write_config(20)
    deadline = time.monotonic() + timeout
    with running(
        daemon.argv(),
        env=bench_env(),
        log_path=daemon.log_path,
        stop_signal=signal.SIGTERM,
        grace=DAEMON_GRACE,
    ) as proc:
        url = await wait_listening(daemon, proc, deadline)
        rates = await _intake_rates(url, count, clients, deadline) if count else None
        found = await pickups(url, samples, gaps, 3 * count + 1, deadline)
    return rates, found


async def _probe_health(url: str, done: Callable[[int], bool], deadline: float) -> list[float]:
    """/health latencies (ms) on one keep-alive connection, until ``done(completed)``."""
    latencies = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = await http.get("/health")
            latencies.append((time.perf_counter() - started) * 1000)
            if done(int(response.json()["metrics"]["tasks_completed"])):
                return latencies
            await trio.sleep(0.01)
    raise TimeoutError("the loaded daemon did not finish its queue")


async def loaded(
    workdir: Path, count: int, log_level: str, timeout: float
) -> tuple[float, list[float]]:
    """(peak RSS in MiB, /health latencies in ms) while draining ``count`` queued tasks."""
    daemon = Daemon(workdir / "loaded", log_level)
    config = daemon.write_config(20)
    await prefill(config, count)
    deadline = time.monotonic() + timeout
    with running(
        daemon.argv(),
        env=bench_env(),
        log_path=daemon.log_path,
        stop_signal=signal.SIGTERM,
        grace=DAEMON_GRACE,
    ) as proc:
        url = await wait_listening(daemon, proc, deadline)
        latencies = await _probe_health(url, lambda done: done >= count, deadline)
        rss = peak_rss_mb(proc.pid)
    return rss, latencies
