"""Keeps the leases of running tasks alive while their handlers work.

A running task whose lease was not renewed would be handed to another worker after its
expiry; the keeper is also what carries `tasks cancel` to a running task, because cancelling in
the store takes the lease away.
"""

from __future__ import annotations

import logging

import trio

from tamma_trio.periodic import every
from tamma_trio.policy import classify
from tamma_trio.store.base import TaskStore
from tamma_trio.worker import LEASE_LOST, Worker

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Extends the leases of running tasks; a lease that is gone stops its task at once.

    A running task whose lease was not renewed would be handed to another worker after its
    expiry; the keeper also carries `tasks cancel` to a running task, because cancelling in the
    store takes the lease away.
    """

    def __init__(self, store: TaskStore, worker: Worker, lease_seconds: float) -> None:
        self.store = store
        self.worker = worker
        self.lease_seconds = lease_seconds
        self.interval = lease_seconds / 3

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await every(self.interval, self.renew)

    async def renew(self) -> None:
        tokens = self.worker.tokens()
        if not tokens:
            return
        try:
            held = await self.store.extend_leases(tokens, self.lease_seconds)
        except Exception as exc:
            log.warning("could not extend leases: %s", classify(exc).message)
            return
        for token in tokens:
            if token not in held:
                self.worker.stop(token, LEASE_LOST)
