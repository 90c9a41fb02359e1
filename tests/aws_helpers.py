"""Moto's server mode on loopback, standing in for SQS and DynamoDB: the tests never reach AWS.

Importing moto here is deliberate: without moto[server] installed the AWS tests fail to import
(CI fails), they are never skipped.
"""

from __future__ import annotations

import logging
import uuid

from moto.server import ThreadedMotoServer

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


class MotoServer:
    """One moto server in a thread of the test process, on a free loopback port."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def start(self) -> MotoServer:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()


def unique_queue_name() -> str:
    """Each test gets its own queues and tables on the shared server."""
    return f"t{uuid.uuid4().hex[:16]}"


def sqs_config(endpoint: str, queue_name: str | None = None) -> SqsQueueConfig:
    return SqsQueueConfig(queue_name=queue_name or unique_queue_name(), endpoint_url=endpoint)


def create_resources(config: SqsQueueConfig, lease_seconds: float = 60) -> list[str]:
    """What `tamma-trio aws init` does, from the test's thread."""
    return ensure(make_clients(config), AwsNames(config.queue_name), lease_seconds)
