"""JSON errors for every failure the HTTP side can answer with.

Clients get ``{"error": code, "detail": message}`` (plus ``field`` when one input is at fault) for
every status, including the ones Quart raises itself (404, 405, 413), so no caller ever has to
parse an HTML error page. Bad input is never a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Quart
from quart.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from tamma_trio.errors import (
    StoreBusyError,
    StoreError,
    TaskNotFoundError,
    TransitionError,
    ValidationError,
)

log = logging.getLogger("tamma_trio.web")

NO_STORE = {"Cache-Control": "no-store"}


class ApiError(Exception):
    """A request the API refuses; carries the status, the code and a message safe to show."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error, "detail": self.detail}
        if self.field is not None:
            body["field"] = self.field
        return body


def error_response(error: ApiError) -> ResponseReturnValue:
    return error.body(), error.status, {**NO_STORE, **error.headers}


# The codes our own checks use, so a client sees one name whichever layer refused the request.
_CODE_NAMES = {413: "payload_too_large"}


def _http_code_name(exc: HTTPException) -> str:
    """werkzeug's 'Method Not Allowed' -> 'method_not_allowed'."""
    if exc.code in _CODE_NAMES:
        return _CODE_NAMES[exc.code]
    return (exc.name or "http_error").lower().replace(" ", "_").replace("-", "_")


async def _on_api_error(exc: ApiError) -> ResponseReturnValue:
    return error_response(exc)


async def _on_http_exception(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    detail = exc.description or exc.name or "request refused"
    headers = dict(exc.get_headers()) if status == 405 else {}
    headers.pop("Content-Type", None)
    return error_response(ApiError(status, _http_code_name(exc), detail, headers=headers))


async def _on_not_found(exc: TaskNotFoundError) -> ResponseReturnValue:
    return error_response(ApiError(404, "not_found", str(exc)))


async def _on_transition(exc: TransitionError) -> ResponseReturnValue:
    return error_response(ApiError(409, "conflict", str(exc)))


async def _on_validation(exc: ValidationError) -> ResponseReturnValue:
    return error_response(ApiError(400, "invalid_request", str(exc)))


# How soon a client may try again while the store is down (a Redis restart, a failover).
STORE_RETRY_AFTER = "5"
# ... and while its write queue is full: a few batches drain in well under a second.
BUSY_RETRY_AFTER = "1"


async def _on_store_busy(exc: StoreBusyError) -> ResponseReturnValue:
    log.warning("write refused, the store's queue is full: %s", exc)
    refusal = ApiError(
        503,
        "store_busy",
        "the task store has too many writes waiting; nothing was stored, try again",
        headers={"Retry-After": BUSY_RETRY_AFTER},
    )
    return error_response(refusal)


async def _on_store_error(exc: StoreError) -> ResponseReturnValue:
    log.warning("store unavailable for an API call: %s", exc)
    refusal = ApiError(
        503,
        "store_unavailable",
        "the task store did not answer; nothing was stored, try again",
        headers={"Retry-After": STORE_RETRY_AFTER},
    )
    return error_response(refusal)


async def _on_unexpected(exc: Exception) -> ResponseReturnValue:
    log.error("unhandled error in a request", exc_info=exc)
    return error_response(ApiError(500, "internal_error", "unexpected error; see the daemon log"))


def install_error_handlers(app: Quart) -> None:
    """Map every exception class a route can raise to its JSON answer."""
    app.register_error_handler(ApiError, _on_api_error)
    app.register_error_handler(HTTPException, _on_http_exception)
    app.register_error_handler(TaskNotFoundError, _on_not_found)
    app.register_error_handler(TransitionError, _on_transition)
    app.register_error_handler(ValidationError, _on_validation)
    app.register_error_handler(StoreBusyError, _on_store_busy)
    app.register_error_handler(StoreError, _on_store_error)
    app.register_error_handler(Exception, _on_unexpected)
