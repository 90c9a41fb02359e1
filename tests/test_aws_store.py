"""What only the AWS store has: messages that duplicate, go missing, come early or outlive
their task, the sweeper, `aws init` and the start-up check. Moto's server mode on loopback.

The shared contract runs in test_store_*.py; these tests look at the queues themselves too.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tamma_trio.cli import main as cli_main
from tamma_trio.config import QueueConfig, SqsQueueConfig
from tamma_trio.errors import StoreError
from tamma_trio.models import NewTask
from tamma_trio.service_events import EventKind, NewServiceEvent
from tamma_trio.store import open_store
from tamma_trio.store.aws import SqsStore, reads
from tamma_trio.store.aws.client import make_clients
from tamma_trio.store.aws.names import MAX_RECEIVES, AwsNames
from tamma_trio.store.aws.store import RESEND_AFTER
from tests.aws_helpers import create_resources, sqs_config
from tests.store_helpers import FakeWall, claim_one


def issue(number: int = 1, **options: Any) -> NewTask:
    payload = {"repository": "acme/widgets", "issue": {"number": number, "title": "t"}}
    return NewTask.build("issue_assigned", payload, **options)


@pytest.fixture
def aws(moto_endpoint: str) -> SqsQueueConfig:
    config = sqs_config(moto_endpoint)
    create_resources(config)
    return config


@pytest.fixture
async def store(aws: SqsQueueConfig, wall: FakeWall) -> AsyncIterator[SqsStore]:
    async with SqsStore(aws, clock=wall, boot_id="boot-a") as opened:
        yield opened


class Queue:
    """The priority-1 queue (normal tasks), read and written around the store."""

    def __init__(self, config: SqsQueueConfig, priority: int = 1) -> None:
        self.sqs = make_clients(config).sqs
        name = AwsNames(config.queue_name).queue(priority)
        self.url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]

    def send(self, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.url, MessageBody=body)

    def counts(self) -> tuple[int, int]:
        """(visible, in flight) messages."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        found = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)
        return tuple(int(found["Attributes"][name]) for name in names)  # type: ignore[return-value]

    def purge(self) -> None:
        self.sqs.purge_queue(QueueUrl=self.url)


# --- messages ------------------------------------------------------------------------------


async def test_a_message_sent_twice_runs_once(store: SqsStore, aws: SqsQueueConfig) -> None:
    task, _ = await store.add(issue())
    queue = Queue(aws)
    queue.send(str(task.id))  # a duplicate, as SQS's at-least-once delivery may hand out

    claimed = await store.claim(10)

    assert [t.id for t in claimed] == [task.id]
    assert await store.claim(10) == []
    assert queue.counts() == (0, 1)  # the duplicate was deleted; the lease keeps the original
    assert [e.kind for e in await store.events(task.id)] == ["enqueued", "claimed"]


async def test_a_cancelled_tasks_message_is_dropped(
    store: SqsStore, aws: SqsQueueConfig, wall: FakeWall
) -> None:
    task, _ = await store.add(issue())
    async with SqsStore(aws, clock=wall, boot_id="cli") as cli:  # the CLI, not the daemon
        await cli.cancel(task.id, actor="alice")
    queue = Queue(aws)
    assert queue.counts() == (1, 0)

    assert await store.claim(10) == []
    assert queue.counts() == (0, 0)
    assert (await store.get(task.id)).status == "cancelled"


async def test_a_message_of_a_task_not_yet_due_is_hidden_again(
    store: SqsStore, aws: SqsQueueConfig, wall: FakeWall
) -> None:
    task, _ = await store.add(issue())
    claimed = await claim_one(store)
    await store.retry_later(task.id, claimed.lease_token or "", "flaky", wall.now + 3600)
    queue = Queue(aws)
    queue.send(str(task.id))  # early: the sweeper of another daemon, or a stray duplicate

    assert await store.claim(10) == []
    assert queue.counts() == (0, 2)  # both wait, hidden until the retry is due
    assert (await store.get(task.id)).status == "queued"


