"""Moto's server mode on loopback, standing in for SQS and DynamoDB: the tests never reach AWS.

Importing moto here is deliberate: without moto[server] installed the AWS tests fail to import
(CI fails), they are never skipped.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from tamma_trio.config import SqsQueueConfig
from tamma_trio.store.aws.client import make_clients
from tamma_trio.store.aws.names import AwsNames
from tamma_trio.store.aws.setup import ensure

# Credentials boto3 finds first in its chain: fake ones, and no profile or instance role lookup.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class OneAtATime:
    """WSGI middleware: moto's backends are not thread-safe (a conditional write is a read then
    a write), while AWS applies each request atomically; one request at a time restores that."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with self.lock:
            return list(self.app(environ, start_response))


class MotoServer:
    """Moto's server on a free loopback port, in a thread of the test process."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        app = OneAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> MotoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


def unique_queue_name() -> str:
    """Each test gets its own queues and tables on the shared server."""
    return f"t{uuid.uuid4().hex[:16]}"


def sqs_config(endpoint: str, queue_name: str | None = None) -> SqsQueueConfig:
    return SqsQueueConfig(queue_name=queue_name or unique_queue_name(), endpoint_url=endpoint)


def create_resources(config: SqsQueueConfig, lease_seconds: float = 60) -> list[str]:
    """What `tamma-trio aws init` does, from the test's thread."""
    return ensure(make_clients(config), AwsNames(config.queue_name), lease_seconds)
