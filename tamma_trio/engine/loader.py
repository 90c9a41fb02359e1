"""Find the engine named in `[engine] name`: a built-in name or an import path "pkg.module:factory".

The factory receives the rest of the `[engine]` table and an EngineContext and returns the
engine. Every way this can go wrong at start-up is a ConfigError naming what to fix, so the
daemon refuses to start instead of failing on its first task.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, cast

from pydantic import ValidationError as PydanticValidationError

from tamma_trio.config import EngineConfig, describe_problem
from tamma_trio.engine.base import Engine, EngineContext, EngineFactory
from tamma_trio.errors import ConfigError

# Imported lazily: a built-in engine's dependencies load only when it is chosen.
BUILTIN_ENGINES: Mapping[str, str] = {
    "workflow": "tamma_trio.engine.workflow:create_engine",
}


def resolve_factory(name: str) -> EngineFactory:
    """The factory behind ``name``, or a ConfigError saying why there is none."""
    path = BUILTIN_ENGINES.get(name, name)
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        known = ", ".join(sorted(BUILTIN_ENGINES))
        raise ConfigError(
            f"engine.name {name!r} is neither a built-in engine ({known}) "
            "nor an import path like 'package.module:factory'"
        )
    module = _import(module_name, name)
    factory = getattr(module, attribute, None)
    if factory is None:
        raise ConfigError(f"engine.name {name!r}: module {module_name!r} has no {attribute!r}")
    if not callable(factory):
        raise ConfigError(f"engine.name {name!r}: {attribute!r} is not callable")
    return cast(EngineFactory, factory)


def open_engine(config: EngineConfig, context: EngineContext) -> Engine:
    """The configured engine, built with its options table (everything but ``name``); ``async
    with`` opens it.

    A factory that validates its table with pydantic gets its errors reported like the rest
    of the config: every bad key with its dotted path, secrets masked.
    """
    factory = resolve_factory(config.name)
    options: dict[str, Any] = config.options()
    try:
        return factory(options, context)
    except PydanticValidationError as exc:
        problems = [describe_problem(error, "engine") for error in exc.errors()]
        raise ConfigError(f"invalid [engine] options for {config.name!r}", problems) from None


def _import(module_name: str, name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or module_name
        raise ConfigError(
            f"engine.name {name!r}: cannot import {module_name!r} (missing module {missing!r})"
        ) from None
