"""serve_app(): hypercorn's trio worker inside the caller's nursery.

Stopping goes through ``shutdown_trigger`` rather than cancelling the nursery, because a
cancelled hypercorn skips the app's shutdown hooks; graceful_timeout is short because the default
3 s is added to every shutdown while a keep-alive probe is connected.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart_trio import QuartTrio

GRACEFUL_TIMEOUT_SECONDS = 1.0
http_log = logging.getLogger("tamma_trio.http")


def bind_address(host: str, port: int) -> str:
    """hypercorn's bind syntax: IPv6 literals need brackets."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def hypercorn_config(host: str, port: int) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = [bind_address(host, port)]
    config.accesslog = None
    config.errorlog = http_log  # our handler and redaction, not a second stderr stream
    config.graceful_timeout = GRACEFUL_TIMEOUT_SECONDS
    return config


async def serve_app(
    app: QuartTrio,
    host: str,
    port: int,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until ``shutdown_trigger`` returns; started() reports the bound URLs.

    With port 0 the URLs carry the port the kernel chose.
    """
    await serve(
        app,
        hypercorn_config(host, port),
        shutdown_trigger=shutdown_trigger,
        task_status=task_status,
    )
