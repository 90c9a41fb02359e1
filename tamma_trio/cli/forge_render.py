"""Readable and JSON output of the local forge's issues and pull requests."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table

from tamma_trio.cli.render import console
from tamma_trio.engine.forge.base import Comment
from tamma_trio.engine.forge.local_schema import CheckRow, ItemRow, PullRow

HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
STATE_STYLE = {"open": "green", "closed": "dim", "merged": "magenta"}


def visible(body: str) -> str:
    """A comment as a forge would render it: HTML comments (our idempotency markers) hidden."""
    return HTML_COMMENT.sub("", body).strip()


def item_json(row: ItemRow) -> dict[str, Any]:
    return {
        "number": row.number,
        "kind": row.kind,
        "title": row.title,
        "body": row.body,
        "state": row.state,
        "author": row.author,
        "created_at": row.created_at,
        "labels": list(row.labels),
        "assignees": list(row.assignees),
    }


def pull_json(pull: PullRow, check: CheckRow | None) -> dict[str, Any]:
    return {
        **item_json(pull.item),
        "head_branch": pull.head_branch,
        "base": pull.base,
        "head_sha": pull.head_sha or None,
        "ci": None if check is None else {"state": check.state, "exit_code": check.exit_code},
        "merge_sha": pull.merge_sha,
    }


def print_items(rows: Sequence[ItemRow], what: str) -> None:
    table = Table("#", "state", "title", "labels", "assignees", "author", "created")
    for row in rows:
        style = STATE_STYLE.get(row.state, "")
        table.add_row(
            str(row.number),
            f"[{style}]{row.state}[/]",
            row.title,
            ", ".join(row.labels),
            ", ".join(row.assignees),
            row.author,
            row.created_at,
        )
    console().print(table if rows else f"no {what}")


def print_item(
    row: ItemRow, comments: Sequence[Comment], extra: Mapping[str, Any] | None = None
) -> None:
    out = console()
    fields: dict[str, Any] = {
        "number": row.number,
        "title": row.title,
        "state": row.state,
        "author": row.author,
        "labels": ", ".join(row.labels) or "-",
        "assignees": ", ".join(row.assignees) or "-",
        "created": row.created_at,
    }
    for key in ("head_branch", "head_sha", "ci", "merge_sha"):
        if extra and key in extra:
            fields[key.replace("_", " ")] = extra[key] if extra[key] is not None else "-"
    for name, value in fields.items():
        out.print(f"[bold]{name:>11}[/]  {escape(str(value))}", highlight=False)
    if row.body.strip():
        out.print("", row.body.strip(), "", sep="\n", highlight=False, markup=False)
    for comment in comments:
        out.print(f"[bold]--- {escape(comment.author)}[/] at {comment.created_at}", highlight=False)
        out.print(visible(comment.body), highlight=False, markup=False)
