"""Airflow's metrics client on each release: where it lives, and how a process that never set it up gets it."""

from __future__ import annotations

import inspect
import sys
from typing import Any

from airflow_provider_alta._airflow.version_compat import conf

__all__ = ["reset_stats", "stats"]


def stats() -> Any:
    """Airflow's metrics client (``Stats``): ``incr``, ``gauge``, ``timing``, each taking ``tags=``.

    Imported when a run has ended, never at DAG-parse time. Whatever backend the deployment configured in
    ``[metrics]`` (StatsD, its Datadog or InfluxDB flavours, OpenTelemetry) receives what is sent here.
    On 3.2+ the Task SDK's client is set up by each process that uses it (a task's runner, the SDK's
    serializers); a process that has not (a 3.2 triggerer, whose own metrics use core's client) gets it set up
    here from the same configuration, so that a trigger's metrics are not silently dropped. Both clients are
    Airflow internals (``airflow.stats``, ``airflow.sdk.observability``), as is where each keeps its backend.
    """
    try:  # Airflow 3.2+
        from airflow.sdk.observability.stats import Stats
    except ImportError:  # Airflow 3.0, 3.1: set up from the configuration when first imported
        from airflow.stats import Stats

        return Stats
    if _never_set_up(Stats):
        reset_stats()
    return Stats


def _never_set_up(client: Any) -> bool:
    """Whether nothing in this process has set the Task SDK's metrics client up (it would send nothing)."""
    state = sys.modules.get(getattr(client.initialize, "__module__", ""))
    if state is not None and hasattr(state, "_factory"):  # Airflow 3.3+: module-level state
        return state._factory is None
    return vars(client).get("factory") is None  # Airflow 3.2: kept on the Stats class


def reset_stats() -> None:
    """Rebuild Airflow's metrics client from the ``[metrics]`` configuration as it is now.

    Airflow builds it once per process (at start-up on 3.2+, when ``airflow.stats`` is first imported on 3.0
    and 3.1), so a configuration changed afterwards, as a test does, takes effect only after this.
    """
    client: Any
    try:  # Airflow 3.2+
        from airflow.sdk.observability.metrics import stats_utils
        from airflow.sdk.observability.stats import Stats as client
    except ImportError:  # Airflow 3.0, 3.1: the metaclass picks the backend in its __init__
        client = stats()
        meta: Any = type(client)
        if "factory" in vars(meta):
            del meta.factory
        client.instance = None  # the backend is kept on the ``Stats`` class itself, not on its metaclass
        meta.__init__(client)
        return
    get_factory: Any = stats_utils.get_stats_factory
    factory = get_factory(client) if inspect.signature(get_factory).parameters else get_factory()  # 3.2: Stats
    if "export_legacy_names" in inspect.signature(client.initialize).parameters:  # Airflow 3.3+
        legacy = conf.getboolean("metrics", "legacy_names_on", fallback=True)
        client.initialize(factory=factory, export_legacy_names=legacy)
    else:
        client.initialize(factory=factory)
