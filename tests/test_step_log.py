"""Each engine step of a task is one INFO line with its duration; a failing agent is one line
carrying the tail of its output and the path of its log, never a traceback."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from tamma_trio.config import ServiceConfig
from tamma_trio.errors import EngineError
from tamma_trio.handlers import Handlers
from tamma_trio.models import NewTask
from tamma_trio.step_log import output_tail
from tamma_trio.store.memory import MemoryStore
from tests.workflow_helpers import REPO, add_issue, make_engine


async def run_issue(tmp_path: Path, agent: list[str]) -> None:
    engine, database = make_engine(tmp_path, agent)
    number = add_issue(database, "Note it", "Say so in NOTES.txt", ("tamma", "complexity:low"))
    async with MemoryStore() as store:
        await store.add(
            NewTask.build("issue_assigned", {"repository": REPO, "issue": {"number": number}})
        )
        [task] = await store.claim(1)
        assert task.lease_token is not None
        async with engine:
            await Handlers(engine, store, ServiceConfig()).run(task, task.lease_token)


def step_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "step", None) is not None]


async def test_every_step_of_an_issue_is_logged_with_its_duration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text("from pathlib import Path\nPath('NOTES.txt').write_text('noted\\n')\n")
    caplog.set_level(logging.INFO, logger="tamma_trio.task")
    await run_issue(tmp_path, [sys.executable, str(agent)])
    records = step_records(caplog)
    assert [r.step for r in records] == [  # type: ignore[attr-defined]
        "select_issue",
        "analyze_issue",
        "generate_plan",
        "approval",
        "create_branch",
        "implement_code",
        "approval",
        "run_tests",
        "create_pull_request",
    ]
    assert all(r.levelno == logging.INFO and r.task_id == 1 for r in records)  # type: ignore[attr-defined]
    agent_line = records[5].getMessage()
    assert agent_line.startswith("step implement_code done in ") and agent_line.endswith(" s")
    assert records[3].getMessage() == "approval of the plan: auto-approved (every rule passed)"


async def test_a_failing_agent_is_one_line_with_its_output_tail_and_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import sys\nfor n in range(40):\n    print(f'working {n}', flush=True)\n"
        "print('fatal: no API key')\nsys.exit(3)\n"
    )
    caplog.set_level(logging.INFO, logger="tamma_trio.task")
    with pytest.raises(EngineError, match="agent exited with code 3"):
        await run_issue(tmp_path, [sys.executable, str(agent)])
    [failed] = [r for r in step_records(caplog) if r.levelno == logging.WARNING]
    assert failed.getMessage().startswith("step implement_code failed after ")
    assert failed.getMessage().endswith(" s: agent exited with code 3")
    assert failed.exc_info is None  # no traceback
    assert failed.code == "agent_failed"  # type: ignore[attr-defined]
    tail = failed.tail  # type: ignore[attr-defined]
    assert "fatal: no API key" in tail and "working 39" in tail and "working 30" not in tail
    assert "\n" not in tail
    assert Path(failed.log).is_file()  # type: ignore[attr-defined]


def test_output_tail_keeps_the_last_lines_on_one_line() -> None:
    assert output_tail("a\n\nb\nc\nd\ne\nf\n") == "b | c | d | e | f"
    assert output_tail("") == ""
    long = output_tail("x" * 2000)
    assert len(long) == 603 and long.startswith("...")
