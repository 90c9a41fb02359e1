"""The workflow engine's own overhead per task on a large repository, beside plain git.

    python bench/workflow.py [--cache DIR] [--tasks N]

A repository of 20,000 files of varied content and 2,000 commits (a pack of about 100 MB) is
generated once with `git fast-import` into the cache directory and reused by later runs. Each
run serves it through the local forge (a shared clone of the cached repository as origin, so
pushes never touch the cache) and drives the engine from claim to pull request opened with an
agent that edits one file and a test command that exits at once. The first task pays for the
clone; later tasks get a worktree from the cached clone. Beside them, in the same run: one
`git clone --no-local` of the repository (what an engine that clones per task pays, minus the
network) and one `git worktree add` (a checkout: the floor).

The task's span is claim to pull request opened; ``finish`` (removing the worktree, after the
pull request is open and the task's result is stored) is printed apart. ``later_git_*`` lines
split a later task's time by git subcommand (summed per task, ``finish`` included; the median
over later tasks), to show where its time goes.

Prints ``name: value`` lines (seconds unless the name says otherwise).
"""

from __future__ import annotations

import argparse
import base64
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit
from tamma_trio.engine.base import EngineContext
from tamma_trio.engine.forge.local_db import ForgeDb
from tamma_trio.engine.git import Git, GitResult
from tamma_trio.engine.workflow import WorkflowEngine, create_engine

T = TypeVar("T")
REPO = "bench/big"
FILES = 20_000
COMMITS = 2_000
CHANGED_PER_COMMIT = 6
# Raw sizes of the incompressible files (a quarter of them): these set the pack's size, since
# base64 of random bytes neither compresses below its 6 bits a character nor deltas.
RANDOM_BYTES = (3_000, 16_500)
# Runs reuse the repository cached under this name: a new name whenever the generator changes.
CACHED_NAME = "big-v2.git"
WORDS = ("alpha", "beta", "gamma", "delta", "trio", "nursery", "scope", "lease", "retry", "queue")
AGENT = "from pathlib import Path\np = Path('README.md')\np.write_text(p.read_text() + 'x\\n')\n"


def git(*args: str, cwd: Path | None = None, stdin: bytes | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, check=True, timeout=3600
    )
    return done.stdout.decode().strip()


# --- the repository, generated once -------------------------------------------------------------


def file_body(rng: random.Random, index: int) -> bytes:
    """Source-like text for most files, incompressible data for some: a realistic pack size."""
    if index % 4 == 0:
        return base64.b64encode(rng.randbytes(rng.randint(*RANDOM_BYTES))) + b"\n"
    lines = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
        for _ in range(rng.randint(20, 120))
    ]
    return ("\n".join(lines) + f"\n# {rng.random()}\n").encode()


def blob(path: str, data: bytes) -> bytes:
    return b"M 100644 inline " + path.encode() + b"\ndata %d\n" % len(data) + data + b"\n"


def fast_import_stream(rng: random.Random) -> bytes:
    chunks: list[bytes] = []
    paths = [f"src/pkg{i % 200:03d}/module_{i:05d}.py" for i in range(FILES - 1)] + ["README.md"]
    for number in range(COMMITS):
        when = 1_600_000_000 + number * 600
        message = f"commit {number}".encode()
        chunks.append(b"commit refs/heads/main\n")
        chunks.append(b"committer Bench <bench@localhost> %d +0000\n" % when)
        chunks.append(b"data %d\n%s\n" % (len(message), message))
        changed = paths if number == 0 else rng.sample(paths, CHANGED_PER_COMMIT)
        for index, path in enumerate(changed):
            chunks.append(blob(path, file_body(rng, index + number)))
    return b"".join(chunks)


def cached_repository(cache: Path) -> Path:
    bare = cache / CACHED_NAME
    if (bare / "refs" / "heads" / "main").exists() or (bare / "packed-refs").exists():
        return bare
    cache.mkdir(parents=True, exist_ok=True)
    scratch = cache / f"{CACHED_NAME}.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    git("init", "-q", "--bare", "--initial-branch=main", str(scratch))
    git("fast-import", "--quiet", cwd=scratch, stdin=fast_import_stream(random.Random(8)))
    git("repack", "-a", "-d", "-q", cwd=scratch)
    scratch.rename(bare)
    return bare


def pack_megabytes(bare: Path) -> float:
    return sum(p.stat().st_size for p in (bare / "objects" / "pack").glob("*.pack")) / 1e6


# --- the engine ---------------------------------------------------------------------------------


class GitTrace:
    """Seconds spent in each git subcommand, per task: wraps Git.run for the whole run."""

    def __init__(self) -> None:
        self.tasks: list[dict[str, float]] = []
        original = Git.run

        async def run(git: Git, args: Any, cwd: Path, **kw: Any) -> GitResult:
            started = time.perf_counter()
            try:
                return await original(git, args, cwd, **kw)
            finally:
                if self.tasks:
                    spent = self.tasks[-1]
                    spent[args[0]] = spent.get(args[0], 0.0) + time.perf_counter() - started

        Git.run = run  # type: ignore[method-assign,assignment]

    def next_task(self) -> None:
        self.tasks.append({})


