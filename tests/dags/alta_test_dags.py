"""DAGs the operator and sensor tests run with ``dag.test()`` against the emulator."""

from __future__ import annotations

import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_alta.operators.alta import AltaLiteral, AltaRunWorkflowOperator
from airflow_provider_alta.sensors.alta import AltaWorkflowRunSensor

START = datetime.datetime(2026, 1, 1)
FAST = {"poll_min_interval": 0.2, "poll_max_interval": 0.5}
NEWS_SCHEMA = {
    "type": "object",
    "required": ["news"],
    "properties": {"news": {"type": "array", "minItems": 1, "items": {"required": ["title", "summary"]}}},
}


class CrashesOnFirstTry(AltaRunWorkflowOperator):
    """Simulates a worker lost right after the run id was stored (try 1 only)."""

    def _reattach_or_invoke(self, context: Any, webhooks: Any) -> Any:
        run = super()._reattach_or_invoke(context, webhooks)
        if context["ti"].try_number == 1:
            raise RuntimeError("worker lost after the invoke")
        return run


class LostDuringSynchronousInvoke(AltaRunWorkflowOperator):
    """Simulates a worker lost while its synchronous invoke is open (try 1 only): the run starts, no id comes back."""

    def execute(self, context: Any) -> Any:
        if context["ti"].try_number == 1:
            invoke = self.hook.invoke_workflow

            def lost(*args: Any, **kwargs: Any) -> Any:
                invoke(*args, **kwargs)
                raise RuntimeError("worker lost during the synchronous invoke")

            self.hook.invoke_workflow = lost  # type: ignore[method-assign]
        return super().execute(context)


def dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=START, catchup=False, tags=["alta-test"])


@task
def count_news(output: dict) -> int:
    return len(output["news"])


with dag("t_sync") as t_sync:
    run = AltaRunWorkflowOperator(task_id="run", input={"topic": "News"}, user_id="tests")
    count_news(run.output)

with dag("t_async_worker") as t_async_worker:
    AltaRunWorkflowOperator(task_id="run", input={"topic": "AI"}, run_async=True, **FAST)

with dag("t_no_wait") as t_no_wait:
    AltaRunWorkflowOperator(task_id="run", input={"topic": "AI"}, wait_for_completion=False)

with dag("t_failed") as t_failed:
    AltaRunWorkflowOperator(task_id="run", input={"topic": "AI"}, run_async=True, **FAST)

with dag("t_timeout") as t_timeout:
    AltaRunWorkflowOperator(task_id="run", input={"topic": "AI"}, run_async=True, timeout=1.5, **FAST)

with dag("t_contracts") as t_contracts:
    AltaRunWorkflowOperator(
        task_id="schema_ok", input={"topic": "AI"}, output_schema=NEWS_SCHEMA, max_cost=1, max_tokens=5000
    )
    AltaRunWorkflowOperator(
        task_id="schema_broken",
        input={"topic": "AI"},
        output_schema={"type": "object", "required": ["headline"]},
    )
    AltaRunWorkflowOperator(task_id="too_expensive", input={"topic": "AI"}, max_cost=0.1)
    AltaRunWorkflowOperator(task_id="warn_only", input={"topic": "AI"}, max_tokens=10, limits_warn_only=True)

with dag("t_input_schema") as t_input_schema:
    AltaRunWorkflowOperator(
        task_id="run",
        input={"topic": ""},
        input_schema={"type": "object", "properties": {"topic": {"type": "string", "minLength": 3}}},
    )

with dag("t_templated") as t_templated:

    @task
    def make_input() -> dict:
        return {"topic": "Templated"}

    made = make_input()
    from_xcomarg = AltaRunWorkflowOperator(task_id="from_xcomarg", input=made)
    from_jinja = AltaRunWorkflowOperator(
        task_id="from_jinja", input="{{ ti.xcom_pull(task_ids='make_input') | tojson }}"
    )
    made >> from_jinja

with dag("t_mapped") as t_mapped:
    AltaRunWorkflowOperator.partial(task_id="run").expand(input=[{"topic": f"T{i}"} for i in range(5)])


# Mapped TaskFlow, deferred, and a downstream task pulling its metadata XComs by map index.
@task.alta(deferrable=True, **FAST)
def mapped_news(topic: str) -> dict:
    return {"topic": topic}


