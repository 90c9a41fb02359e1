"""Build the GitLab forge from its `[engine.forge]` table (kind = "gitlab")."""

from __future__ import annotations

from tamma_trio.engine.base import EngineContext
from tamma_trio.engine.forge.gitlab.client import GitLabClient
from tamma_trio.engine.forge.gitlab.forge import GitLabForge
from tamma_trio.engine.forge.merging import MergeSettings
from tamma_trio.engine.workflow_options import GitlabForgeOptions


def build_gitlab_forge(options: GitlabForgeOptions, context: EngineContext) -> GitLabForge:
    token = options.token.get_secret_value()
    client = GitLabClient(
        options.api_url,
        token,
        stats=context.forge_stats,
        timeout=options.request_timeout,
        max_wait=options.max_rate_limit_wait,
    )
    return GitLabForge(
        client,
        token,
        repositories=options.repositories,
        bot_name=context.bot_name,
        merging=MergeSettings(
            merge_method=options.merge_method,
            required_approvals=options.required_approvals,
            checks_grace=options.checks_grace,
        ),
        command_access_level=options.command_access_level,
    )
