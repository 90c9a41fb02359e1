"""A delivery's intent carried out: looked up in the daemon's own records, authorised, stored
and logged.

Order matters for the promises of the webhook routes: a redelivery is answered from the log
before anything else happens; tasks and the log row are committed in one transaction before the
route answers; a command is obeyed only after ``authorize.refusal`` found no rule against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tamma_trio.comment_commands import Command
from tamma_trio.delivery import Delivery, DeliveryOutcome, DeliveryRecord
from tamma_trio.errors import TransitionError
from tamma_trio.intake import build
from tamma_trio.intake.authorize import CommandRules, MayCommand, refusal
from tamma_trio.intake.intents import (
    Cancel,
    ChecksPassed,
    CommandComment,
    Enqueue,
    Ignore,
    Intent,
    IssueRef,
    Refuse,
    Retry,
)
from tamma_trio.intake.submit import Intake
from tamma_trio.models import Task, TaskStatus, TaskType, issue_subject

ESCALATED_FOR_APPROVAL = build.ESCALATED_FOR_APPROVAL
MONITORING = "monitoring"
# The engine names its branches tamma/<issue>-<slug>: a green status on one is about that issue.
_BOT_BRANCH = re.compile(r"^tamma/(\d+)-")
_ACTIVE = (TaskStatus.QUEUED, TaskStatus.IN_PROGRESS)
_PULL_TYPES = (TaskType.PR_REVIEW_REQUESTED, TaskType.PR_COMMENT)


@dataclass(frozen=True)
class Meta:
    """What the route knows about a delivery before reading its intent."""

    forge: str
    delivery_id: str
    event: str
    action: str = ""
    repository: str = ""
    sender: str = ""
    body_sha256: str = ""

    @property
    def key(self) -> str:
        return f"{self.forge}:{self.delivery_id}"

    @property
    def actor(self) -> str:
        return f"{self.forge} delivery {self.delivery_id}"

    def record(
        self, outcome: DeliveryOutcome, reason: str = "", tasks: tuple[int, ...] = ()
    ) -> DeliveryRecord:
        return DeliveryRecord(
            forge=self.forge,
            delivery_id=self.delivery_id,
            event=self.event,
            action=self.action,
            repository=self.repository,
            sender=self.sender,
            outcome=outcome,
            reason=reason,
            body_sha256=self.body_sha256,
            task_ids=tasks,
        )


@dataclass(frozen=True)
class Answer:
    delivery: Delivery
    created: bool = False  # at least one new task was stored
    redelivered: bool = False  # the log already held this delivery id


class Deliveries:
    """Carries out intents: the webhook routes' and the local forge's comments."""

    def __init__(self, intake: Intake, rules: CommandRules, may_command: MayCommand) -> None:
        self.intake = intake
        self.store = intake.store
        self.rules = rules
        self.may_command = may_command

    async def known(self, forge: str, delivery_id: str) -> Delivery | None:
        return await self.store.get_delivery(forge, delivery_id)

    async def carry_out(self, meta: Meta, intent: Intent) -> Answer:
        """Resolve ``intent`` and store its effect with the delivery's log row."""
        resolved = await self._resolve(meta, intent)
        if isinstance(resolved, Enqueue):
            return await self._log(meta, meta.record(DeliveryOutcome.QUEUED), resolved)
        if isinstance(resolved, Cancel):
            return await self._cancel(meta, resolved)
        if isinstance(resolved, Retry):
            return await self._retry(meta, resolved.target)
        if isinstance(resolved, Refuse):
            return await self._log(meta, meta.record(DeliveryOutcome.REFUSED, resolved.reason))
        assert isinstance(resolved, Ignore)
        return await self._log(meta, meta.record(DeliveryOutcome.IGNORED, resolved.reason))

    async def _log(
        self, meta: Meta, record: DeliveryRecord, enqueue: Enqueue | None = None
    ) -> Answer:
        news = enqueue.tasks if enqueue is not None else ()
        delivery, added = await self.intake.submit_delivery(record, news, source="webhook")
        # A known delivery id: the store answered with the logged delivery and added nothing.
        redelivered = bool(news) and not added
        return Answer(delivery, any(created for _task, created in added), redelivered)

    # --- resolution -------------------------------------------------------------------------

    async def _resolve(self, meta: Meta, intent: Intent) -> Intent:
        if isinstance(intent, CommandComment):
            return await self._command(meta, intent)
        if isinstance(intent, ChecksPassed):
            return await self._checks_passed(meta, intent)
        return intent

    async def _command(self, meta: Meta, comment: CommandComment) -> Intent:
        target, command = comment.target, comment.command
        refused = await refusal(
            meta.forge, target.repository, comment.author, command, self.rules, self.may_command
        )
        if refused is not None:
            return Refuse(f"{command.value} refused: {refused}")
        if command is Command.CANCEL:
            return Cancel(target, include_running=True)
        if command is Command.RETRY:
            return Retry(target)
        if command is Command.APPROVE:
            return await self._approve(meta, target, comment.author.login)
        task = build.comment_task(
            target, comment.body, comment.author.login, key=meta.key, actor=meta.forge
        )
        return Enqueue((task,))

    async def _approve(self, meta: Meta, target: IssueRef, login: str) -> Intent:
        escalated = _waiting_for_approval(await self.store.tasks_of_subject(target.subject))
        if escalated is None:
            return Ignore(f"no task of {target.subject} is waiting for approval")
        return Enqueue((build.approval_of(escalated, login, key=meta.key, actor=meta.forge),))

    async def _checks_passed(self, meta: Meta, checks: ChecksPassed) -> Intent:
        """Look again at each pull request of the bot's that CI or an approval may unblock.

        A number the event names is looked at only if its last task left it monitoring (the
        event alone does not prove the pull request is the bot's). A number found through the
        bot's branch was opened by the bot's issue task, so it is also looked at when no task
        has looked at it yet: that is how a fresh merge request gets its first look.
        """
        opened_by_bot: dict[int, bool] = dict.fromkeys(checks.pull_numbers, False)
        for branch in checks.branches:
            for number in await self._pulls_of_branch(checks.repository, branch):
                opened_by_bot[number] = True
        tasks = []
        for number, ours in opened_by_bot.items():
            target = IssueRef(checks.repository, number, is_pull_request=True)
            if await self._waiting_for_checks(target, opened_by_bot=ours):
                key = f"{meta.key}:{number}"
                tasks.append(build.review_requested(target, key=key, actor=meta.forge))
        if not tasks:
            return Ignore("no pull request of the bot is waiting for CI")
        return Enqueue(tuple(tasks))

    async def _pulls_of_branch(self, repository: str, branch: str) -> list[int]:
        found = _BOT_BRANCH.match(branch)
        if found is None:
            return []
        tasks = await self.store.tasks_of_subject(issue_subject(repository, int(found.group(1))))
        return [number for task in tasks if (number := _opened_pull(task)) is not None]

    async def _waiting_for_checks(self, target: IssueRef, *, opened_by_bot: bool) -> bool:
        latest = await self._latest_pull_task(target)
        if latest is None:
            return opened_by_bot
        return _action(latest) == MONITORING

    async def _latest_pull_task(self, target: IssueRef) -> Task | None:
        """The newest task of the pull request; tasks stored before pull requests had their
        own subject (``owner/name#7``) count when it has none under the new one."""
        tasks = await self.store.tasks_of_subject(target.subject, limit=1)
        if not tasks:
            legacy = await self.store.tasks_of_subject(
                issue_subject(target.repository, target.number), limit=20
            )
            tasks = [task for task in legacy if task.type in _PULL_TYPES]
        return tasks[0] if tasks else None

    # --- effects on existing tasks ----------------------------------------------------------

    async def _cancel(self, meta: Meta, cancel: Cancel) -> Answer:
        statuses = _ACTIVE if cancel.include_running else (TaskStatus.QUEUED,)
        cancelled: list[int] = []
        for task in await self.store.tasks_of_subject(cancel.target.subject, limit=100):
            if task.status in statuses:
                try:
                    cancelled.append((await self.store.cancel(task.id, actor=meta.actor)).id)
                except TransitionError:  # it ended meanwhile
                    continue
        if not cancelled:
            which = "active" if cancel.include_running else "queued"
            reason = f"no {which} task of {cancel.target.subject}"
            return await self._log(meta, meta.record(DeliveryOutcome.IGNORED, reason))
        reason = f"cancelled {len(cancelled)} task(s) of {cancel.target.subject}"
        return await self._log(
            meta, meta.record(DeliveryOutcome.CANCELLED, reason, tuple(cancelled))
        )

    async def _retry(self, meta: Meta, target: IssueRef) -> Answer:
        tasks = await self.store.tasks_of_subject(target.subject)
        if tasks and tasks[0].status in _ACTIVE:
            reason = f"task {tasks[0].id} of {target.subject} is already {tasks[0].status.value}"
            return await self._log(meta, meta.record(DeliveryOutcome.IGNORED, reason))
        newest = tasks[0] if tasks else None
        if newest is not None and newest.status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            retried = await self.store.retry(newest.id, actor=meta.actor)
            self.intake.wake()
            record = meta.record(
                DeliveryOutcome.RETRIED, f"task {retried.id} queued again", (retried.id,)
            )
            return await self._log(meta, record)
        if (
            newest is not None
            and _action(newest) == ESCALATED_FOR_APPROVAL
            and not target.is_pull_request
        ):
            again = build.issue_assigned(target, key=meta.key, actor=meta.forge)
            return await self._log(meta, meta.record(DeliveryOutcome.QUEUED), Enqueue((again,)))
        reason = f"no failed or escalated task of {target.subject} to retry"
        return await self._log(meta, meta.record(DeliveryOutcome.IGNORED, reason))


def _action(task: Task) -> str | None:
    return None if task.result is None else str(task.result.get("action"))


def _waiting_for_approval(tasks: list[Task]) -> Task | None:
    """The newest task escalated for approval, unless a newer one of the subject is active."""
    for task in tasks:
        if task.status in _ACTIVE:
            return None
        if _action(task) == ESCALATED_FOR_APPROVAL:
            return task
    return None


def _opened_pull(task: Task) -> int | None:
    """The pull request an issue task opened, from its result."""
    pull = (task.result or {}).get("pull_request")
    number = pull.get("number") if isinstance(pull, dict) else None
    return number if isinstance(number, int) else None
