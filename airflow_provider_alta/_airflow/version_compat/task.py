"""What a running task meets differently on each release: its state store, its TaskFlow call, its retries after a
deferral, and whether it may end in the triggerer (the DAG processor, the OpenLineage listener)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping
from typing import Any

from airflow_provider_alta._airflow.version_compat import AIRFLOW_V_3_1_PLUS

__all__ = [
    "DEFERRED_BY_TRY",
    "call_task_function",
    "callback_parse_deactivates_dags",
    "earlier_deferring_try",
    "note_the_deferring_try",
    "openlineage_reports",
    "retry_resumes_the_last_deferral",
    "task_state_store",
]


def task_state_store(context: Mapping[str, Any]) -> Any | None:
    """The task instance's own state store (Airflow 3.3+), or ``None`` on a release that has none."""
    return context.get("task_state_store")


def call_task_function(operator: Any, context: Any) -> Any:
    """Call a TaskFlow operator's function with its arguments and the context keys it names, as ``@task`` does.

    3.1+ operators name the keys with ``determine_kwargs``; 3.0 with ``airflow.utils.operator_helpers``'
    ``KeywordParameters``. ``context_merge`` is ``airflow.sdk.definitions.context``'s, or ``airflow.utils``' in
    older Task SDK layouts.
    """
    try:
        from airflow.sdk.definitions.context import context_merge
    except ImportError:  # older Task SDK layouts
        from airflow.utils.context import context_merge  # type: ignore[no-redef,attr-defined]

    context_merge(context, operator.op_kwargs)
    determine = getattr(operator, "determine_kwargs", None)
    if determine is not None:
        kwargs = determine(context)
    else:
        from airflow.utils.operator_helpers import KeywordParameters

        kwargs = KeywordParameters.determine(operator.python_callable, operator.op_args, context).unpacking()
    return operator.python_callable(*operator.op_args, **kwargs)


#: The XCom in which a task records the try that deferred it, where a retry can be handed that try's deferral (3.0).
DEFERRED_BY_TRY = "alta_deferred_by_try"


@functools.lru_cache(maxsize=1)
def retry_resumes_the_last_deferral() -> bool:
    """Whether a retry of a task whose deferred try failed is handed that try's deferral (Airflow 3.0).

    3.0 keeps the task instance's ``next_method`` and ``next_kwargs`` when a try fails, so its retry resumes with
    what ended the failed try's wait (the trigger's event, or ``__fail__`` when the trigger itself failed or timed
    out) instead of calling ``execute``; 3.1 clears them. The kwargs do not always say which try deferred: a failed
    trigger's ``__fail__`` replaces them with the error, and ``dag.test()`` with the event alone.
    """
    return not AIRFLOW_V_3_1_PLUS


def note_the_deferring_try(context: Mapping[str, Any]) -> None:
    """Record which try defers, where its retry may be handed this deferral (3.0): that retry starts afresh."""
    if retry_resumes_the_last_deferral():
        ti = context["ti"]
        ti.xcom_push(key=DEFERRED_BY_TRY, value=ti.try_number)


def earlier_deferring_try(context: Mapping[str, Any], next_kwargs: Mapping[str, Any] | None) -> int | None:
    """The earlier try whose deferral this try was handed (Airflow 3.0), or ``None`` when it resumes its own.

    The try that deferred is in the resume's kwargs (``try_number``) when Airflow kept them; else, on 3.0, in the
    XCom :func:`note_the_deferring_try` pushed (a retry keeps its task instance's XComs when it resumes).
    """
    ti = context["ti"]
    deferred_by = next_kwargs.get("try_number") if isinstance(next_kwargs, Mapping) else None
    if deferred_by is None and retry_resumes_the_last_deferral():
        deferred_by = ti.xcom_pull(task_ids=ti.task_id, key=DEFERRED_BY_TRY, map_indexes=ti.map_index)
    if isinstance(deferred_by, int) and not isinstance(deferred_by, bool) and deferred_by != ti.try_number:
        return deferred_by
    return None


@functools.lru_cache(maxsize=1)
def callback_parse_deactivates_dags() -> bool:
    """Whether this Airflow's DAG processor deactivates a DAG file's DAGs after parsing it only to run callbacks.

    A task its trigger ends (``TaskSuccessEvent``) has the triggerer send the DAG processor a success callback
    request. Airflow 3.0's DAG processor records the parse that runs it as one that found no DAG and one
    import error, and deactivates every DAG of the file until its next full parse: triggering one through the
    API answers 404 meanwhile. 3.1 tells such parses apart; no public feature shows it, so the release does.
    """
    return not AIRFLOW_V_3_1_PLUS


def openlineage_reports(task: Any) -> bool:
    """Whether the OpenLineage provider's listener reports ``task`` (START, then COMPLETE or FAIL) where it runs.

    Read at execute time from the provider's own switches, never at DAG-parse time:

    * the provider is not installed, or cannot be imported: no listener exists;
    * ``airflow.providers.openlineage.conf.is_disabled()``: ``[openlineage] disabled``, or no transport configured
      at all (no ``transport``, ``config_path``, ``OPENLINEAGE_URL``...). Its plugin registers the listener by the
      same call, so where it answers True no listener runs;
    * otherwise the listener's own per-task decision. Provider 2.19+ makes it with one function,
      ``utils.emission_policy.resolve_task_emission_policy`` (``[openlineage] emission_policy``, with
      ``disabled_for_operators`` and ``selective_enable`` translated into it); earlier providers (the ones
      Airflow 3.0 to 3.2 resolve: 2.6.1, 2.12.0, 2.17.0) check ``disabled_for_operators``
      (``utils.utils.is_operator_disabled``), then ``selective_enable`` (``utils.utils.is_selective_lineage_enabled``),
      as their listener does.

    A decision the provider fails to make counts as "it reports": the task then resumes on a worker, where the
    listener decides for itself, and loses nothing but the shortcut.

    The answer is kept on the task for the rest of its execution (the provider logs each policy decision it makes,
    and a task asks several times: where it keeps its run id, where it ends).
    """
    decided = getattr(task, _OPENLINEAGE_DECIDED, None)
    if isinstance(decided, bool):
        return decided
    decided = _openlineage_reports(task)
    with contextlib.suppress(AttributeError, TypeError):
        setattr(task, _OPENLINEAGE_DECIDED, decided)
    return decided


#: Where :func:`openlineage_reports` keeps its answer on a task.
_OPENLINEAGE_DECIDED = "_alta_openlineage_reports"


def _openlineage_reports(task: Any) -> bool:
    try:
        from airflow.providers.openlineage import conf as openlineage_conf
    except Exception:  # not installed, or not importable here: its plugin cannot register a listener either
        return False
    try:
        if openlineage_conf.is_disabled():
            return False
        try:  # OpenLineage provider 2.19+
            from airflow.providers.openlineage.utils.emission_policy import resolve_task_emission_policy
        except ImportError:  # 2.18 and earlier
            from airflow.providers.openlineage.utils.utils import is_operator_disabled, is_selective_lineage_enabled

            return not is_operator_disabled(task) and bool(is_selective_lineage_enabled(task))
        return bool(resolve_task_emission_policy(operator=task, dag_id=task.dag_id, task_id=task.task_id).emit)
    except Exception:
        return True
