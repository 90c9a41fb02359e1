"""What `tasks list` and `tasks show` read beyond the task rows: the step each running task is
in, whether more rows exist than shown, and where a task's prompt, agent and test logs live.

A running task's step comes from its event trail (timeline.py), read only for the running
rows, so a list stays one query plus one per task in flight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tamma_trio.config import Config
from tamma_trio.models import ISSUE_TYPES, Task, TaskStatus, TaskType
from tamma_trio.store.base import TaskStore
from tamma_trio.timeline import StepSpan, current_step

PAGE = 1000


@dataclass(frozen=True)
class Listing:
    tasks: list[Task]
    more: bool  # rows exist beyond the ones shown
    steps: dict[int, StepSpan]  # the running tasks' current steps


async def list_live(
    store: TaskStore, status: TaskStatus | None, type: TaskType | None, limit: int | None
) -> Listing:
    """Newest first, ``limit`` of them (None: all), with the running ones' current steps."""
    tasks = await _fetch(store, status, type, limit)
    more = limit is not None and len(tasks) > limit
    shown = tasks[:limit] if limit is not None else tasks
    steps: dict[int, StepSpan] = {}
    for task in shown:
        if task.status is TaskStatus.IN_PROGRESS:
            span = current_step(await store.events(task.id))
            if span is not None:
                steps[task.id] = span
    return Listing(shown, more, steps)


async def _fetch(
    store: TaskStore, status: TaskStatus | None, type: TaskType | None, limit: int | None
) -> list[Task]:
    if limit is not None:  # one more than asked: tells whether more exist
        return await store.list_tasks(status=status, type=type, limit=limit + 1)
    found: list[Task] = []
    before: int | None = None
    while True:
        page = await store.list_tasks(status=status, type=type, before=before, limit=PAGE)
        found.extend(page)
        if len(page) < PAGE:
            return found
        before = page[-1].id


def log_files(config: Config, task: Task) -> list[Path]:
    """The prompt, agent and test logs the workflow engine keeps for this task's issue."""
    directory = task_directory(config, task)
    if directory is None or not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir() if path.is_file())


def task_directory(config: Config, task: Task) -> Path | None:
    if config.engine.name != "workflow" or task.type not in ISSUE_TYPES:
        return None
    from tamma_trio.engine.workflow_options import parse_options

    options = parse_options(config.engine.options()).resolved(Path.cwd())
    number = task.payload.get("issue", {}).get("number")
    repository = task.payload.get("repository")
    if not isinstance(number, int) or not isinstance(repository, str):
        return None
    return options.repo_root(repository) / "tasks" / str(number)


def approvals(details: Sequence[dict[str, object]]) -> list[str]:
    """Approval events as readable lines: the decision, then each rule with a mark."""
    lines: list[str] = []
    for detail in details:
        verdict = "auto-approved" if detail.get("approved") else "needs a human"
        lines.append(f"{detail.get('stage', '?')}: {verdict}")
        checks = detail.get("checks")
        for check in checks if isinstance(checks, list) else []:
            mark = "ok " if check.get("passed") else "NO "
            lines.append(f"  {mark} {check.get('rule', '?')}: {check.get('detail', '')}")
    return lines
