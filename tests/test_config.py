"""Config loading: file, environment overrides, defaults, and every rejection path."""

from pathlib import Path

import pytest

from tamma_trio.cli import main
from tamma_trio.config import Config, load_config
from tamma_trio.engine.workflow_options import WorkflowOptions, parse_options
from tamma_trio.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "tamma.toml.example"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tamma.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_storys() -> None:
    service = load_config(None, {}).service
    assert (service.poll_interval, service.max_concurrent_tasks, service.max_retries) == (5, 3, 3)
    assert (service.retry_delay, service.max_retry_delay, service.shutdown_timeout) == (5, 300, 30)
    assert service.queue.type == "sqlite"
    assert service.queue.sqlite.path == Path("./tamma.db")
    assert service.queue.sqlite.synchronous == "FULL"
    assert (service.health_check.port, service.health_check.path) == (8080, "/health")
    assert (service.metrics.port, service.metrics.path) == (9090, "/metrics")
    assert "poetry.lock" in service.auto_approve.block_file_patterns


def test_the_example_file_shows_the_defaults() -> None:
    example = load_config(EXAMPLE, {})
    assert (example.service, example.log) == (Config().service, Config().log)
    assert example.webhooks == Config().webhooks
    assert example.engine.name == "workflow"
    assert parse_options(example.engine.options()) == WorkflowOptions()


def test_file_values_and_env_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "[service]\nmax_concurrent_tasks = 7\nretry_delay = 2\n")
    env = {
        "TAMMA_SERVICE__MAX_CONCURRENT_TASKS": "5",
        "TAMMA_SERVICE__QUEUE__TYPE": "memory",
        "TAMMA_SERVICE__COMMAND_AUTHORS": '["alice", "bob"]',
        "TAMMA_UNRELATED": "ignored: no double underscore",
    }
    service = load_config(path, env).service
    assert service.max_concurrent_tasks == 5
    assert service.retry_delay == 2
    assert service.queue.type == "memory"
    assert service.command_authors == ("alice", "bob")


def test_config_path_comes_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[service]\npoll_interval = 1\n")
    assert load_config(None, {"TAMMA_CONFIG": str(path)}).service.poll_interval == 1


def test_every_bad_key_is_listed_with_path_value_and_rule(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[service]\nmax_concurrent_tasks = 50\npoll_intervall = 3\n"
        '[service.queue]\ntype = "postgres"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    problems = {where: (value, rule) for where, value, rule in caught.value.problems}
    assert problems["service.max_concurrent_tasks"] == (
        "50",
        "Input should be less than or equal to 20",
    )
    assert problems["service.poll_intervall"] == ("***", "unknown key")  # a typo may be a secret
    assert problems["service.queue.type"][0] == "'postgres'"
    assert "'memory', 'sqlite', 'redis' or 'sqs'" in problems["service.queue.type"][1]


def test_retry_delay_may_not_exceed_its_cap() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            None, {"TAMMA_SERVICE__RETRY_DELAY": "100", "TAMMA_SERVICE__MAX_RETRY_DELAY": "50"}
        )
    assert "max_retry_delay must be >= retry_delay" in caught.value.problems[0][2]


def test_missing_file_and_bad_toml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", {})
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(write(tmp_path, "[service\n"), {})


def test_an_override_below_a_plain_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="TAMMA_LOG__LEVEL__X"):
        load_config(None, {"TAMMA_LOG__LEVEL": "info", "TAMMA_LOG__LEVEL__X": "1"})


def test_config_check_prints_the_effective_config_with_secrets_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An engine without pre-flight checks: this test is about printing the config.
    path = write(
        tmp_path,
        '[service.api]\ntoken = "hunter2-secret"\n[service]\nmax_retries = 5\n'
        '[engine]\nname = "tests.fake_engine:create"\n',
    )
    monkeypatch.setenv("TAMMA_SERVICE__QUEUE__REDIS__URL", "redis://:pw-secret@localhost:6379/0")
    assert main(["config", "check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "max_retries = 5" in out
    assert "[service.queue.sqlite]" in out
    assert "hunter2-secret" not in out and "pw-secret" not in out
    assert 'token = "**********"' in out


def test_config_check_lists_problems_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '[service]\nmax_retries = 11\n[service.api]\ntoken = 5\nbogus = "x"\n')
    assert main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "service.max_retries = 11: Input should be less than or equal to 10" in err
    assert "service.api.bogus = ***: unknown key" in err
    assert "service.api.token = ***" in err


def test_config_check_validates_the_workflow_engine_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path, '[engine]\nname = "workflow"\n[engine.agent]\ntimeout = -1\ncolour = "red"\n'
    )
    assert main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "engine.agent.timeout = -1: Input should be greater than 0" in err
    assert "engine.agent.colour = ***: unknown key" in err
