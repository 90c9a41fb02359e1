"""The package's layers, read from its imports (AST), so a change that crosses them fails CI.

Work flows one way: intake (the doors: CLI, API, webhooks, local forge) -> store -> poller ->
worker -> handlers -> engine. A module imports only what sits at its own stage or before it,
plus the contract (``base``) of the stage it hands work to: the doors write through
``store.base``, the handlers call the engine through ``engine.base``. Below every stage sits the
pure bottom (records, config, rules: no I/O), which imports nothing above itself, and beside it
the observability helpers. Only the wiring (service.py, daemon.py, cli/) knows every piece, and
nothing imports the wiring but the wiring.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tamma_trio"

# The pure bottom: records, configuration, rules, and the resource and timing helpers; no I/O.
PURE = (
    "comment_commands",
    "config",
    "delivery",
    "errors",
    "models",
    "notify_config",
    "periodic",
    "policy",
    "repositories",
    "resource",
    "service_events",
    "step_records",
    "strict_json",
    "timeline",
    "version",
)
# Observability every layer may use: logs, counters, the status the probes read.
SUPPORT = ("event_feed", "log", "metrics", "process_metrics", "status", "step_log", "systemd")
# The stages of the flow, in order; a module belongs to the first prefix it matches.
STAGES: tuple[tuple[str, ...], ...] = (
    ("intake", "web"),
    ("store",),
    ("poller", "reclaimer", "retention", "notify", "cli_intake"),
    ("worker", "worker_ports", "lease_keeper"),
    ("handlers",),
    ("engine",),
)
# The one contract module of each stage that the stage before it may import.
CONTRACTS = {1: "store.base", 5: "engine.base"}
# Knows every piece; imported by nothing else. workspace_retention is here because it reads
# the store to decide which of the engine's kept worktrees may go.
WIRING = ("service", "daemon", "start_guard", "workspace_retention", "cli", "__main__", "")
# What the engine, the last stage, must never reach into, though it comes after them.
ENGINE_NEVER = ("store", "web", "cli", "service", "daemon", "poller", "worker", "handlers")

# Known crossings, each with the change that removes it (none today). The test fails once
# one is gone, so the list shrinks with the tree and never hides a new crossing.
EXPECTED: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[tuple[str, ...]]:
    """Each tamma_trio import of ``path`` as the names it could mean, most specific first,
    relative to the package: ``from tamma_trio.store import base`` -> (store.base, store)."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        found: list[tuple[str, ...]]
        if isinstance(node, ast.Import):
            found = [(alias.name,) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found = [(f"{node.module}.{alias.name}", node.module) for alias in node.names]
        else:
            continue
        for names in found:
            if names[-1] == "tamma_trio" or names[-1].startswith("tamma_trio."):
                yield tuple(n.removeprefix("tamma_trio").removeprefix(".") for n in names)


@functools.cache
def edges() -> frozenset[tuple[str, str]]:
    """(importer, imported) for every import between two modules of the package."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    found = set()
    for name, path in modules.items():
        for meanings in imports(path):
            target = next((m for m in meanings if m in modules), meanings[-1])
            while target and target not in modules:  # a name inside a module: the module
                target = target.rpartition(".")[0]
            if target != name:
                found.add((name, target))
    return frozenset(found)


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(f"{p}.") or (p == "" and name == "") for p in prefixes)


def stage(name: str) -> int | None:
    for rank, prefixes in enumerate(STAGES):
        if under(name, prefixes):
            return rank
    return None


def layer(name: str) -> str:
    if under(name, WIRING):
        return "wiring"
    if under(name, PURE):
        return "pure"
    if under(name, SUPPORT):
        return "support"
    if stage(name) is not None:
        return "stage"
    return "unplaced"


def crossing(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported``, or None when it may."""
    kind, target = layer(importer), layer(imported)
    if target == "wiring" and kind != "wiring":
        return "only the wiring imports the wiring"
    if kind == "pure" and target != "pure":
        return "the pure bottom imports nothing above it"
    if kind == "support" and target not in ("pure", "support"):
        return "observability imports only the pure bottom"
    if kind != "stage" or target != "stage":
        return None
    if importer.startswith("engine") and under(imported, ENGINE_NEVER):
        return "the engine never reaches into the store, the web side or the wiring"
    mine, theirs = stage(importer), stage(imported)
    assert mine is not None and theirs is not None
    if theirs <= mine or (CONTRACTS.get(theirs) == imported and theirs == mine + 1):
        return None
    return f"{imported} comes later in the flow than {importer}"


def test_every_module_has_a_layer() -> None:
    unplaced = sorted({name for pair in edges() for name in pair if layer(name) == "unplaced"})
    assert unplaced == [], "place these modules in a layer of tests/test_layers.py"


def test_the_layers_hold() -> None:
    found = {
        (importer, imported): reason
        for importer, imported in sorted(edges())
        if (reason := crossing(importer, imported)) is not None
    }
    unexpected = {pair: reason for pair, reason in found.items() if pair not in EXPECTED}
    assert unexpected == {}


def test_each_expected_crossing_still_exists() -> None:
    """When a listed crossing has been removed, its entry must go too."""
    assert [pair for pair in EXPECTED if pair not in edges()] == []


@pytest.mark.parametrize(
    ("importer", "imported", "allowed"),
    [
        ("intake.submit", "store.base", True),  # a door writes through the store's contract
        ("intake.submit", "store.sqlite", False),  # but knows no backend
        ("handlers", "engine.base", True),
        ("handlers", "engine.workflow", False),
        ("poller", "store.base", True),
        ("store.sqlite", "engine.base", False),
        ("engine.forge.local", "intake.local_forge", True),  # the local forge plays the webhook
        ("engine.workflow", "store.base", False),
        ("engine.workflow", "web.api", False),
        ("models", "store.base", False),
        ("policy", "engine.base", False),
        ("policy", "step_records", True),  # the records policy, handlers and forges share
        ("status", "store.base", False),
        ("worker", "service", False),
        ("service", "engine.loader", True),
        ("cli.tasks", "store", True),
    ],
)
def test_the_rules_read_as_intended(importer: str, imported: str, allowed: bool) -> None:
    assert (crossing(importer, imported) is None) is allowed