def engine_options(work: Path, origin: Path) -> dict[str, Any]:
    agent = work / "agent.py"
    agent.write_text(AGENT)
    return {
        "workspace_dir": str(work / "workspaces"),
        "git_timeout": 600,
        "forge": {"origin": str(origin), "repository": REPO},
        "agent": {"command": [sys.executable, str(agent)], "timeout": 120},
        "tests": {"command": ["true"], "timeout": 60},
    }


async def timed(steps: dict[str, float], name: str, call: Callable[[], Awaitable[T]]) -> T:
    started = time.perf_counter()
    result = await call()
    steps[name] = time.perf_counter() - started
    return result


async def one_task(engine: WorkflowEngine, database: Path, n: int) -> dict[str, float]:
    """Claim to pull request opened for a new issue; the seconds of each step."""
    db = ForgeDb(database)
    try:
        number = db.add_issue(REPO, f"Bench task {n}", "", "bench", ("tamma", "complexity:low"))
    finally:
        db.close()
    steps: dict[str, float] = {}
    issue = await timed(steps, "select_issue", lambda: engine.select_issue(REPO, number))
    analysis = await timed(steps, "analyze_issue", lambda: engine.analyze_issue(issue))
    plan = await timed(steps, "generate_plan", lambda: engine.generate_plan(analysis))
    branch = await timed(steps, "create_branch", lambda: engine.create_branch(plan))
    changes = await timed(steps, "implement_code", lambda: engine.implement_code(plan, branch))
    tests = await timed(steps, "run_tests", lambda: engine.run_tests(changes))
    await timed(
        steps, "create_pull_request", lambda: engine.create_pull_request(changes, plan, tests)
    )
    await timed(steps, "finish", lambda: engine.finish(issue.target))
    return steps


async def run_engine(
    work: Path, origin: Path, tasks: int, trace: GitTrace
) -> list[dict[str, float]]:
    context = EngineContext(bot_name="tamma", database_path=work / "tamma.db")
    database = work / "tamma.forge.db"  # the forge's own file, beside the task store's
    engine = create_engine(engine_options(work, origin), context)
    results = []
    async with engine.forge:  # the forge alone, no clone yet: the first task pays for it
        for n in range(tasks):
            trace.next_task()
            results.append(await one_task(engine, database, n))
    return results


# --- plain git, side by side ------------------------------------------------------------------


def seconds(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def span(task: dict[str, float]) -> float:
    """Claim to pull request opened: every step but the cleanup after it."""
    return sum(seconds for step, seconds in task.items() if step != "finish")


def report(
    first: dict[str, float],
    later: list[dict[str, float]],
    git_later: list[dict[str, float]],
    clone: float,
    add: float,
) -> None:
    emit("first_task_total", span(first))
    for step, value in first.items():
        emit(f"first_task_{step}", value)
    totals = [span(task) for task in later]
    emit("later_task_total_median", statistics.median(totals))
    for step in later[0]:
        emit(f"later_task_{step}_median", statistics.median(task[step] for task in later))
    for command in sorted({name for task in git_later for name in task}):
        spent = statistics.median(task.get(command, 0.0) for task in git_later)
        emit(f"later_git_{command.replace('-', '_')}_median", spent)
    emit("git_clone_no_local", clone)
    emit("git_worktree_add", add)
    emit("later_task_over_worktree_add", statistics.median(totals) / add)
    emit("later_task_over_clone", statistics.median(totals) / clone)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "tamma-bench")
    parser.add_argument("--tasks", type=int, default=6, help="tasks in all (the first clones)")
    args = parser.parse_args()
    started = time.perf_counter()
    big = cached_repository(args.cache)
    emit("repository_ready", time.perf_counter() - started)
    emit(
        "repository_files",
        int(git("ls-tree", "-r", "--name-only", "main", cwd=big).count("\n") + 1),
    )
    emit("repository_commits", int(git("rev-list", "--count", "main", cwd=big)))
    emit("repository_pack_mb", pack_megabytes(big))
    with tempfile.TemporaryDirectory(prefix="tamma-bench-wf-") as scratch:
        work = Path(scratch)
        origin = work / "origin.git"
        git("clone", "-q", "--bare", "--shared", str(big), str(origin))
        trace = GitTrace()
        results = trio.run(run_engine, work, origin, max(args.tasks, 2), trace)
        clone_dir = work / "plain-clone"
        clone = seconds(lambda: git("clone", "-q", "--no-local", str(origin), str(clone_dir)))
        add = seconds(lambda: git("worktree", "add", "-q", str(work / "wt"), "HEAD", cwd=clone_dir))
    report(results[0], results[1:], trace.tasks[1:], clone, add)


if __name__ == "__main__":
    main()
