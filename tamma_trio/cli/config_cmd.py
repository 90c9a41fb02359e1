"""`tamma-trio config check`: placeholder until the config command lands."""

from __future__ import annotations

import click

command = click.Group("config", help="Inspect the configuration.")
