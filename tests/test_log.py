"""Logging: JSON lines parse and carry task context, console lines are readable, no secret leaks."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterator

import pytest

from tamma_trio.log import (
    REDACTOR,
    ConsoleFormatter,
    JsonFormatter,
    Redactor,
    setup_logging,
    task_logger,
)
from tamma_trio.models import Task, TaskPriority, TaskStatus, TaskType

NOW = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def make_task(task_id: int = 7) -> Task:
    return Task(
        id=task_id,
        type=TaskType.PR_COMMENT,
        priority=TaskPriority.NORMAL,
        payload={},
        status=TaskStatus.IN_PROGRESS,
        not_before=NOW,
        created_at=NOW,
        subject="o/r#1",
    )


@pytest.fixture(autouse=True)
def restore_logging_globals() -> Iterator[None]:
    """setup_logging turns off record fields our formats never print; other tests' log
    output (pytest shows file:line) must not lose them."""
    saved = (logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing)
    yield
    (
        logging._srcfile,
        logging.logThreads,
        logging.logProcesses,
        logging.logMultiprocessing,
    ) = saved


@pytest.fixture
def capture() -> Iterator[io.StringIO]:
    """Route the root logger to a buffer in JSON, restoring the previous setup afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    setup_logging("debug", "json", stream=buffer)
    yield buffer
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
    root.setLevel(saved_level)
    REDACTOR.clear()


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_lines_parse_and_carry_task_context(capture: io.StringIO) -> None:
    log = task_logger(make_task(42))
    log.info("step %s done", "analyse", extra={"step": "analyse"})
    log.warning("second line")
    first, second = lines(capture)
    assert first["message"] == "step analyse done"
    assert first["task_id"] == 42 and first["task_type"] == "pr_comment"
    assert first["step"] == "analyse" and first["level"] == "info"
    assert second["task_id"] == 42 and second["level"] == "warning"
    assert dt.datetime.fromisoformat(str(first["ts"])).tzinfo is not None


def test_json_line_includes_the_traceback(capture: io.StringIO) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("tamma_trio.test").exception("it failed")
    (line,) = lines(capture)
    assert "RuntimeError: boom" in str(line["exception"])


def record_at(created: float) -> logging.LogRecord:
    return logging.makeLogRecord(
        {"msg": "tick", "created": created, "msecs": (created - int(created)) * 1000}
    )


def test_timestamps_are_exact_across_a_second_boundary() -> None:
    """The date and second part is cached per second: each line must still show its own."""
    second = NOW.timestamp()
    json_times = [
        json.loads(JsonFormatter().format(record_at(second + offset)))["ts"]
        for offset in (0.25, 0.999, 1.0, 0.5, 3600 * 24)
    ]
    assert json_times == [
        "2025-01-02T03:04:05.250+00:00",
        "2025-01-02T03:04:05.999+00:00",
        "2025-01-02T03:04:06.000+00:00",
        "2025-01-02T03:04:05.500+00:00",
        "2025-01-03T03:04:05.000+00:00",
    ]
    assert ConsoleFormatter().format(record_at(second + 1.042)).startswith("03:04:06.042 ")


def test_json_line_of_text_the_fast_encoder_refuses_still_parses(capture: io.StringIO) -> None:
    """Output decoded with surrogateescape carries lone surrogates; the line is still written."""
    log = task_logger(make_task(3))
    log.info("agent printed %s", b"caf\xff".decode(errors="surrogateescape"))
    (line,) = lines(capture)
    assert str(line["message"]).startswith("agent printed caf") and line["task_id"] == 3


def test_console_lines_show_task_context_first() -> None:
    root = logging.getLogger()
    saved = list(root.handlers)
    buffer = io.StringIO()
    setup_logging("info", "console", stream=buffer)
    try:
        task_logger(make_task(9)).info("merged", extra={"sha": "abc123"})
        logging.getLogger("tamma_trio.x").debug("hidden below info")
    finally:
        for handler in [h for h in root.handlers if h not in saved]:
            root.removeHandler(handler)
    (line,) = buffer.getvalue().splitlines()
    assert "INFO" in line and "[task 9 pr_comment] merged sha=abc123" in line


