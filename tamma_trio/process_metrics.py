"""Metrics about the process rather than the tasks: CPU, memory, open files, and what runs.

prometheus-client's ProcessCollector reads /proc/self (Linux) for the standard ``process_*``
series (CPU seconds, resident and virtual memory, open and maximum file descriptors, start
time), so a leak over weeks shows up on the same dashboard as the queue. ``tamma_build_info``
is the usual constant 1 whose labels say which version and Python serve, so a scrape can join
a change in behaviour to an upgrade.
"""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import GaugeMetricFamily

from tamma_trio.version import tamma_version


def register_process_metrics(registry: CollectorRegistry) -> None:
    ProcessCollector(registry=registry)
    info = GaugeMetricFamily(
        "tamma_build_info", "Always 1; the labels say what runs.", labels=["version", "python"]
    )
    info.add_metric([tamma_version(), platform.python_version()], 1)
    registry.register(_Constant(info))


class _Constant:
    """A collector that always yields the same metric."""

    def __init__(self, metric: GaugeMetricFamily) -> None:
        self._metric = metric

    def collect(self) -> list[GaugeMetricFamily]:
        return [self._metric]