async def test_a_body_that_is_no_task_id_is_left_for_the_dead_letter_queue(
    store: SqsStore, aws: SqsQueueConfig
) -> None:
    queue = Queue(aws)
    queue.send("not a task")

    assert await store.claim(10) == []
    assert queue.counts() == (0, 1)  # not deleted: after MAX_RECEIVES receipts SQS moves it
    attributes = queue.sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])
    policy = json.loads(attributes["Attributes"]["RedrivePolicy"])
    assert policy["maxReceiveCount"] == MAX_RECEIVES
    assert policy["deadLetterTargetArn"].endswith(f"{aws.queue_name}-dlq")


async def test_the_sweeper_sends_a_message_that_was_lost(
    store: SqsStore, aws: SqsQueueConfig, wall: FakeWall
) -> None:
    task, _ = await store.add(issue())
    Queue(aws).purge()  # the message is gone, as if the daemon died between write and send
    assert await store.claim(10) == []

    wall.advance(RESEND_AFTER)
    assert [t.id for t in await store.claim(10)] == [task.id]


async def test_a_parked_task_is_woken_when_its_subject_frees(
    store: SqsStore, aws: SqsQueueConfig
) -> None:
    first, _ = await store.add(issue(7))
    second, _ = await store.add(issue(7))
    [running] = await store.claim(10)
    assert running.id == first.id
    assert Queue(aws).counts() == (0, 1)  # second is parked: no message until first ends

    await store.complete(running.id, running.lease_token or "", {})

    assert [t.id for t in await store.claim(10)] == [second.id]


