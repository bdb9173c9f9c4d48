"""Every difference between the Airflow releases the provider supports (3.0 to 3.3), in one package.

The rest of the provider imports from here and reads as if there were one Airflow. A public feature is detected
where one shows the difference, so a backport or a later release is picked up without a change here; what shows
in no public feature is told by the release constants below, never by reading Airflow's source.

This module is what a DAG file's parse needs (the operator and the sensor import it on every parse), so it stays
small and cheap: the release, and the names whose home moved. How behaviour differs matters only once a task, a
trigger or the API server runs, so it is in the package's rooms, imported where it runs: :mod:`.task`,
:mod:`.xcom`, :mod:`.hook`, :mod:`.stats` and :mod:`.api_server`. Every difference, and where it is bridged:

=============================  =====================================  ============================================
what                           where it exists                        older releases
=============================  =====================================  ============================================
``conf`` in the SDK            3.2+ (``airflow.sdk``)                 ``airflow.configuration`` (here)
task exceptions in the SDK     3.2+ (``airflow.sdk.exceptions``)      ``airflow.exceptions`` (here)
``BaseHook`` in the SDK        3.1+ (``airflow.sdk``)                 ``airflow.hooks.base`` (``hook.BaseHook``)
``BaseHook.aget_connection``   3.1+                                   the sync lookup through ``sync_to_async``
                                                                      (``hook.aget_connection``)
the connection form            provider info's ``conn-fields`` and    the hook's ``get_connection_form_widgets``
                               ``ui-field-behaviour`` (3.2+)          and ``get_ui_field_behaviour`` (3.0, 3.1),
                                                                      built from the same declaration
                                                                      (``hook.legacy_connection_form``)
a trigger's XCom read          ``XCom.aget_one`` (3.3+)               the same request sent on the trigger
                                                                      channel (``xcom.aget_xcom``)
a trigger's XCom push          ``XCom.aset`` (3.3+)                   the same request sent on the trigger
                                                                      channel (``xcom.aset_xcoms``)
a quiet "is there an XCom"     the slice request (``send`` channel)   a plain pull, which logs a missing XCom
                                                                      (``xcom.earlier_xcoms``)
``XComModel.set(serialize=)``  3.2+                                   the row written as the Execution API does
                                                                      (``xcom.set_xcom``)
``task_state_store``           3.3+ (``context``)                     an Airflow Variable per task instance
                                                                      (``task.task_state_store``)
a TaskFlow function's call     the operator's ``determine_kwargs``    ``KeywordParameters`` of ``airflow.utils``
                               (3.1+)                                 (``task.call_task_function``)
a retry after a deferral       starts at ``execute`` (3.1+)           resumes the last try's deferral (3.0):
                                                                      ``task.earlier_deferring_try``
a task a trigger ends          its success callback parse leaves the  the DAG processor counts that parse as one
                               file's DAGs alone (3.1+)               that found no DAG and deactivates the file's
                                                                      DAGs (3.0): such tasks resume on a worker,
                                                                      ``task.callback_parse_deactivates_dags``
whether OpenLineage reports    OpenLineage provider 2.19+ (Airflow    ``disabled_for_operators``, then
a task (its listener's         3.3 resolves 2.20): one rule set,      ``selective_enable``, as its listener checks
per-task decision)             ``resolve_task_emission_policy``       them (provider 2.18 and before; 3.0-3.2
                                                                      resolve 2.6.1, 2.12.0, 2.17.0):
                                                                      ``task.openlineage_reports``
``Stats`` (metrics)            ``airflow.sdk.observability.stats``    ``airflow.stats`` (3.0, 3.1), whose backend
                               (3.2+), set up by ``initialize``       is chosen once, when it is first imported
                                                                      (``stats.stats``, ``stats.reset_stats``)
a plugin's page in the UI      ``external_views`` (3.1+)              none: reachable by its URL only (3.0)
                                                                      (``api_server.plugin_nav_views``)
the API server's caller        ``get_user`` reads the Bearer header   the header only (3.0): the UI's session
                               or the UI's session cookie (3.1+)      cookie is read here, then the same check
                                                                      (``api_server.api_server_user``)
=============================  =====================================  ============================================

What the provider does the same way on every release, leaning on an Airflow internal, is not a difference: it is
in :mod:`airflow_provider_alta._airflow.internals`.
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
