"""Response helpers of the fake GitLab: its error bodies and its pagination headers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from quart import Response, jsonify, request

DEFAULT_PER_PAGE = 20


def answer(body: Any, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def error(status: int, message: str) -> Response:
    """GitLab's error shape: {"message": "404 Not found"}-style bodies."""
    return answer({"message": message}, status)


def paginated(items: list[Any]) -> Response:
    """One page with GitLab's offset-pagination headers (X-Page, X-Next-Page, X-Total, Link)."""
    per_page = int(request.args.get("per_page", DEFAULT_PER_PAGE))
    page = int(request.args.get("page", 1))
    pages = max((len(items) + per_page - 1) // per_page, 1)
    response = answer(items[(page - 1) * per_page : page * per_page])
    response.headers.update(
        {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(len(items)),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
        }
    )
    if page < pages:
        query = {**request.args.to_dict(), "per_page": str(per_page), "page": str(page + 1)}
        response.headers["Link"] = f'<{request.base_url}?{urlencode(query)}>; rel="next"'
    return response
