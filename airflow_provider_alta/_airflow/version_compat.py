"""This Airflow's release, and the names whose home moved between the supported releases.

Small on purpose: DAG files import the operator and the sensor on every parse, and they need only these.
Every other difference between releases, and how each is detected, is in
:mod:`airflow_provider_alta._airflow.compat`, which re-exports these names too.
"""

from __future__ import annotations


def _core_release() -> tuple[int, int] | None:
    """Airflow core's (major, minor), or ``None`` where only the Task SDK is installed (a 3.1+ worker)."""
    try:
        from airflow import __version__
    except ImportError:
        return None
    major, minor = (int(part) for part in __version__.split(".")[:2])
    return major, minor


#: Airflow core's release, ``(3, 0)`` to ``(3, 3)``; ``None`` without core (a Task SDK worker, 3.1+ only).
AIRFLOW_CORE_RELEASE = _core_release()
#: Whether this is Airflow 3.1 or later: what differs from 3.0 and shows in no public feature is told by this.
AIRFLOW_V_3_1_PLUS = AIRFLOW_CORE_RELEASE is None or AIRFLOW_CORE_RELEASE >= (3, 1)

try:  # Airflow 3.2+
    from airflow.sdk import conf
except ImportError:  # Airflow 3.0, 3.1
    from airflow.configuration import conf  # type: ignore[assignment]

try:  # Airflow 3.2+
    from airflow.sdk.exceptions import (
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowSkipException,
    )
except ImportError:  # Airflow 3.0, 3.1
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowSkipException,
    )

__all__ = [
    "AIRFLOW_CORE_RELEASE",
    "AIRFLOW_V_3_1_PLUS",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "conf",
]
