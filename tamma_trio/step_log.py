"""INFO lines for each engine step of a task: which step, how long, how it ended.

An operator following the log sees a task move (analyse, plan, approval, agent, tests, pull
request, merge) without opening the event trail. A failed step is one line that carries the
last lines of the agent's or the test command's output and the path of its full log, instead of
a traceback that says nothing about why the agent gave up.
"""

from __future__ import annotations

from typing import Any

from tamma_trio.errors import EngineError
from tamma_trio.log import task_logger
from tamma_trio.models import Task

TAIL_LINES = 5
TAIL_CHARS = 600


def step_done(task: Task, step: str, seconds: float) -> None:
    task_logger(task).info(
        "step %s done in %.2f s", step, seconds, extra={"step": step, "seconds": round(seconds, 3)}
    )


def step_failed(task: Task, step: str, seconds: float, exc: BaseException) -> None:
    extra: dict[str, Any] = {"step": step, "seconds": round(seconds, 3)}
    if isinstance(exc, EngineError):
        extra["code"] = exc.code
        if exc.context.get("log"):
            extra["log"] = str(exc.context["log"])
        tail = output_tail(str(exc.context.get("output_tail", "")))
        if tail:
            extra["tail"] = tail
    task_logger(task).warning("step %s failed after %.2f s: %s", step, seconds, exc, extra=extra)


def approval_decided(task: Task, stage: str, approved: bool, reasons: list[str]) -> None:
    verdict = "auto-approved" if approved else "needs a human"
    why = "; ".join(reasons) or "every rule passed"
    task_logger(task).info(
        "approval of the %s: %s (%s)", stage, verdict, why, extra={"step": "approval"}
    )


def output_tail(text: str) -> str:
    """The last non-empty lines of ``text`` on one line, so a log line stays one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    joined = " | ".join(lines[-TAIL_LINES:])
    return joined if len(joined) <= TAIL_CHARS else "..." + joined[-TAIL_CHARS:]
