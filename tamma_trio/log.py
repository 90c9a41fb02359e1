"""Logging: one setup call, two line formats, task context on every line, and secret redaction.

Redaction runs as a filter on our handler rather than on loggers, because records from other
libraries (hypercorn, httpx) propagate to the root handler without passing through our loggers'
filters; a handler filter sees every line that is about to be written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import pydantic_core

from tamma_trio.models import Task

LOG_FORMATS = ("console", "json")

# Shorter registered secrets would redact ordinary words; such values are not secrets anyway.
MIN_SECRET_LENGTH = 6
MASK = "***"
MEMO_MAX_LENGTH = 64
MEMO_ENTRIES = 1024

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization headers, whatever the scheme: keep the scheme word, mask the credential.
    (
        re.compile(r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)(\w+\s+)?[^\s\"',;]+"),
        rf"\1\2{MASK}",
    ),
    # Bearer tokens anywhere else in a line.
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1{MASK}"),
    # key=value and "key": "value" pairs whose key names a secret.
    (
        re.compile(
            r"(?i)([\"']?\b[\w-]*(?:token|secret|password|passwd|api[_-]?key|signature)"
            r"[\"']?\s*[=:]\s*[\"']?)([^\s\"'&,;}]+)"
        ),
        rf"\1{MASK}",
    ),
    # Credentials inside URLs: scheme://user:password@host or scheme://token@host.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@:]*(?::[^\s/@]*)?@"), rf"\1{MASK}@"),
    # Well-known token shapes (GitHub, GitLab, Slack, AWS access keys).
    (
        re.compile(
            r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
            r"|glpat-[A-Za-z0-9_-]{20,}|xox[abpr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16})\b"
        ),
        MASK,
    ),
)


# Every pattern above needs one of these words; most lines have none and skip the patterns.
_TRIGGER = re.compile(
    r"(?i)bearer|authoriz|token|secret|passw|api[_-]?key|signature|://"
    r"|gh[pousr]_|github_pat_|glpat-|xox[abpr]-|akia"
)


class Redactor:
    """Replaces secret-looking text and every registered secret value with a mask.

    It runs on every log line, so the common case (nothing to mask) is one regex search.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # log calls may come from worker threads
        self._secrets: tuple[str, ...] = ()  # replaced whole, so readers need no lock
        # Short values (task types, step names, actions) repeat on every line of a task.
        self._memo: dict[str, str] = {}

    def register(self, value: str) -> None:
        """Mask ``value`` verbatim from now on (a configured token, a webhook secret)."""
        if len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            # Longest first, so a secret that contains another is masked whole.
            self._secrets = tuple(sorted({*self._secrets, value}, key=len, reverse=True))
            self._memo = {}

    def clear(self) -> None:
        with self._lock:
            self._secrets = ()
            self._memo = {}

    def redact(self, text: str) -> str:
        if len(text) > MEMO_MAX_LENGTH:
            return self._redact(text)
        memo = self._memo
        found = memo.get(text)
        if found is None:
            if len(memo) >= MEMO_ENTRIES:
                memo.clear()
            found = memo[text] = self._redact(text)
        return found

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        if _TRIGGER.search(text) is None:
            return text
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


REDACTOR = Redactor()


def register_secrets(values: Iterable[str | None]) -> None:
    """Register configured secret values so they are masked in every later log line."""
    for value in values:
        if value:
            REDACTOR.register(value)


# Extras of these types cannot carry a secret and keep their JSON type in log lines.
_PLAIN_SCALARS = (int, float, bool, type(None))


class RedactionFilter(logging.Filter):
    """Renders each record's message, traceback and extras once, with secrets masked."""

    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self._redactor.redact
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break the caller's log call
            message = f"{record.msg!r} (unformattable arguments)"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in extras_of(record).items():
            if isinstance(value, str):
                setattr(record, name, redact(value))
            elif not isinstance(value, _PLAIN_SCALARS):
                # A dict or an object prints its contents; a secret could hide anywhere in it.
                setattr(record, name, redact(str(value)))
        return True


def extras_of(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller attached with ``extra=`` (task_id, task_type, ...)."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}


class _Clock:
    """ISO 8601 UTC times of records. The date and second change once a second, so they are
    formatted once a second instead of on every line, where formatting a datetime showed up."""

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")  # one tuple, so threads never see a mix

    def iso(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (
                second,
                time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)),
            )
        return f"{cached[1]}.{int(record.msecs):03d}+00:00"


_timestamp = _Clock().iso


def _json_line(line: dict[str, Any]) -> str:
    """pydantic-core's encoder, which is faster than the json module's, for every line; the json
    module stays for what it refuses (lone surrogates from undecodable output, non-UTF-8 bytes)."""
    try:
        return pydantic_core.to_json(line, fallback=str).decode()
    except pydantic_core.PydanticSerializationError:
        return json.dumps(line, default=str, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(extras_of(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return _json_line(line)


def json_record(logger: str, message: str, **fields: Any) -> str:
    """One INFO line in the JSON log format, for what is printed rather than logged (the
    listening line on stdout), so a shipper reading stdout sees only JSON."""
    record = logging.LogRecord(logger, logging.INFO, "", 0, message, None, None)
    record.__dict__.update(fields)
    return REDACTOR.redact(JsonFormatter().format(record))


class ConsoleFormatter(logging.Formatter):
    """Readable lines: time, level, logger, task context first, then the message and extras."""

    def format(self, record: logging.LogRecord) -> str:
        extras = extras_of(record)
        context = ""
        if "task_id" in extras:
            context = f"[task {extras.pop('task_id')} {extras.pop('task_type', '?')}] "
        tail = "".join([f" {key}={value}" for key, value in extras.items()]) if extras else ""
        clock = _timestamp(record)[11:23]
        text = f"{clock} {record.levelname:<7} {record.name}: {context}{record.getMessage()}{tail}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text = f"{text}\n{record.exc_text}"
        if record.stack_info:
            text = f"{text}\n{record.stack_info}"
        return text


class _TammaHandler(logging.StreamHandler[TextIO]):
    """Marks the handler setup_logging installed, so a second call replaces it."""


def setup_logging(
    level: str, fmt: str, *, secrets: Iterable[str | None] = (), stream: TextIO | None = None
) -> None:
    """Send every log line to stderr (or ``stream``) in ``fmt``, redacted, at ``level``.

    Idempotent: calling it again replaces the previous handler instead of doubling lines.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    register_secrets(secrets)
    handler = _TammaHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    handler.addFilter(RedactionFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _TammaHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # httpx logs every request with its full URL at INFO; outbound webhook URLs are secrets.
    logging.getLogger("httpx").setLevel(max(numeric, logging.WARNING))


def skip_unused_record_fields() -> None:
    """Stop computing record fields our formats never print (the logging HOWTO's
    "Optimization" section): caller file/line, thread, process and multiprocessing names.
    They are a large share of the cost of a log line, and the daemon logs per task. These are
    the logging module's globals, so only the daemon's entry point calls this.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


class TaskLoggerAdapter(logging.LoggerAdapter[logging.Logger]):
    """Adds task_id and task_type to every line, keeping any ``extra=`` of the call site."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def task_logger(task: Task, name: str = "tamma_trio.task") -> TaskLoggerAdapter:
    """A logger whose every line carries the task's id and type."""
    return TaskLoggerAdapter(
        logging.getLogger(name), {"task_id": task.id, "task_type": task.type.value}
    )
