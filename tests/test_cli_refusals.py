"""The CLI's refusals: one line naming the problem, exit 2, nothing created, no secret printed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tamma_trio.cli import main

ISSUE = json.dumps({"repository": "acme/widgets", "issue": {"number": 1, "title": "t"}})


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_exit_2(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert (code, out) == (2, ""), err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tamma.toml"
    path.write_text(f'[service.queue.sqlite]\npath = "{tmp_path / "tasks.db"}"\n')
    return path


# --- ids that no row can have -------------------------------------------------------------


@pytest.mark.parametrize("verb", ["show", "cancel", "retry"])
@pytest.mark.parametrize("task_id", [str(2**63), str(2**70), "0", "abc", "٣"])
def test_a_task_id_out_of_range_is_one_line(
    capsys: pytest.CaptureFixture[str], config: Path, verb: str, task_id: str
) -> None:
    assert (
        run(capsys, "tasks", "add", "issue_assigned", "--payload", ISSUE, "--config", str(config))[
            0
        ]
        == 0
    )
    err = one_line_exit_2(run(capsys, "tasks", verb, task_id, "--config", str(config)))
    assert f"TASK_ID must be a whole number from 1 to {2**63 - 1}" in err


def test_an_issue_number_out_of_range_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "tamma.toml"
    config.write_text('[engine.forge]\nrepository = "local/demo"\n')
    err = one_line_exit_2(run(capsys, "issues", "show", str(2**63), "--config", str(config)))
    assert "NUMBER must be a whole number from 1 to" in err


# --- config files that are not text ------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), "is not UTF-8 text"),
        (b'x = "\xff"\n', "is not UTF-8 text (invalid start byte at byte 5)"),
        (b"\x00\x00\x00", "is not valid TOML"),
    ],
)
def test_a_config_file_that_is_not_text_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, phrase: str
) -> None:
    config = tmp_path / "binary.toml"
    config.write_bytes(content)
    for argv in (["tasks", "list"], ["config", "check"], ["serve"]):
        err = one_line_exit_2(run(capsys, *argv, "--config", str(config)))
        assert phrase in err
    assert os.listdir(tmp_path) == ["binary.toml"]


# --- read-only commands create nothing ---------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["list"], ["stats"], ["show", "1"], ["cancel", "1"], ["retry", "1"], ["list", "--json"]],
)
def test_a_command_with_no_database_says_so_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path, argv: list[str]
) -> None:
    err = one_line_exit_2(run(capsys, "tasks", *argv, "--config", str(config)))
    assert f"no task database at {tmp_path / 'tasks.db'}" in err
    assert os.listdir(tmp_path) == ["tamma.toml"]


def test_the_default_database_is_not_created_in_an_empty_folder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    one_line_exit_2(run(capsys, "tasks", "list"))
    assert os.listdir(".") == []


# --- secrets ------------------------------------------------------------------------------

SECRET = "s3cr3t-value-never-shown"


@pytest.mark.parametrize(
    "toml",
    [
        f'[service]\ntokn = "{SECRET}"\n',  # a mistyped secret key
        f'[service.api]\ntoken = "{SECRET}"\nextra = "{SECRET}"\n',  # an unknown key's value
        f'[engine.forge]\ntoken = "{SECRET}"\n',  # unknown to the workflow engine
        f'[engine.forge]\nkind = "local"\nrepository = "a/b"\nextra_secret = "{SECRET}"\n',
        f'[engine]\nname = "workflow"\n[engine.agent]\ncommand = 5\npassword = "{SECRET}"\n',
    ],
)
def test_config_errors_never_print_a_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, toml: str
) -> None:
    config = tmp_path / "tamma.toml"
    config.write_text(toml)
    for argv in (["config", "check"], ["serve"], ["tasks", "list"]):
        code, out, err = run(capsys, *argv, "--config", str(config))
        assert code == 2 and SECRET not in out + err, argv
    assert os.listdir(tmp_path) == ["tamma.toml"]


def test_config_check_masks_custom_engine_options(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "tamma.toml"
    config.write_text(
        '[engine]\nname = "tests.fake_engine:create"\n'
        f'api_token = "{SECRET}"\nwebhook_secret = "{SECRET}"\n'
        f'[engine.remote]\nurl = "https://user:{SECRET}@example.com"\nauthor = "alice"\n'
    )
    code, out, err = run(capsys, "config", "check", "--config", str(config))
    assert code == 0, err
    assert SECRET not in out
    assert 'api_token = "**********"' in out and 'author = "alice"' in out
