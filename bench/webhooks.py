"""Signed GitHub deliveries at a steady rate against `tamma-trio serve` (SQLite FULL, no-op engine).

    python bench/webhooks.py                 # 200/s for 30 s, then rising rates for 5 s each
    python bench/webhooks.py --rate 200 --duration 10 --steps 200,400

Every delivery is a signed ``pull_request`` ``review_requested`` for its own pull request (one
subject each), encoded and signed before the clock starts, and sent open-loop on a schedule over
a few keep-alive connections, so the client costs little CPU and a slow answer cannot slow the
schedule down. Figures:

- ``ack_*``: from the scheduled send time to the 202 (the daemon answers after the commit).
- ``delivery_to_claim_p99``: from the scheduled send time to the task's ``started_at``.
- ``highest_rate_p99_under_100ms``: the highest step rate whose acknowledgement p99 stayed under
  100 ms with every delivery acknowledged.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BIN_DIR, bench_env, emit, log_tail, percentile, running
from bench.rawhttp import RawClient
from tamma_trio.intake.signatures import github_signature
from tamma_trio.store.sqlite import SqliteStore

SECRET = "bench-webhook-secret-0123456789abcdef"
REPOSITORY = "bench/repo"
CONNECTIONS = 16
DAEMON_GRACE = 40.0


def config_text(workdir: Path) -> str:
    db = json.dumps(str(workdir / "tasks.db"))
    return (
        '[service]\nmax_concurrent_tasks = 20\nbot_name = "tamma"\n'
        f'[service.queue.sqlite]\npath = {db}\nsynchronous = "FULL"\n'
        '[service.health_check]\nhost = "127.0.0.1"\nport = 0\n'
        "[service.metrics]\nport = 0\n"
        '[engine]\nname = "bench.noop_engine:create"\n'
        f'[engine.forge]\nrepository = "{REPOSITORY}"\n'
        f'[webhooks.github]\nsecrets = ["{SECRET}"]\n'
        '[log]\nlevel = "warning"\n'
    )


def delivery(host: str, number: int) -> bytes:
    """One signed request, ready to write to the socket."""
    body = json.dumps(
        {
            "action": "review_requested",
            "number": number,
            "pull_request": {"number": number, "title": "bench", "user": {"login": "octocat"}},
            "requested_reviewer": {"login": "tamma", "type": "User"},
            "repository": {"full_name": REPOSITORY},
            "sender": {"login": "octocat", "type": "User"},
        }
    ).encode()
    head = (
        f"POST /webhooks/github HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-GitHub-Event: pull_request\r\nX-GitHub-Delivery: bench-{number}\r\n"
        f"X-Hub-Signature-256: {github_signature(SECRET, body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Phase:
    rate: float
    count: int
    acks: list[float] = field(default_factory=list)
    sent_at: dict[int, float] = field(default_factory=dict)  # task id -> wall time scheduled
    failures: int = 0


async def run_phase(host: str, port: int, rate: float, seconds: float, first: int) -> Phase:
    """Send ``rate`` deliveries a second for ``seconds``, open-loop, on CONNECTIONS sockets."""
    phase = Phase(rate, int(rate * seconds))
    requests = [delivery(f"{host}:{port}", first + i) for i in range(phase.count)]
    clients = [await RawClient.connect(host, port) for _ in range(CONNECTIONS)]
    free: trio.MemorySendChannel[RawClient]
    free, idle = trio.open_memory_channel[RawClient](CONNECTIONS)
    for client in clients:
        free.send_nowait(client)
    start, wall_start = trio.current_time() + 0.1, time.time() + 0.1

    async def send(index: int) -> None:
        client = await idle.receive()
        try:
            status, body = await client.request(requests[index])
        finally:
            free.send_nowait(client)
        due = start + index / rate
        phase.acks.append(trio.current_time() - due)
        if status != 202:
            phase.failures += 1
            return
        phase.sent_at[int(json.loads(body)["task_id"])] = wall_start + index / rate

    async with trio.open_nursery() as nursery:
        for index in range(phase.count):
            await trio.sleep_until(start + index / rate)
            nursery.start_soon(send, index)
    for client in clients:
        await client.aclose()
    return phase


async def claim_delays(db: Path, phase: Phase) -> list[float]:
    """Scheduled send to started_at, for every task of the phase (waits until all are claimed)."""
    store = SqliteStore(db)
    async with store:
        delays: dict[int, float] = {}
        deadline = trio.current_time() + 60
        while len(delays) < len(phase.sent_at) and trio.current_time() < deadline:
            for task_id, sent in phase.sent_at.items():
                if task_id not in delays:
                    task = await store.get(task_id)
                    if task.started_at is not None:
                        delays[task_id] = task.started_at.timestamp() - sent
            await trio.sleep(0.2)
        return list(delays.values())


async def wait_url(log: Path, proc: Any) -> tuple[str, int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited early:\n{log_tail(log)}")
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("listening "):
                url = dict(part.split("=", 1) for part in line.split()[1:])["health"]
                host, port = url.removeprefix("http://").rsplit(":", 1)
                return host, int(port)
        await trio.sleep(0.05)
    raise TimeoutError(f"daemon did not start:\n{log_tail(log)}")


def ms(seconds: float) -> float:
    return seconds * 1000


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="tamma-bench-webhooks-"))
    config = workdir / "tamma.toml"
    config.write_text(config_text(workdir))
    log = workdir / "daemon.log"
    argv = [str(BIN_DIR / "tamma-trio"), "serve", "--config", str(config)]
    with running(
        argv, env=bench_env(), log_path=log, stop_signal=signal.SIGTERM, grace=DAEMON_GRACE
    ) as proc:
        host, port = await wait_url(log, proc)
        steady = await run_phase(host, port, args.rate, args.duration, first=1)
        emit("webhook_rate_per_s", steady.rate)
        emit("webhook_deliveries", steady.count)
        emit("webhook_failures", steady.failures)
        emit("ack_p50_ms", ms(percentile(steady.acks, 50)))
        emit("ack_p99_ms", ms(percentile(steady.acks, 99)))
        claims = await claim_delays(workdir / "tasks.db", steady)
        emit("delivery_to_claim_p50_ms", ms(percentile(claims, 50)))
        emit("delivery_to_claim_p99_ms", ms(percentile(claims, 99)))
        held = 0.0
        first = steady.count + 1
        for rate in args.steps:
            phase = await run_phase(host, port, rate, args.step_seconds, first=first)
            first += phase.count
            p99 = ms(percentile(phase.acks, 99))
            emit(f"step_{rate:g}_ack_p99_ms", p99)
            if phase.failures or p99 >= 100:
                break
            held = rate
        emit("highest_rate_p99_under_100ms", held)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="deliveries a second (200)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds at --rate (30)")
    parser.add_argument(
        "--steps",
        type=lambda text: [float(part) for part in text.split(",") if part],
        default=[200.0, 300.0, 400.0, 600.0, 800.0, 1000.0],
        help="rates tried, 5 s each, for the highest rate held (200,300,...,1000)",
    )
    parser.add_argument("--step-seconds", type=float, default=5.0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    trio.run(main, parse_args())
