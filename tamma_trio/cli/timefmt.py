"""One way to show a time in the CLI: the operator's local time zone, with the zone marked.

Stored times are UTC; an operator reads them against their own clock, and the zone suffix keeps a
pasted line unambiguous (``2026-12-03 10:15:02 CET``).
"""

from __future__ import annotations

import datetime as dt

FORMAT = "%Y-%m-%d %H:%M:%S %Z"


def local_time(value: dt.datetime | float | None) -> str:
    """``value`` (an aware datetime or epoch seconds) in local time and zone; ``-`` for None."""
    if value is None:
        return "-"
    if isinstance(value, int | float):
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    return value.astimezone().strftime(FORMAT)


def duration(seconds: float) -> str:
    """A short human duration: ``0.4s``, ``42s``, ``3m05s``, ``2h10m``, ``3d04h``."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86_400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86_400}d{whole % 86_400 // 3600:02d}h"
