"""boto3 clients for SQS and DynamoDB, and the one way the trio side calls them.

boto3 blocks, so every call runs in a worker thread under a CapacityLimiter (boto3 clients are
thread-safe; the limiter also sizes the HTTP connection pool). Errors are mapped here, at the
boundary, to StoreError with the AWS error code and message: never a credential, never a URL with
a query string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import boto3
import trio
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from tamma_trio.config import SqsQueueConfig
from tamma_trio.errors import StoreError

T = TypeVar("T")

DEFAULT_THREADS = 16
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0


@dataclass(frozen=True)
class AwsClients:
    """The two low-level clients of one region and endpoint."""

    sqs: Any
    dynamodb: Any


def make_clients(config: SqsQueueConfig, threads: int = DEFAULT_THREADS) -> AwsClients:
    """Build the clients; credentials come from boto3's normal chain (env, profile, role)."""
    settings = BotoConfig(
        region_name=config.region,
        max_pool_connections=threads,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"mode": "standard", "max_attempts": 4},
    )
    session = boto3.session.Session()
    try:
        build = partial(session.client, endpoint_url=config.endpoint_url, config=settings)
        return AwsClients(sqs=build("sqs"), dynamodb=build("dynamodb"))
    except (BotoCoreError, ValueError) as exc:
        raise StoreError(f"cannot set up the AWS clients: {exc}") from None


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ('' for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def describe(exc: BaseException) -> str:
    """A one-line reason for a failed AWS call, safe to log and show."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def as_store_error(what: str, exc: Exception) -> Exception:
    """StoreError for an AWS failure; any other exception (a bug) is returned as it is."""
    if isinstance(exc, BotoCoreError | ClientError):
        return StoreError(f"{what} failed: {describe(exc)}")
    return exc


def checked(what: str, call: Callable[[], T]) -> T:
    """Run one blocking AWS call; map a failure to StoreError naming ``what``."""
    try:
        return call()
    except (BotoCoreError, ClientError) as exc:
        raise StoreError(f"{what} failed: {describe(exc)}") from None


class Runner:
    """Runs blocking AWS calls off the trio thread, at most ``threads`` at once."""

    def __init__(self, threads: int = DEFAULT_THREADS) -> None:
        self.limiter = trio.CapacityLimiter(threads)

    async def raw(self, call: Callable[[], T]) -> T:
        """The call in a worker thread; botocore errors pass through for the caller to sort."""
        return await trio.to_thread.run_sync(call, limiter=self.limiter)

    async def run(self, what: str, call: Callable[[], T]) -> T:
        """The call in a worker thread; any AWS failure becomes StoreError naming ``what``."""
        return await trio.to_thread.run_sync(partial(checked, what, call), limiter=self.limiter)