@task
def mapped_spend(outputs: list[Any], ti: Any = None) -> list[Any]:
    return ti.xcom_pull(task_ids="mapped_news", key="total_cost", map_indexes=list(range(len(outputs))))


with dag("t_mapped_taskflow") as t_mapped_taskflow:
    mapped_spend(mapped_news.expand(topic=[f"M{i}" for i in range(4)]))

# A retry whose stored run Alta answers 404 for: refused by default, replaced when allowed.
for _dag_id, _allowed in (("t_durable_unknown", False), ("t_durable_unknown_allowed", True)):
    with dag(_dag_id) as _unknown:
        CrashesOnFirstTry(
            task_id="run",
            input={"topic": "AI"},
            run_async=True,
            retries=2,
            retry_delay=datetime.timedelta(0),
            retry_on_unknown_outcome=_allowed,
            **FAST,
        )
    globals()[_dag_id] = _unknown

with dag("t_durable_live") as t_durable_live:
    CrashesOnFirstTry(
        task_id="run", input={"topic": "AI"}, run_async=True, retries=1, retry_delay=datetime.timedelta(0), **FAST
    )

with dag("t_sync_lost") as t_sync_lost:
    LostDuringSynchronousInvoke(task_id="run", input={"topic": "AI"}, retries=1, retry_delay=datetime.timedelta(0))

with dag("t_sync_lost_pay_again") as t_sync_lost_pay_again:
    LostDuringSynchronousInvoke(
        task_id="run",
        input={"topic": "AI"},
        retries=1,
        retry_delay=datetime.timedelta(0),
        retry_on_unknown_outcome=True,
    )

with dag("t_durable_finished") as t_durable_finished:
    CrashesOnFirstTry(task_id="run", input={"topic": "AI"}, retries=1, retry_delay=datetime.timedelta(0))


@task
def variable_store_round_trip(**context: Any) -> str:
    """The store used before Airflow 3.3, exercised on every version: set, read back, clear."""
    from airflow_provider_alta._airflow.run_id_store import run_id_store

    without_state_store = {"ti": context["ti"]}
    store = run_id_store(without_state_store, "unused")
    assert store.get() is None
    store.set("run-from-try-1")
    assert run_id_store(without_state_store, "unused").get() == "run-from-try-1"
    store.clear()
    assert store.get() is None
    return store.where


with dag("t_variable_store") as t_variable_store:
    variable_store_round_trip()

with dag("t_deferrable") as t_deferrable:
    AltaRunWorkflowOperator(task_id="run", input={"topic": "Deferred"}, deferrable=True, timeout=30, **FAST)

with dag("t_deferrable_timeout") as t_deferrable_timeout:
    AltaRunWorkflowOperator(task_id="run", input={"topic": "AI"}, deferrable=True, timeout=1.5, **FAST)

with dag("t_deferred_retry") as t_deferred_retry:
    CrashesOnFirstTry(
        task_id="run", input={"topic": "AI"}, deferrable=True, retries=1, retry_delay=datetime.timedelta(0), **FAST
    )

with dag("t_sensor_deferred") as t_sensor_deferred:
    start = AltaRunWorkflowOperator(
        task_id="start",
        input={"topic": "Sensed"},
        wait_for_completion=False,
        webhooks=[
            {
                "method": "POST",
                "url": "http://127.0.0.1:9/alta",
                "headers": {"X-Token": "{{ var.value.get('alta_hook_token', 'whk-SECRET-41') }}"},
            }
        ],
    )
    AltaWorkflowRunSensor(
        task_id="wait", workflow_run_id=start.output, deferrable=True, output_schema=NEWS_SCHEMA, **FAST
    )

with dag("t_sensor_poke") as t_sensor_poke:
    start = AltaRunWorkflowOperator(task_id="start", input={"topic": "Poked"}, wait_for_completion=False)
    AltaWorkflowRunSensor(task_id="wait", workflow_run_id=start.output, poke_interval=0.3)

with dag("t_sensor_soft_fail") as t_sensor_soft_fail:
    start = AltaRunWorkflowOperator(task_id="start", input={"topic": "Poked"}, wait_for_completion=False)
    AltaWorkflowRunSensor(task_id="wait", workflow_run_id=start.output, poke_interval=0.3, soft_fail=True)

