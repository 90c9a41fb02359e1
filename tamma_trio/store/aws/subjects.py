"""At most one running task per subject, with a lock item per busy subject in the keys table.

The lock names the task and its lease token. A task whose subject is busy is parked: its id goes
into the lock's ``parked`` set and its message is deleted; whoever frees the lock gets the set
back and sends those tasks a message again. A lock whose holder is gone (crashed between taking
the lock and writing its claim, or finished without freeing it) is stale and may be taken over;
the grace keeps a claim that is still between those two steps from being mistaken for one.
"""

from __future__ import annotations

from dataclasses import dataclass

from tamma_trio.models import Task, TaskStatus
from tamma_trio.store.aws.records import Record
from tamma_trio.store.aws.tables import Tables

LOCK_GRACE = 30.0
NO_TOKEN = "-"  # noqa: S105 - stands for "no lease", never a credential


@dataclass(frozen=True)
class Lock:
    task_id: int
    token: str
    at: float


def _key(subject: str) -> str:
    return f"subject#{subject}"


class Subjects:
    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    async def acquire(self, task: Task, previous_token: str | None, now: float) -> bool:
        """Lock ``task.subject`` for ``task``'s new lease (free, or held by its previous lease)."""
        return await self.tables.update_key(
            _key(task.subject),
            "SET task_id = :id, tok = :t, locked_at = :at",
            "attribute_not_exists(k) OR tok = :prev",
            {
                ":id": {"N": str(task.id)},
                ":t": {"S": task.lease_token or NO_TOKEN},
                ":at": {"N": repr(now)},
                ":prev": {"S": previous_token or NO_TOKEN},
            },
        )

    async def holder(self, subject: str) -> Lock | None:
        item = await self.tables.get_key(_key(subject))
        if item is None:
            return None
        return Lock(int(item["task_id"]["N"]), item["tok"]["S"], float(item["locked_at"]["N"]))

    async def take_over(self, task: Task, stale: Lock, now: float) -> bool:
        return await self.acquire(task, stale.token, now)

    async def park(self, task: Task, holder: Lock) -> bool:
        """Queue ``task`` behind the lock's holder; False when the lock changed meanwhile."""
        return await self.tables.update_key(
            _key(task.subject),
            "ADD parked :p",
            "tok = :t",
            {":p": {"SS": [f"{task.id}:{int(task.priority)}"]}, ":t": {"S": holder.token}},
        )

    async def release(self, subject: str, token: str | None) -> list[tuple[int, int]]:
        """Free the lock if ``token`` still holds it; the parked (task id, priority) pairs."""
        old = await self.tables.delete_key(
            _key(subject), "tok = :t", {":t": {"S": token or NO_TOKEN}}
        )
        parked = (old or {}).get("parked", {}).get("SS", [])
        pairs = (entry.split(":") for entry in parked)
        return [(int(task_id), int(priority)) for task_id, priority in pairs]


def is_stale(lock: Lock, holder: Record | None, now: float) -> bool:
    """True when the lock no longer protects a live lease of its task."""
    if holder is None:
        return True
    task = holder.task
    running = task.status is TaskStatus.IN_PROGRESS and task.lease_token == lock.token
    if running:
        return task.lease_expires is not None and task.lease_expires.timestamp() <= now
    return lock.at <= now - LOCK_GRACE
