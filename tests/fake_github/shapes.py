"""Response helpers of the fake GitHub: error bodies, Link pagination, timestamps."""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import urlencode

from quart import Response, jsonify, request

DEFAULT_PER_PAGE = 30


def error(status: int, message: str, **extra: Any) -> Response:
    body = {"message": message, "documentation_url": "https://docs.github.com/rest", **extra}
    response = jsonify(body)
    response.status_code = status
    return response


def created(body: Any) -> Response:
    response = jsonify(body)
    response.status_code = 201
    return response


def paginated(items: list[Any], key: str | None = None) -> Response:
    """One page of ``items`` with GitHub's Link header (per_page, page query parameters)."""
    per_page = int(request.args.get("per_page", DEFAULT_PER_PAGE))
    page = int(request.args.get("page", 1))
    chunk = items[(page - 1) * per_page : page * per_page]
    response = jsonify({"total_count": len(items), key: chunk} if key else chunk)
    last = max((len(items) + per_page - 1) // per_page, 1)
    links = []
    base = request.base_url
    for rel, number in (("next", page + 1), ("last", last)):
        if number <= last and not (rel == "last" and page == last):
            query = {**request.args.to_dict(), "per_page": str(per_page), "page": str(number)}
            links.append(f'<{base}?{urlencode(query)}>; rel="{rel}"')
    if links:
        response.headers["Link"] = ", ".join(links)
    return response


def iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
