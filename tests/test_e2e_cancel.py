"""`tasks cancel` of a running issue task, end to end: a real `tamma-trio serve`, the local forge,
an agent that never finishes; the issue loses its in-progress label and says who cancelled."""

from __future__ import annotations

from pathlib import Path

import trio

from tamma_trio.models import TaskStatus
from tests.test_e2e_workflow import (
    CLI,
    add_issue,
    all_tasks,
    clean_env,
    forge_rows,
    serving,
    until,
    write_config,
)
from tests.workflow_helpers import agent_argv


async def test_cancelling_a_running_issue_tells_the_forge(tmp_path: Path) -> None:
    agent = agent_argv("sleep_forever.py", str(tmp_path / "agent.pid"))
    config = write_config(tmp_path, agent, agent_timeout=120)
    # A short lease: the daemon sees the cancel at its next renewal, a third of it later.
    config.write_text(config.read_text().replace("[service]\n", "[service]\nlease_duration = 6\n"))
    async with serving(tmp_path, config):
        number = await add_issue(config, "Never ends", "--label", "tamma")

        async def working() -> int | None:
            issue, _, _ = forge_rows(tmp_path, number)
            running = [t for t in await all_tasks(tmp_path) if t.status is TaskStatus.IN_PROGRESS]
            return running[0].id if running and "tamma:in-progress" in issue.labels else None

        task_id = await until(working, "the agent to be working on the issue")
        await trio.run_process(
            [*CLI, "tasks", "cancel", str(task_id), "--config", str(config)], env=clean_env()
        )

        async def told() -> list[str] | None:
            issue, comments, _ = forge_rows(tmp_path, number)
            said = [body for body in comments if f"task {task_id} (issue_assigned) was" in body]
            return said if "tamma:in-progress" not in issue.labels and said else None

        [comment] = await until(told, "the forge to hear of the cancel")
        assert "was cancelled by cli while it ran" in comment
    tasks = await all_tasks(tmp_path)
    assert [t.status for t in tasks if t.id == task_id] == [TaskStatus.CANCELLED]