def test_setup_twice_does_not_double_lines(capture: io.StringIO) -> None:
    setup_logging("info", "json", stream=capture)
    logging.getLogger("tamma_trio.x").info("once")
    assert len(lines(capture)) == 1


@pytest.mark.parametrize(("level", "fmt"), [("loud", "json"), ("info", "xml")])
def test_setup_rejects_unknown_level_or_format(level: str, fmt: str) -> None:
    with pytest.raises(ValueError, match=level if level == "loud" else fmt):
        setup_logging(level, fmt)


SECRET = "s3cr3t-configured-value"


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("calling with Authorization: Bearer abcdef123456789", "abcdef123456789"),
        ("header authorization=token ghp_notreallyatoken", "ghp_notreallyatoken"),
        ("retrying with bearer eyJhbGciOiJIUzI1NiJ9.payload", "eyJhbGciOiJIUzI1NiJ9"),
        ("GET /x?access_token=abc123def&page=2", "abc123def"),
        ('config {"token": "hunter2hunter2"}', "hunter2hunter2"),
        ("webhook_secret=topsecretvalue", "topsecretvalue"),
        ("password: correct-horse", "correct-horse"),
        ("push to https://x-access-token:ghs_abcdef@github.com/o/r.git", "ghs_abcdef"),
        ("redis://:pa55word@127.0.0.1:6379/0 unreachable", "pa55word"),
        ("token ghp_" + "A" * 36 + " expired", "ghp_" + "A" * 36),
        (f"agent printed {SECRET} in its output", SECRET),
    ],
)
def test_redaction_masks_secrets(capture: io.StringIO, text: str, leak: str) -> None:
    REDACTOR.register(SECRET)
    logging.getLogger("tamma_trio.x").info(text)
    logged = capture.getvalue()
    assert leak not in logged
    assert "***" in logged


def test_redaction_covers_arguments_extras_and_tracebacks(capture: io.StringIO) -> None:
    setup_logging("info", "json", secrets=[SECRET, None], stream=capture)
    log = logging.getLogger("tamma_trio.x")
    log.info("value %s", SECRET, extra={"url": f"https://u:{SECRET}@h/"})
    try:
        raise ValueError(f"bad token {SECRET}")
    except ValueError:
        log.exception("failed")
    assert SECRET not in capture.getvalue()
    assert len(lines(capture)) == 2


def test_redaction_covers_extras_that_are_not_strings(capture: io.StringIO) -> None:
    setup_logging("info", "json", secrets=[SECRET], stream=capture)
    logging.getLogger("tamma_trio.x").info(
        "request", extra={"headers": {"Authorization": f"Bearer {SECRET}"}, "attempt": 2}
    )
    assert SECRET not in capture.getvalue()
    [line] = lines(capture)
    assert line["attempt"] == 2  # plain numbers keep their type


def test_redaction_keeps_ordinary_text() -> None:
    redactor = Redactor()
    redactor.register("abc")  # too short to be a secret: would mask ordinary words
    text = "task 12 completed in 0.5 s: https://github.com/o/r/pull/3 merged; 3 tokens left"
    assert redactor.redact(text) == text


def test_unformattable_arguments_do_not_break_the_caller(capture: io.StringIO) -> None:
    logging.getLogger("tamma_trio.x").info("%d items", "not a number")
    (line,) = lines(capture)
    assert "unformattable" in str(line["message"])


def test_a_secret_registered_later_is_masked_in_text_seen_before() -> None:
    redactor = Redactor()
    assert redactor.redact("value late-secret-1") == "value late-secret-1"  # now memoized
    redactor.register("late-secret-1")
    assert redactor.redact("value late-secret-1") == "value ***"
    long_text = "x" * 100 + " late-secret-1"
    assert redactor.redact(long_text) == "x" * 100 + " ***"
