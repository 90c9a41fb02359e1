"""`tamma-trio tasks ...`: placeholder until the tasks commands land."""

from __future__ import annotations

import click

command = click.Group("tasks", help="Add, list, inspect, cancel and retry tasks.")
