"""How long a task's runs took before: when to send the first query of the next one.

A duration-aware task pushes the execution times of its last successful runs as an XCom
(:data:`~airflow_provider_alta._core.finish_plan.XCOM_RECENT_DURATIONS`, extended by the finish plan) and reads them
back when its next run starts, so the first query goes out about when the run is expected to end instead of early
and often. The schedule itself is the core's (:func:`~airflow_provider_alta._core.polling.settings_for_run`).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_alta._core.finish_plan import XCOM_RECENT_DURATIONS
from airflow_provider_alta._core.polling import PollingSettings, settings_for_run

#: How many duration histories of its task's instances a mapped task instance pools (each holds up to five runs).
HISTORY_POOL = 20


def recent_durations(ti: Any) -> list[float]:
    """Execution times (ms) of the task's last successful runs, from its own XCom history.

    A mapped task's instances run one workflow over different inputs, and an instance's map index names no input
    from one DAG run to the next: a mapped instance pools the histories its task's instances pushed.
    """
    from airflow_provider_alta._airflow.version_compat.xcom import earlier_xcoms, pull_latest_xcom

    found = earlier_xcoms(ti, XCOM_RECENT_DURATIONS, limit=HISTORY_POOL)
    if found is None or (found and ti.map_index in (None, -1)):
        values = pull_latest_xcom(ti, XCOM_RECENT_DURATIONS)
    else:
        values = [v for history in found if isinstance(history, list) for v in history]
    return [
        float(v)
        for v in (values if isinstance(values, list) else [])
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
    ]


def schedule_for_run(
    polling: PollingSettings, history_ms: list[float], fallback: float | None, log: Any
) -> PollingSettings:
    """The schedule of one run: the fallback spacing with a webhook, the expected end when earlier runs tell it.

    The log says when the first query goes out, and why.
    """
    settings = settings_for_run(polling, [ms / 1000 for ms in history_ms], fallback)
    if settings.expected_duration is not None:
        log.info(
            "Earlier runs took %.1f to %.1f s: first query after %.1f s",
            min(history_ms) / 1000,
            max(history_ms) / 1000,
            settings.expected_duration,
        )
    return settings
