"""POST /webhooks/github and /webhooks/gitlab, and GET /api/deliveries.

The order of the checks is the order an attacker pays for them: a body over the limit is refused
(413) before it is read whole, the signature or token is checked on the raw bytes (401) before
anything is parsed, then the content type (415), the headers and the strict JSON (400). A known
delivery id is answered from the deliveries log (200, or 409 when the body differs). Only then
is the intent carried out, and the answer (202 with the task id) is sent after the commit.
Authenticated deliveries the bot does not act on get 2xx with the reason: GitLab disables hooks
that keep failing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from quart import Quart, request
from quart.typing import ResponseReturnValue

from tamma_trio.delivery import Delivery
from tamma_trio.errors import FieldError
from tamma_trio.intake import github, gitlab
from tamma_trio.intake.authorize import CommandRules
from tamma_trio.intake.deliveries import Answer, Deliveries, Meta
from tamma_trio.intake.github import Rules
from tamma_trio.intake.intents import Cancel, CommandComment, Ignore, Intent, Retry
from tamma_trio.intake.signatures import body_digest, github_verified, gitlab_verified
from tamma_trio.strict_json import JsonError, loads_object
from tamma_trio.web.api import query_page
from tamma_trio.web.auth import require_read_allowed
from tamma_trio.web.body import JSON_MEDIA_TYPE, declared_length, read_bounded
from tamma_trio.web.deps import WebDeps
from tamma_trio.web.errors import NO_STORE, ApiError

log = logging.getLogger("tamma_trio.web.webhooks")

MAX_ID = 200
Mapper = Callable[[str, Mapping[str, Any], str, Rules], Intent]


def _header(name: str, *, required: bool = True) -> str:
    value = request.headers.get(name, "").strip()
    if required and not value:
        raise ApiError(400, "invalid_request", f"missing header {name}")
    if len(value) > MAX_ID:
        raise ApiError(400, "invalid_request", f"header {name} is longer than {MAX_ID} characters")
    return value


def _require_json(forge: str) -> None:
    if request.mimetype == JSON_MEDIA_TYPE:
        return
    shown = request.mimetype or "none"
    hint = " (in the hook's settings, choose Content type: application/json)"
    raise ApiError(
        415,
        "unsupported_media_type",
        f"expected {JSON_MEDIA_TYPE}, got {shown}{hint if forge == 'github' else ''}",
    )


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        return loads_object(raw)
    except JsonError as exc:
        raise ApiError(400, "invalid_json", str(exc)) from None


def _answer(answer: Answer) -> ResponseReturnValue:
    delivery = answer.delivery
    body: dict[str, Any] = {
        "status": "duplicate" if answer.redelivered else delivery.outcome.value,
        "reason": delivery.reason,
        "task_ids": list(delivery.task_ids),
        "delivery": delivery.public(),
    }
    if delivery.task_ids:
        body["task_id"] = delivery.task_ids[0]
    return body, 202 if answer.created and not answer.redelivered else 200, NO_STORE


# Every other intent is logged in the same transaction as its tasks, and that write itself
# answers a redelivery (the store returns the logged delivery and adds nothing), which saves a
# round trip to the store on the hot path.
ACTS_BEFORE_LOGGING = (Cancel, Retry, CommandComment)


def _same_body(meta: Meta, logged: Delivery) -> None:
    if logged.body_sha256 != meta.body_sha256:
        raise ApiError(
            409, "conflict", f"delivery {meta.delivery_id} was received with a different body"
        )


class WebhookRoutes:
    def __init__(self, deps: WebDeps) -> None:
        self.deps = deps
        svc = deps.config
        hooks = deps.webhooks
        rules = CommandRules.build(
            svc.bot_name,
            hooks.github.trusted_associations,
            svc.command_authors,
            hooks.gitlab.command_authors,
        )
        self.deliveries = Deliveries(deps.intake, rules, deps.may_command)
        self.rules = Rules(svc.bot_name, deps.trigger_label, deps.served)

    async def _read(self) -> bytes:
        limit = self.deps.webhooks.max_body_bytes
        declared_length(limit)
        return await read_bounded(limit)

    async def github(self) -> ResponseReturnValue:
        raw = await self._read()
        signature = request.headers.get("X-Hub-Signature-256")
        if not github_verified(raw, signature, self.deps.webhooks.github.secrets):
            raise ApiError(401, "unauthorized", "missing or invalid X-Hub-Signature-256")
        event, delivery_id = _header("X-GitHub-Event"), _header("X-GitHub-Delivery")
        _require_json("github")
        body = _parse(raw)
        meta = Meta("github", delivery_id, event, *github.summary(body), body_digest(raw))
        if event == "ping":
            return await self._ping(meta, body)
        return await self._deliver(meta, body, github.intent_of)

    async def gitlab(self) -> ResponseReturnValue:
        raw = await self._read()
        if not gitlab_verified(
            request.headers.get("X-Gitlab-Token"), self.deps.webhooks.gitlab.tokens
        ):
            raise ApiError(401, "unauthorized", "missing or invalid X-Gitlab-Token")
        event = _header("X-Gitlab-Event")
        digest = body_digest(raw)
        # Idempotency-Key is the same on GitLab's retries (17.4 and later); older versions send
        # only the event's UUID.
        delivery_id = (
            _header("Idempotency-Key", required=False)
            or _header("X-Gitlab-Event-UUID", required=False)
            or f"sha256:{digest}"
        )
        _require_json("gitlab")
        body = _parse(raw)
        meta = Meta("gitlab", delivery_id, event, *gitlab.summary(body), digest)
        return await self._deliver(meta, body, gitlab.intent_of)

    async def _known(self, meta: Meta) -> ResponseReturnValue | None:
        known = await self.deliveries.known(meta.forge, meta.delivery_id)
        if known is None:
            return None
        _same_body(meta, known)
        return _answer(Answer(known, redelivered=True))

    async def _ping(self, meta: Meta, body: Mapping[str, Any]) -> ResponseReturnValue:
        ping = github.parse(github.Ping, body)
        answer = await self.deliveries.carry_out(meta, Ignore(f"ping of hook {ping.hook_id}"))
        _same_body(meta, answer.delivery)
        return {
            "status": "pong",
            "hook_id": ping.hook_id,
            "delivery": answer.delivery.public(),
        }, 200

    async def _deliver(
        self, meta: Meta, body: Mapping[str, Any], mapper: Mapper
    ) -> ResponseReturnValue:
        try:
            intent = mapper(meta.event, body, meta.delivery_id, self.rules)
        except FieldError as exc:
            raise ApiError(400, "invalid_payload", str(exc), field=exc.field) from None
        if isinstance(intent, ACTS_BEFORE_LOGGING):
            # These change tasks before the log row is written: a redelivery must stop first.
            repeated = await self._known(meta)
            if repeated is not None:
                return repeated
        answer = await self.deliveries.carry_out(meta, intent)
        _same_body(meta, answer.delivery)
        log.info(
            "%s delivery %s (%s %s): %s %s",
            meta.forge,
            meta.delivery_id,
            meta.event,
            meta.action,
            answer.delivery.outcome.value,
            answer.delivery.reason or list(answer.delivery.task_ids),
        )
        return _answer(answer)


def register_webhook_routes(app: Quart, deps: WebDeps) -> None:
    routes = WebhookRoutes(deps)
    app.add_url_rule("/webhooks/github", "webhook_github", routes.github, methods=["POST"])
    app.add_url_rule("/webhooks/gitlab", "webhook_gitlab", routes.gitlab, methods=["POST"])

    async def list_deliveries() -> ResponseReturnValue:
        require_read_allowed(deps.config.api.token)
        limit, offset = query_page(request.args)
        deliveries = await deps.store.list_deliveries(limit=limit, offset=offset)
        body = {
            "deliveries": [delivery.public() for delivery in deliveries],
            "count": len(deliveries),
            "limit": limit,
            "offset": offset,
        }
        return body, 200, NO_STORE

    app.add_url_rule("/api/deliveries", "list_deliveries", list_deliveries, methods=["GET"])
