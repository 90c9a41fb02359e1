"""The HTTP side: /health, /ready, /metrics and the tasks API on hypercorn's trio worker."""

from tamma_trio.web.app import create_app
from tamma_trio.web.deps import WebDeps
from tamma_trio.web.server import serve_app

__all__ = ["WebDeps", "create_app", "serve_app"]
