"""Build the workflow engine's three ports (forge, workspace, agent) from its resolved options.

Kept apart from the engine so the engine's module reads as the workflow's steps, and so a forge
kind (local, github, gitlab) is one more branch here, not a change to the steps.
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
from tamma_trio.engine.workflow_options import (
    GithubForgeOptions,
    GitlabForgeOptions,
    LocalForgeOptions,
    WorkflowOptions,
)
from tamma_trio.engine.workspaces import Workspaces
from tamma_trio.engine.worktree import Identity


@dataclass(frozen=True)
class Ports:
    forge: Forge
    workspaces: Workspaces
    agent: AgentRunner


def build_ports(settings: WorkflowOptions, context: EngineContext) -> Ports:
    git = Git(settings.git_timeout)
    forge: Forge
    if isinstance(settings.forge, GithubForgeOptions):
        from tamma_trio.engine.forge.github.build import build_github_forge

        forge = build_github_forge(settings.forge, context)
    elif isinstance(settings.forge, GitlabForgeOptions):
        from tamma_trio.engine.forge.gitlab.build import build_gitlab_forge

        forge = build_gitlab_forge(settings.forge, context)
    else:
        forge = _local_forge(settings, settings.forge, context, git)
    workspaces = Workspaces(
        forge,
        root_of=settings.repo_root,
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
    return Ports(forge=forge, workspaces=workspaces, agent=agent)


def _local_forge(
    settings: WorkflowOptions, options: LocalForgeOptions, context: EngineContext, git: Git
) -> LocalForge:
    return LocalForge(
        database=settings.forge_database(context.database_path),
        task_database=context.database_path,
        origin=options.origin,
        default_branch=options.default_branch,
        git=git,
        ci=CiSettings(
            settings.tests.command,
            settings.tests.timeout,
            settings.repo_root(options.repository) / "ci",
            settings.tests.log_max_bytes,
            RunGuard(settings.tests.limits(), "the tests"),
        ),
        bot_name=context.bot_name,
        bot_email=settings.bot_email,
        repository=options.repository,
        required_approvals=options.required_approvals,
        enqueue=context.enqueue,
    )
