"""Engines by name or import path, and a clear ConfigError for each way that can be wrong."""

from __future__ import annotations

import pytest

from tamma_trio.config import EngineConfig
from tamma_trio.engine.base import EngineContext
from tamma_trio.engine.loader import BUILTIN_ENGINES, open_engine, resolve_factory
from tamma_trio.errors import ConfigError
from tests.fake_engine import FakeEngine, create

CONTEXT = EngineContext(bot_name="robo", database_path=None)

NOT_CALLABLE = 42


def test_an_import_path_gets_the_options_table_and_the_context() -> None:
    config = EngineConfig.model_validate(
        {"name": "tests.fake_engine:create", "delay": 2.5, "complexity": "high"}
    )
    engine = open_engine(config, CONTEXT)
    assert isinstance(engine, FakeEngine)
    assert engine.options.delay == 2.5
    assert engine.options.complexity == "high"
    assert engine.bot_name == "robo"


def test_resolve_returns_the_factory_itself() -> None:
    assert resolve_factory("tests.fake_engine:create") is create


def test_workflow_is_a_builtin_name() -> None:
    assert BUILTIN_ENGINES["workflow"] == "tamma_trio.engine.workflow:create_engine"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nonsense", "neither a built-in engine (workflow) nor an import path"),
        ("tests.fake_engine:", "neither a built-in engine"),
        (":create", "neither a built-in engine"),
        ("no_such_package.engine:create", "cannot import 'no_such_package.engine'"),
        ("tests.fake_engine:missing", "module 'tests.fake_engine' has no 'missing'"),
        ("tests.test_engine_loader:NOT_CALLABLE", "'NOT_CALLABLE' is not callable"),
    ],
)
def test_bad_names_are_config_errors(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^engine\.name") as caught:
        resolve_factory(name)
    assert message in str(caught.value)


def test_options_the_engine_refuses_are_config_errors_with_every_key() -> None:
    config = EngineConfig.model_validate(
        {"name": "tests.fake_engine:create", "bogus": 1, "delay": -1, "token": "s3cret-value"}
    )
    with pytest.raises(ConfigError) as caught:
        open_engine(config, CONTEXT)
    assert str(caught.value) == "invalid [engine] options for 'tests.fake_engine:create'"
    problems = sorted(caught.value.problems)
    assert problems[0] == ("engine.bogus", "***", "unknown key")
    assert problems[1][0:2] == ("engine.delay", "-1")
    assert problems[2] == ("engine.token", "***", "unknown key")