async def test_text_search_reads_only_the_newest_window(
    store: SqsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contract's window rule at a size moto writes in seconds (see TOO_SLOW_ON_STAND_IN)."""
    monkeypatch.setattr(reads, "TEXT_SEARCH_WINDOW", 5)
    needle = NewTask.build(
        "issue_assigned", {"repository": "acme/widgets", "issue": {"number": 1, "title": "needle"}}
    )
    await store.add(needle)
    await store.add_many([issue(n) for n in range(2, 7)])

    assert await store.list_tasks(text="needle") == []
    assert [t.id for t in await store.list_tasks(text="needle", before=5)] == [1]


async def test_a_retried_task_comes_back_on_sqss_own_clock(aws: SqsQueueConfig) -> None:
    """The rule test_claim_waits_for_not_before checks with a hand-driven clock, on real time."""
    store = SqsStore(aws)  # the real wall clock, the one SQS keeps
    async with store:
        task, _ = await store.add(issue())
        claimed = await claim_one(store)
        not_before = time.time() + 1.0
        await store.retry_later(task.id, claimed.lease_token or "", "flaky", not_before)
        assert await store.claim(1) == []

        again = await _claim_within(store, 15.0)

        assert again.id == task.id and again.attempts == 2
        assert again.started_at is not None and again.started_at.timestamp() >= not_before


async def _claim_within(store: SqsStore, seconds: float) -> Any:
    import trio

    with trio.fail_after(seconds):
        while not (tasks := await store.claim(1)):
            await trio.sleep(0.05)  # polling a condition, as SQS has no push to wait on
    return tasks[0]


# --- set-up and the start-up check -------------------------------------------------------------


def write_config(tmp_path: Path, config: SqsQueueConfig, lease: float = 60) -> Path:
    path = tmp_path / "tamma.toml"
    path.write_text(
        "[service]\n"
        f"lease_duration = {lease}\n"
        "[service.queue]\n"
        'type = "sqs"\n'
        "[service.queue.sqs]\n"
        f'queue_name = "{config.queue_name}"\n'
        f'endpoint_url = "{config.endpoint_url}"\n'
        "[engine]\n"
        'name = "tests.fake_engine:create"\n'
    )
    return path


def test_aws_init_creates_everything_once(
    moto_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = sqs_config(moto_endpoint)
    path = write_config(tmp_path, config)
    name = config.queue_name

    assert cli_main(["aws", "init", "--config", str(path)]) == 0
    created = capsys.readouterr().out.splitlines()
    assert created == [
        f"created queue {name}-dlq",
        *(f"created queue {name}-p{p}" for p in (3, 2, 1, 0)),
        f"created table {name}-tasks",
        f"created table {name}-keys",
    ]
    assert cli_main(["aws", "init", "--config", str(path)]) == 0
    assert all("already set up" in line for line in capsys.readouterr().out.splitlines())
    assert cli_main(["config", "check", "--config", str(path)]) == 0


def test_config_check_refuses_a_missing_queue(
    moto_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, sqs_config(moto_endpoint, "never-created"))

    assert cli_main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "the SQS queue 'never-created' is not ready to serve" in err
    assert "dead-letter queue never-created-dlq does not exist" in err
    assert "tamma-trio aws init" in err


def test_config_check_names_a_mis_set_queue_and_aws_init_corrects_it(
    aws: SqsQueueConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, aws, lease=30)  # the queues were made for 60 s leases
    queue = Queue(aws, priority=3)
    lax = {"deadLetterTargetArn": f"arn:aws:sqs:us-east-1:123456789012:{aws.queue_name}-dlq"}
    lax["maxReceiveCount"] = "1000"
    queue.sqs.set_queue_attributes(
        QueueUrl=queue.url, Attributes={"RedrivePolicy": json.dumps(lax)}
    )

    assert cli_main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"queue {aws.queue_name}-p3 has VisibilityTimeout 60, expected 30" in err
    assert f"queue {aws.queue_name}-p3 has RedrivePolicy" in err and "1000" in err

    assert cli_main(["aws", "init", "--config", str(path)]) == 0
    fixed = capsys.readouterr().out
    assert f"updated queue {aws.queue_name}-p3: RedrivePolicy, VisibilityTimeout" in fixed
    assert cli_main(["config", "check", "--config", str(path)]) == 0


def test_serve_refuses_a_missing_queue(
    moto_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, sqs_config(moto_endpoint, "not-there"))
    with path.open("a") as toml:
        toml.write("[service.health_check]\nport = 0\n[service.metrics]\nport = 0\n")

    assert cli_main(["serve", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "the AWS queue is not ready: dead-letter queue not-there-dlq does not exist" in err


async def test_a_store_on_a_missing_queue_does_not_open(moto_endpoint: str) -> None:
    store = open_store(
        QueueConfig(type="sqs", sqs=sqs_config(moto_endpoint, "absent")), lease_seconds=60
    )
    assert isinstance(store, SqsStore) and not store.single_daemon
    with pytest.raises(StoreError, match="run `tamma-trio aws init`"):
        async with store:
            pass


async def test_an_event_and_its_deliveries_are_written_together_or_not_at_all(
    store: SqsStore, aws: SqsQueueConfig
) -> None:
    """One transaction: when a delivery's item cannot be written (its id is taken here by
    hand), the event is not written either, and nothing is half published."""
    failed = NewServiceEvent(kind=EventKind.TASK_FAILED, task_id=1, reason="boom")
    first = await store.publish(failed, targets=["a"])
    dynamodb = make_clients(aws).dynamodb
    keys = AwsNames(aws.queue_name).keys_table
    taken = {"k": {"S": "notification#3"}, "doc": {"S": "{}"}}
    dynamodb.put_item(TableName=keys, Item=taken)  # the id the second delivery will get
    with pytest.raises(StoreError):
        await store.publish(failed, targets=["b", "c"])
    assert await store.service_events() == [first]
    dynamodb.delete_item(TableName=keys, Key={"k": {"S": "notification#3"}})
    [pending] = await store.notifications()
    assert pending.target == "a" and pending.event == first
