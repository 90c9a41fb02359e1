"""Build the GitHub forge from its `[engine.forge]` table (kind = "github")."""

from __future__ import annotations

from tamma_trio.engine.base import EngineContext
from tamma_trio.engine.forge.github.auth import AppCredentials, TokenCredentials
from tamma_trio.engine.forge.github.client import GitHubClient
from tamma_trio.engine.forge.github.forge import GitCredentials, GitHubForge
from tamma_trio.engine.forge.github.pulls import MergeSettings
from tamma_trio.engine.workflow_options import GithubForgeOptions
from tamma_trio.errors import ConfigError


def build_github_forge(options: GithubForgeOptions, context: EngineContext) -> GitHubForge:
    credentials = _credentials(options)
    client = GitHubClient(
        options.api_url,
        credentials,
        stats=context.forge_stats,
        timeout=options.request_timeout,
        max_wait=options.max_rate_limit_wait,
    )
    if isinstance(credentials, AppCredentials):
        credentials.client = client
    return GitHubForge(
        client,
        credentials,
        repositories=options.repositories,
        bot_name=context.bot_name,
        merging=MergeSettings(
            merge_method=options.merge_method,
            required_approvals=options.required_approvals,
            checks_grace=options.checks_grace,
        ),
        command_permission=options.command_permission,
    )


def _credentials(options: GithubForgeOptions) -> GitCredentials:
    if options.token is not None and options.token.get_secret_value():
        return TokenCredentials(options.token.get_secret_value())
    path = options.private_key_path
    if path is None:  # the options validator makes this unreachable; say so if it is not
        raise ConfigError("engine.forge: a GitHub App needs private_key_path")
    try:
        key = path.read_bytes()
    except OSError as exc:
        problem = exc.strerror or "unreadable"
        raise ConfigError(
            "invalid [engine] options for the workflow engine",
            [("engine.forge.private_key_path", str(path), problem)],
        ) from None
    return AppCredentials(options.app_id, key)
