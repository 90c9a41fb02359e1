"""The CLI imports only what a command needs: `--help` lists every command without loading
pydantic, trio, rich or the engine (how fast that is, bench/cli.py measures)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest

from tamma_trio.cli import COMMANDS, cli, main

HEAVY = ("pydantic", "trio", "rich", "tamma_trio.config", "tamma_trio.engine", "quart")


def test_help_loads_nothing_heavy() -> None:
    probe = (
        "import sys\n"
        "from tamma_trio.cli import main\n"
        "assert main(['--help']) == 0\n"
        f"heavy = [m for m in sys.modules for h in {HEAVY!r} if m == h or m.startswith(h + '.')]\n"
        "print(heavy, file=sys.stderr)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "tasks" in done.stdout and "serve" in done.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_command_table_says_what_each_command_says(name: str) -> None:
    module, attribute, line = COMMANDS[name]
    found = getattr(importlib.import_module(module), attribute)
    command = found if isinstance(found, click.Command) else found()
    assert isinstance(command, click.Command) and command.name == name
    assert (command.help or "").splitlines()[0] == line


def test_every_command_is_reachable(capsys: pytest.CaptureFixture[str]) -> None:
    for name in COMMANDS:
        assert main([name, "--help"]) == 0
        assert f"Usage: tamma-trio {name}" in capsys.readouterr().out
    assert cli.get_command(click.Context(cli), "nope") is None
    assert main(["nope"]) == 2
    assert "No such command 'nope'" in capsys.readouterr().err
