"""Build the workflow engine's three ports (forge, workspace, agent) from its resolved options.

Kept apart from the engine so the engine's module reads as the story's steps, and so a later
forge kind ("github") is one more branch here, not a change to the steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from tamma_trio.engine.agent import AgentRunner
from tamma_trio.engine.base import EngineContext
from tamma_trio.engine.forge.base import Forge
from tamma_trio.engine.forge.local import LocalForge
from tamma_trio.engine.forge.local_git import CiSettings
from tamma_trio.engine.git import Git
from tamma_trio.engine.limits import RunGuard
from tamma_trio.engine.workflow_options import WorkflowOptions
from tamma_trio.engine.workspace import Workspace
from tamma_trio.engine.worktree import Identity


@dataclass(frozen=True)
class Ports:
    forge: Forge
    workspace: Workspace
    agent: AgentRunner


def build_ports(settings: WorkflowOptions, context: EngineContext) -> Ports:
    forge_options = settings.forge
    git = Git(settings.git_timeout)
    root = settings.repo_root
    forge = LocalForge(
        database=settings.forge_database(context.database_path),
        origin=forge_options.origin,
        default_branch=forge_options.default_branch,
        git=git,
        ci=CiSettings(
            settings.tests.command,
            settings.tests.timeout,
            root / "ci",
            settings.tests.log_max_bytes,
            RunGuard(settings.tests.limits(), "the tests"),
        ),
        bot_name=context.bot_name,
        bot_email=settings.bot_email,
        required_approvals=forge_options.required_approvals,
        enqueue=context.enqueue,
    )
    workspace = Workspace(
        root,
        origin_url=forge.origin_url(forge_options.repository),
        repository=forge_options.repository,
        default_branch=forge_options.default_branch,
        identity=Identity(context.bot_name, settings.bot_email),
        git=git,
    )
    agent = AgentRunner(
        settings.agent.command,
        timeout=settings.agent.timeout,
        log_max_bytes=settings.agent.log_max_bytes,
        kill_grace=settings.agent.kill_grace,
        env_names=settings.agent.env,
        guard=RunGuard(settings.agent.limits(), "the agent"),
    )
    return Ports(forge=forge, workspace=workspace, agent=agent)
