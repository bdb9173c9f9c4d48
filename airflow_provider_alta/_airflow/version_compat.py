"""The Airflow names whose home moved between the supported releases, imported from where this release keeps them.

Small on purpose: DAG files import the operator and the sensor on every parse, and they need only these.
Every other difference between releases, and how each is detected, is in :mod:`airflow_provider_alta._airflow.compat`,
which re-exports these names too.
"""

from __future__ import annotations

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
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "conf",
]
