"""Every difference between the Airflow 3 releases the provider supports (3.0 to 3.3), in one place.

The rest of the provider imports from here and reads as if there were one
Airflow. Features are detected, not version numbers compared, so a backport
or a later release is picked up without a change here; what shows in no public
feature (what a retry is handed after a deferral, what 3.0's DAG processor does
with a callback-only parse) is told by the release
(``version_compat.AIRFLOW_V_3_1_PLUS``), never by reading Airflow's source.
What differs:

============================  =====================================  =========================================
what                          where it exists                        older releases
============================  =====================================  =========================================
``BaseHook`` in the SDK       3.1+ (``airflow.sdk``)                 ``airflow.hooks.base``
``conf`` in the SDK           3.2+ (``airflow.sdk``)                 ``airflow.configuration``
task exceptions in the SDK    3.2+ (``airflow.sdk.exceptions``)      ``airflow.exceptions``
                              (``conf`` and the exceptions: :mod:`version_compat`, which parse-time code imports)
``BaseHook.aget_connection``  3.1+                                   the sync lookup through ``sync_to_async``
``XCom.aget_one``             3.3+                                   the same request sent on the trigger channel
``task_state_store``          3.3+ (``context``)                     an Airflow Variable per task instance
``XComModel.set(serialize=)`` 3.2+                                   the row written as the Execution API does
a TaskFlow function's call   ``DecoratedOperator.determine_kwargs``  ``KeywordParameters`` of ``airflow.utils``
a quiet "is there an XCom"    the slice request (``send`` channel)   a plain pull, which logs a missing XCom
a retry after a deferral      starts at ``execute`` (3.1+)           resumes the last try's deferral (3.0):
                                                                     see :func:`earlier_deferring_try`
an XCom pushed by a trigger   ``XCom.aset`` (3.3+)                   the same request sent on the trigger channel
a run id a trigger forgets    an Airflow Variable on every release   (no release lets a trigger delete from the
                              (see :func:`run_id_store`)             task state store)
``Stats`` (metrics)           ``airflow.sdk.observability.stats``    ``airflow.stats`` (3.0, 3.1), whose backend
                              (3.2+), set up by ``initialize``       is chosen once, when it is first imported
a task a trigger ends         its success callback parse leaves the  the DAG processor counts that parse as one
                              file's DAGs alone (3.1+)               that found no DAG and deactivates the file's
                                                                     DAGs (3.0): such tasks resume on a worker,
                                                                     see :func:`callback_parse_deactivates_dags`
a plugin's page in the UI     ``external_views`` (3.1+)              none: reachable by its URL only (3.0)
the API server's caller       ``get_user`` reads the Bearer header   the header only (3.0): the UI's session
                              or the UI's session cookie (3.1+)      cookie is read here, then the same check
the API server's URL, seen    ``[core] execution_api_server_url``,   the same setting and default on 3.0-3.2;
from a triggerer              default ``[api] base_url`` +           3.3 also accepts it under ``[workers]``
                              ``/execution/`` (every release)        (read through ``conf``); default rebuilt here
whether OpenLineage reports   OpenLineage provider 2.19+ (Airflow    ``disabled_for_operators``, then
a task (its listener's        3.3 resolves 2.20): one rule set,      ``selective_enable``, as its listener checks
per-task decision)            ``resolve_task_emission_policy``       them (provider 2.18 and before; 3.0-3.2
                                                                     resolve 2.6.1, 2.12.0, 2.17.0): see
                                                                     :func:`openlineage_reports`
============================  =====================================  =========================================

``sync_to_async`` (asgiref, which Airflow ships) is the bridge Airflow's own
triggerer offers for sync SDK calls: the call runs in a worker thread while
its message to the supervisor goes out on the triggerer's event loop, so the
loop is never blocked and the supervisor channel is never used from two loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import inspect
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_alta._airflow.version_compat import (
    AIRFLOW_V_3_1_PLUS,
    AirflowFailException,
    AirflowNotFoundException,
    AirflowSensorTimeout,
    AirflowSkipException,
    conf,
)

try:  # Airflow 3.1+
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

if TYPE_CHECKING:
    from airflow.sdk import Connection

__all__ = [
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "RunIdStore",
    "adelete_variable",
    "aget_connection",
    "aget_xcom",
    "api_server_base_url",
    "api_server_user",
    "aset_xcoms",
    "call_task_function",
    "conf",
    "earlier_deferring_try",
    "earlier_xcoms",
    "get_xcom",
    "get_xcoms",
    "in_triggerer",
    "note_the_deferring_try",
    "openlineage_reports",
    "plugin_nav_views",
    "pull_latest_xcom",
    "reset_stats",
    "retry_resumes_the_last_deferral",
    "run_id_store",
    "set_xcom",
    "stats",
    "variable_key",
]


def stats() -> Any:
    """Airflow's metrics client (``Stats``): ``incr``, ``gauge``, ``timing``, each taking ``tags=``.

    Imported when a run has ended, never at DAG-parse time. Whatever backend the deployment configured in
    ``[metrics]`` (StatsD, its Datadog or InfluxDB flavours, OpenTelemetry) receives what is sent here.
    On 3.2+ the Task SDK's client is set up by each process that uses it (a task's runner, the SDK's
    serializers); a process that has not (a 3.2 triggerer, whose own metrics use core's client) gets it set up
    here from the same configuration, so that a trigger's metrics are not silently dropped.
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


def plugin_nav_views(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A plugin's ``external_views`` entries for the UI's navigation (3.1+); none where the UI has no such entries
    (3.0), whose pages are then reachable by their URL only."""
    from airflow.plugins_manager import AirflowPlugin

    return views if hasattr(AirflowPlugin, "external_views") else []


def api_server_user() -> Any:
    """The API server's FastAPI dependency naming the caller, for a plugin's own routes.

    It accepts what Airflow's own API accepts: a JWT as ``Authorization: Bearer``, or the UI's session cookie
    (how a page opened from the UI is authenticated), and answers 401 when there is none, 401/403 for an
    expired or invalid one. On 3.1+ that is Airflow's ``get_user``; 3.0's reads the header only, so the token
    is taken from the header or the cookie here and handed to it.
    """
    from airflow.api_fastapi.core_api.security import get_user as airflow_get_user

    if "request" in inspect.signature(airflow_get_user).parameters:  # Airflow 3.1+
        return airflow_get_user
    get_user: Any = airflow_get_user  # 3.0's takes the token itself
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from fastapi import HTTPException, Request

    async def user_from_header_or_cookie(request: Request) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            token = request.cookies.get(COOKIE_NAME_JWT_TOKEN, "")
        if not token.strip():
            raise HTTPException(status_code=401, detail="Not authenticated")
        return await get_user(token.strip())

    # FastAPI reads the annotations at runtime; this module's are strings (``from __future__ import annotations``).
    user_from_header_or_cookie.__annotations__ = {"request": Request, "return": Any}
    return user_from_header_or_cookie


async def aget_connection(conn_id: str) -> Connection:
    """Read a connection from inside a trigger without blocking the event loop."""
    native = getattr(BaseHook, "aget_connection", None)
    if native is not None:  # Airflow 3.1+
        conn: Connection = await native(conn_id)
        return conn
    from asgiref.sync import sync_to_async

    conn = await sync_to_async(BaseHook.get_connection)(conn_id)
    return conn


async def aget_xcom(*, key: str, dag_id: str, run_id: str, task_id: str, map_index: int) -> Any:
    """One XCom value of any task instance, read from a trigger without blocking the event loop."""
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.xcom import XCom

    where: dict[str, Any] = {"key": key, "dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}
    comms: Any = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if not hasattr(comms, "asend"):
        # Not a triggerer (every triggerer's channel has ``asend``): ``dag.test()`` runs the trigger inline, next to
        # the metadata database, with no channel (3.0) or the task's synchronous one, not meant for other threads.
        from asgiref.sync import sync_to_async

        return await sync_to_async(_xcom_from_database)(**where)
    if hasattr(XCom, "aget_one"):  # Airflow 3.3+
        return await XCom.aget_one(**where)
    from airflow.sdk.execution_time.comms import GetXCom, XComResult

    answer = await comms.asend(GetXCom(**where))
    if not isinstance(answer, XComResult):
        raise TypeError(f"the triggerer's supervisor answered {type(answer).__name__} to an XCom read")
    return None if answer.value is None else XCom.deserialize_value(answer)


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


def in_triggerer() -> bool:
    """Whether this code runs in Airflow's triggerer, as opposed to ``dag.test()``, which runs triggers inline.

    Every release's triggerer talks to its supervisor through a ``TriggerCommsDecoder``; ``dag.test()`` has
    another channel or none, and resumes the task with whatever the trigger yields.
    """
    from airflow.sdk.execution_time import task_runner

    return type(getattr(task_runner, "SUPERVISOR_COMMS", None)).__name__ == "TriggerCommsDecoder"


async def aset_xcoms(values: Mapping[str, Any], *, dag_id: str, run_id: str, task_id: str, map_index: int) -> None:
    """Push XComs from a trigger through the triggerer's supervisor: stored exactly as the task's own pushes.

    The supervisor answers requests between its loop's other work, so each request waits for a turn of that
    loop. 3.3's channel takes requests side by side (``XCom.aset``): all the pushes share one turn. Before, the
    channel sends one request at a time.
    """
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.xcom import XCom

    where: dict[str, Any] = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}
    if hasattr(XCom, "aset"):  # Airflow 3.3+
        await asyncio.gather(*(XCom.aset(key, value, **where) for key, value in values.items()))
        return
    from airflow.sdk.execution_time.comms import SetXCom

    for key, value in values.items():
        serialized = XCom.serialize_value(value=value, key=key, **where)
        answer = await task_runner.SUPERVISOR_COMMS.asend(SetXCom(key=key, value=serialized, **where))
        _check_answer(answer, "XCom push")


async def adelete_variable(key: str) -> None:
    """Delete an Airflow Variable from a trigger, through the triggerer's supervisor."""
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import DeleteVariable

    _check_answer(await task_runner.SUPERVISOR_COMMS.asend(DeleteVariable(key=key)), "Variable deletion")


def _check_answer(answer: Any, what: str) -> None:
    if type(answer).__name__ == "ErrorResponse":
        raise RuntimeError(f"the triggerer's supervisor refused the {what}: {getattr(answer, 'error', answer)}")


def _xcom_from_database(**where: Any) -> Any:
    from airflow.utils.session import create_session

    with create_session() as session:
        return get_xcom(session, **where)


def get_xcom(session: Any, *, key: str, dag_id: str, run_id: str, task_id: str, map_index: int) -> Any:
    """One XCom value read from the metadata database (API server, ``dag.test()``), whichever way it was stored."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    row = session.execute(select(XComModel.value).where(*_one_xcom(key, dag_id, run_id, task_id, map_index))).first()
    return None if row is None else XComModel.deserialize_value(row)


def get_xcoms(
    session: Any, *, key: str, task_instances: list[tuple[str, str, str, int]]
) -> dict[tuple[str, str, str, int], Any]:
    """The ``key`` XCom of many task instances (``(dag_id, run_id, task_id, map_index)``) in one SQL query,
    decoded as :func:`get_xcom` decodes one; task instances without one are left out."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select, tuple_

    if not task_instances:
        return {}
    columns = (XComModel.dag_id, XComModel.run_id, XComModel.task_id, XComModel.map_index)
    query = select(*columns, XComModel.value).where(
        XComModel.key == key, tuple_(*columns).in_(sorted(set(task_instances)))
    )
    return {
        (row.dag_id, row.run_id, row.task_id, row.map_index): XComModel.deserialize_value(row)
        for row in session.execute(query)
    }


def api_server_base_url() -> str:
    """The API server's root URL as this process reaches it: the Execution API's URL without ``/execution/``.

    Every release reads ``[core] execution_api_server_url`` and, when it is unset, derives it from
    ``[api] base_url`` (a relative or empty one on ``http://localhost:8080``); the triggerer's own Execution API
    channel is in-process, so the same setting the workers use tells where the API server is.
    """
    base_url = conf.get("api", "base_url", fallback="/") or "/"
    if base_url.startswith("/"):
        base_url = f"http://localhost:8080{base_url}"
    default = f"{base_url.rstrip('/')}/execution/"
    url = (conf.get("core", "execution_api_server_url", fallback=default) or default).rstrip("/")
    suffix = "/execution"
    return url[: -len(suffix)] if url.endswith(suffix) else url


def _one_xcom(key: str, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[Any]:
    """The SQL conditions selecting one XCom row."""
    from airflow.models.xcom import XComModel

    return [
        XComModel.key == key,
        XComModel.dag_id == dag_id,
        XComModel.run_id == run_id,
        XComModel.task_id == task_id,
        XComModel.map_index == map_index,
    ]


def set_xcom(session: Any, *, key: str, value: Any, dag_id: str, run_id: str, task_id: str, map_index: int) -> None:
    """Store an XCom from the API server exactly as a task's own push is stored: plain JSON.

    ``XComModel.set`` does that with ``serialize=False`` (3.2+); before, it stores a JSON *string*, which a
    task reading the value gets back as a string, so the row is written as the Execution API writes it.
    """
    from airflow.models.xcom import XComModel

    if "serialize" in inspect.signature(XComModel.set).parameters:
        XComModel.set(
            key,
            value,
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            map_index=map_index,
            serialize=False,
            session=session,
        )
        return
    from airflow.models.dagrun import DagRun
    from sqlalchemy import delete, select

    dag_run_id = session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    if dag_run_id is None:
        raise ValueError(f"DAG run not found on DAG {dag_id!r} with ID {run_id!r}")
    session.execute(delete(XComModel).where(*_one_xcom(key, dag_id, run_id, task_id, map_index)))
    session.add(
        XComModel(
            dag_run_id=dag_run_id,
            key=key,
            value=value,
            run_id=run_id,
            task_id=task_id,
            dag_id=dag_id,
            map_index=map_index,
        )
    )
    session.flush()


def call_task_function(operator: Any, context: Any) -> Any:
    """Call a TaskFlow operator's function with its arguments and the context keys it names, as ``@task`` does."""
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


def earlier_xcoms(ti: Any, key: str, *, limit: int) -> list[Any] | None:
    """Up to ``limit`` values of XCom ``key`` that any instance of this task pushed, in this or earlier DAG runs.

    Asked with a slice request, which answers an empty list where a plain pull of a missing XCom makes Airflow
    log "[error] XCom not found" (no error at all on a task's first run, or for a mapped instance whose
    siblings pushed first). The values come in no particular order of runs, and say nothing of their map index.
    ``None`` when the task's channel to its supervisor cannot be asked this way.
    """
    try:
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import GetXComSequenceSlice, XComSequenceSliceResult

        request = GetXComSequenceSlice(
            key=key,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            start=None,
            stop=limit,
            step=None,
            include_prior_dates=True,
        )
    except (ImportError, TypeError, ValueError):
        return None
    comms: Any = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if not hasattr(comms, "send"):
        return None
    answer = comms.send(request)
    return list(answer.root) if isinstance(answer, XComSequenceSliceResult) else None


def pull_latest_xcom(ti: Any, key: str) -> Any:
    """The latest value of this task instance's own XCom ``key`` from this or an earlier DAG run.

    Only where it is known to exist (:func:`earlier_xcoms`): a missing one is logged as an Airflow error.
    """
    return ti.xcom_pull(task_ids=ti.task_id, key=key, include_prior_dates=True, map_indexes=ti.map_index)


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


class RunIdStore(Protocol):
    """Where the operator keeps its Alta run id so that a later try of the same task instance finds it."""

    #: Named in the log, so a user knows where the id lives.
    where: str

    def get(self) -> str | None: ...

    def set(self, workflow_run_id: str) -> None: ...

    def clear(self) -> None: ...


class _TaskStateStore:
    """Airflow 3.3+: the task instance's own state store, cleared by Airflow when the task succeeds."""

    where = "the task state store"

    def __init__(self, store: Any, key: str) -> None:
        self._store = store
        self._key = key

    def get(self) -> str | None:
        value = self._store.get(self._key)
        return value if isinstance(value, str) and value else None

    def set(self, workflow_run_id: str) -> None:
        self._store.set(self._key, workflow_run_id)

    def clear(self) -> None:
        delete = getattr(self._store, "delete", None)
        if delete is not None:
            delete(self._key)


def variable_key(store: RunIdStore) -> str | None:
    """The Variable holding the run id, when ``store`` is one (what a trigger deletes when it ends the task)."""
    return store.key if isinstance(store, _VariableStore) else None


class _VariableStore:
    """Before Airflow 3.3: one Airflow Variable per task instance, holding only the run id.

    Variables live in the metadata database (through the Execution API), so
    the id survives the loss of the worker and is seen by a retry on any
    other worker; they need no configuration and exist on every Airflow 3.
    The key is a digest of the task instance's identity; the description
    names the task instance. The variable is deleted when the task succeeds.
    """

    where = "an Airflow Variable"

    def __init__(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> None:
        identity = json.dumps([dag_id, run_id, task_id, map_index])
        self.key = "alta_run_id." + hashlib.sha256(identity.encode()).hexdigest()[:40]
        index = f"[{map_index}]" if map_index >= 0 else ""
        self.description = (
            f"Alta run of {dag_id}/{run_id}/{task_id}{index}, kept so that a retry reattaches to it "
            "(airflow-provider-alta; deleted when the task succeeds)"
        )
        self.where = f"the Airflow Variable {self.key!r}"

    def get(self) -> str | None:
        from airflow.sdk import Variable

        value = Variable.get(self.key, default=None)
        return value if isinstance(value, str) and value else None

    def set(self, workflow_run_id: str) -> None:
        # The SDK's private setter raises on failure; ``Variable.set`` would only log it, and a run id
        # that silently failed to persist is a second paid run on the next retry.
        from airflow.sdk.execution_time.context import _set_variable

        _set_variable(self.key, workflow_run_id, self.description)

    def clear(self) -> None:
        from airflow.sdk.execution_time.context import _delete_variable

        _delete_variable(self.key)


def run_id_store(context: Mapping[str, Any], key: str, *, trigger_forgets: bool = False) -> RunIdStore:
    """The durable store of this task instance: Airflow's task state store where it exists, else a Variable.

    ``trigger_forgets``: a trigger may end the task and must then forget the run id itself. No release lets a
    trigger delete from the task state store, so such a task keeps its id in a Variable on every release.
    """
    store = context.get("task_state_store")
    if store is not None and not trigger_forgets:
        return _TaskStateStore(store, key)
    ti = context["ti"]
    map_index = ti.map_index if ti.map_index is not None else -1
    return _VariableStore(ti.dag_id, ti.run_id, ti.task_id, map_index)


def legacy_connection_form(connection_type: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The connection form for Airflow 3.0 and 3.1, built from the provider info's declarative form.

    Those releases do not read ``conn-fields`` / ``ui-field-behaviour`` from
    provider info; they call the hook's ``get_connection_form_widgets`` and
    ``get_ui_field_behaviour`` instead (Airflow 3.2+ skips both when the
    provider info declares the form, so one declaration serves every release).
    Their API server substitutes stand-ins for wtforms and Flask-AppBuilder
    when those are not installed.
    """
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, PasswordField, StringField
    from wtforms.validators import Optional

    widgets: dict[str, Any] = {}
    for name, spec in connection_type.get("conn-fields", {}).items():
        schema = spec["schema"]
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        label = lazy_gettext(spec["label"])
        description = spec.get("description", "")
        default = schema.get("default")
        if "boolean" in kinds:
            widgets[name] = BooleanField(label, description=description, default=default)
        elif "integer" in kinds:
            widgets[name] = IntegerField(
                label, validators=[Optional()], widget=BS3TextFieldWidget(), description=description, default=default
            )
        elif schema.get("format") == "password":
            widgets[name] = PasswordField(label, widget=BS3PasswordFieldWidget(), description=description)
        else:
            text_default = None if default is None else str(default)
            widgets[name] = StringField(
                label, widget=BS3TextFieldWidget(), description=description, default=text_default
            )
    behaviour = connection_type.get("ui-field-behaviour", {})
    legacy_behaviour = {
        "hidden_fields": list(behaviour.get("hidden-fields", [])),
        "relabeling": dict(behaviour.get("relabeling", {})),
        "placeholders": dict(behaviour.get("placeholders", {})),
    }
    return widgets, legacy_behaviour