with dag("t_sensor_deferred_soft_fail") as t_sensor_deferred_soft_fail:
    start = AltaRunWorkflowOperator(task_id="start", input={"topic": "Sensed"}, wait_for_completion=False)
    AltaWorkflowRunSensor(task_id="wait", workflow_run_id=start.output, deferrable=True, soft_fail=True, **FAST)

with dag("t_receiver_target") as t_receiver_target:

    @task
    def waiting() -> None:
        """Leaves a task instance the webhook receiver tests then mark as deferred."""

    waiting()

with dag("t_mailbox_targets") as t_mailbox_targets:

    @task
    def mapped_waiting(index: int) -> None:
        """Leaves six task instances whose mailboxes the batched read tests fill."""

    mapped_waiting.expand(index=list(range(6)))

WEBHOOK = {"deferrable": True, "airflow_webhook": True, **FAST}

with dag("t_webhook") as t_webhook:
    AltaRunWorkflowOperator(task_id="run", input={"topic": "AI"}, webhook_fallback_interval=60, **WEBHOOK)

with dag("t_webhook_fallback") as t_webhook_fallback:
    AltaRunWorkflowOperator(task_id="run", input={"topic": "AI"}, webhook_fallback_interval=1.5, **WEBHOOK)

with dag("t_duration_aware") as t_duration_aware:
    AltaRunWorkflowOperator(task_id="run", input={"topic": "AI"}, deferrable=True, **FAST)


@task
def show(value: Any, output_format: str) -> str:
    """A downstream task reporting what it received: ``ascii()`` of the value, which XCom carries whatever it is."""
    import json

    return ascii(json.loads(value) if output_format == "json" else value)


for _mode, _kwargs in (("sync", {}), ("deferred", {"deferrable": True, "timeout": 30, **FAST})):
    with dag(f"t_carry_{_mode}") as _carry_dag:
        for _format in ("value", "json"):
            _run = AltaRunWorkflowOperator(
                task_id=f"run_{_format}",
                input={"topic": "AI"},
                output_format=_format,
                retries=1,
                retry_delay=datetime.timedelta(0),
                **_kwargs,
            )
            show.override(task_id=f"show_{_format}")(_run.output, _format)
    globals()[f"t_carry_{_mode}"] = _carry_dag

#: Strings Jinja would change although they hold no template (or hold one that must not be rendered).
VERBATIM_INPUT = {
    "prompt": "line 1\r\nline 2\n\n",
    "templated": "{{ params.topic }}\r\n",
    "literal": AltaLiteral("Answer in the form {{answer}} {% raw %} {#"),
    "nested": ["tab\t\r\n", {"comment": "{# dropped #}kept"}],
}

with DAG("t_verbatim", schedule=None, start_date=START, catchup=False, params={"topic": "AI"}) as t_verbatim:
    AltaRunWorkflowOperator(task_id="run", input=VERBATIM_INPUT)

with dag("t_retry_once") as t_retry_once:
    AltaRunWorkflowOperator(task_id="run", input={"topic": "AI"}, retries=1, retry_delay=datetime.timedelta(0))

with dag("t_sensor_json") as t_sensor_json:
    start = AltaRunWorkflowOperator(task_id="start", input={"topic": "AI"}, wait_for_completion=False)
    sensed = AltaWorkflowRunSensor(
        task_id="wait", workflow_run_id=start.output, deferrable=True, output_format="json", **FAST
    )
    show.override(task_id="show_json")(sensed.output, "json")

# The spend view's data: four mapped runs and a FAILED one in one DAG, one run in another.
with dag("t_spend") as t_spend:
    AltaRunWorkflowOperator.partial(task_id="news").expand(input=[{"topic": f"S{i}"} for i in range(4)])
    AltaRunWorkflowOperator(task_id="fails", alta_conn_id="alta_spend_fail", input={"topic": "AI"})

with dag("t_spend_other") as t_spend_other:
    AltaRunWorkflowOperator(task_id="news", input={"topic": "Other"})

with dag("t_spend_batch") as t_spend_batch:
    from airflow_provider_alta.operators.batch import AltaBatchOperator

    AltaBatchOperator(
        task_id="batch",
        items=[{"topic": f"B{i}"} for i in range(3)],
        output_path="{{ var.value.alta_spend_out }}",
        poll_min_interval=0.05,
    )
