"""Handing a run to the triggerer: what a task sets up before it defers, for the operator and the sensor alike.

The trigger's kwargs are plain JSON and hold no secret (a restarted triggerer rebuilds the trigger from them alone,
so the deadline is absolute); the defer line says which path the task takes when its run ends (see
:func:`~airflow_provider_alta._airflow.triggerer_finish.finish_for`); the task resumes in ``execute_complete``
knowing which run and which try it waits for. With ``airflow_webhook``, Alta also calls the webhook receiver, which
wakes the trigger through the task's mailbox.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow_provider_alta._core.finish_plan import XCOM_RUN_ID
from airflow_provider_alta._core.polling import PollingSettings
from airflow_provider_alta.models import WorkflowRun

if TYPE_CHECKING:
    from airflow_provider_alta._airflow.run_id_store import RunIdStore
    from airflow_provider_alta._airflow.triggerer_finish import Ending
    from airflow_provider_alta._core.connection import AltaConnectionConfig
    from airflow_provider_alta._core.finish_plan import FinishContract
    from airflow_provider_alta._webhook.contract import TaskInstanceRef


def trigger_kwargs(
    run: WorkflowRun,
    *,
    conn_id: str,
    timeout: float | None,
    started_at: float | None,
    polling: PollingSettings,
    ending: Ending,
    mailbox: TaskInstanceRef | None = None,
    mailbox_interval: float = 1.0,
) -> dict[str, Any]:
    """The kwargs of the trigger that waits for ``run``: its deadline ``timeout`` seconds from now (none: no limit)."""
    return {
        "workflow_run_id": run.workflow_run_id,
        "alta_conn_id": conn_id,
        "deadline": time.time() + timeout if timeout is not None else None,
        "started_at": started_at,
        "polling": polling.to_dict(),
        "last_status": run.status.value,
        "mailbox": mailbox.to_dict() if mailbox is not None else None,
        "mailbox_interval": mailbox_interval,
        "workflow_name": run.workflow_name,
        "workflow_version": run.workflow_version,
        "finish": ending.finish_kwarg(),
    }


def announce_deferral(log: Any, context: Mapping[str, Any], run: WorkflowRun, ending: Ending) -> None:
    """The defer line (which path the task takes when its run ends), and the deferring try where 3.0 needs it."""
    from airflow_provider_alta._airflow.version_compat.task import note_the_deferring_try

    log.info("Deferring: the triggerer waits for Alta %s %s", run.describe(), ending.describe())
    note_the_deferring_try(context)


def resume_at_execute_complete(context: Mapping[str, Any], workflow_run_id: str) -> dict[str, Any]:
    """How the task resumes (``BaseOperator.defer``'s other arguments): with the run it waits for and its try.

    No deferral timeout: the trigger's own deadline ends the wait, with a clear error.
    """
    kwargs = {"workflow_run_id": workflow_run_id, "try_number": context["ti"].try_number}
    return {"method_name": "execute_complete", "kwargs": kwargs, "timeout": None}


def finish_settings(
    contract: FinishContract, store: RunIdStore | None, pushed_before: tuple[str, ...]
) -> dict[str, Any]:
    """The task's own :class:`~airflow_provider_alta._airflow.triggerer_finish.TriggererFinish` fields: its contract,
    the Variable the trigger deletes when it ends the task (when the run id is kept in one), what it pushed already."""
    from airflow_provider_alta._airflow.run_id_store import variable_key
    from airflow_provider_alta._airflow.triggerer_finish import carried

    return {
        **carried(replace(contract, pushed_before=pushed_before)),
        "forget_variable": variable_key(store) if store is not None else None,
    }


def push_final_facts(ti: Any, run: WorkflowRun) -> tuple[str, ...]:
    """Push now, from the worker, the XComs whose values are final already, so that the trigger pushes fewer.

    ``workflow_run_id`` went out before waiting; the workflow's name and version are known from the invoke.
    Returns every such key, for the trigger's finish (``pushed_before``).
    """
    pushed = [XCOM_RUN_ID]
    for key, value in (("workflow_name", run.workflow_name), ("workflow_version", run.workflow_version)):
        if value is not None:
            ti.xcom_push(key=key, value=value)
            pushed.append(key)
    return tuple(pushed)


def task_instance_ref(conn_id: str, ti: Any) -> TaskInstanceRef:
    """The task instance a webhook is for: its mailbox, and what the receiver's token names."""
    from airflow_provider_alta._webhook.contract import TaskInstanceRef

    map_index = ti.map_index if ti.map_index is not None else -1
    return TaskInstanceRef(conn_id=conn_id, dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=map_index)


def receiver_webhook(config: AltaConnectionConfig, conn_id: str, ti: Any) -> dict[str, Any]:
    """The webhook that has Alta call the receiver for this try of ``ti`` on connection ``conn_id`` (``config``); its
    token is masked in every log."""
    from airflow.sdk.log import mask_secret

    from airflow_provider_alta._webhook.contract import SIGNATURE_HEADER, WebhookSettings, airflow_webhook

    settings = WebhookSettings.from_config()
    grant = settings.grant(task_instance_ref(conn_id, ti), ti.try_number)
    receiver = airflow_webhook(settings, config.webhook_secret, grant, config.conn_type)
    mask_secret(receiver["headers"][SIGNATURE_HEADER])
    return receiver


def open_mailbox(ti: Any, conn_id: str) -> None:
    """Push the task's empty webhook mailbox, so the triggerer's frequent reads find a value instead of logging 404s.

    It names the connection, so the receiver takes only that connection's tokens for this task.
    """
    from airflow_provider_alta._webhook.contract import MAILBOX_KEY, empty_mailbox

    ti.xcom_push(key=MAILBOX_KEY, value=empty_mailbox(conn_id))


def webhook_already_in(ti: Any, run: WorkflowRun, get_run: Callable[[str], WorkflowRun], log: Any) -> WorkflowRun:
    """A webhook that arrived before the deferral, confirmed by one query: the task then needs no trigger."""
    from airflow_provider_alta._webhook.contract import MAILBOX_KEY, announces_end

    notice = ti.xcom_pull(task_ids=ti.task_id, key=MAILBOX_KEY, map_indexes=ti.map_index)
    if not announces_end(notice, run.workflow_run_id):
        return run
    confirmed = get_run(run.workflow_run_id)
    log.info("The webhook arrived before deferring; Alta confirms %s", confirmed.status.value)
    return confirmed
