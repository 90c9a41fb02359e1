"""The installed version of tamma-trio, for the start-up block and the build-info metric."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def tamma_version() -> str:
    try:
        return version("tamma-trio")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"
