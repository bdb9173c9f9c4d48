"""Observability of Alta runs on a real Airflow task run: StatsD metrics, the OpenLineage facet, the run link.

Metrics: a real UDP socket on 127.0.0.1 is Airflow's StatsD server (``[metrics] statsd_on``); the
packets Airflow's own metrics client sends from the ``dag.test()`` run are read back and parsed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_alta._airflow.lineage import SCHEMA_URL
from airflow_provider_alta._airflow.triggerer_finish import OPENLINEAGE_REASON
from airflow_provider_alta._airflow.version_compat.stats import reset_stats
from tests._airflow.test_lineage import facet_validator
from tests.conftest import SECRET_KEY
from tests.dag_runner import plain, run_dag

pytestmark = pytest.mark.usefixtures("airflow_db", "alta_conn")

PREFIX = "airflow.alta.run."
Metric = tuple[str, dict[str, str], float, str]  # name, tags, value, StatsD type


class StatsdServer:
    """A StatsD server as far as a test needs one: a UDP socket that keeps every packet."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]

    def packets(self) -> list[str]:
        """Every packet received so far (each StatsD metric is one datagram)."""
        self.sock.settimeout(0.5)
        found = []
        while True:
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                return found
            found.extend(data.decode().splitlines())

    def alta(self) -> list[Metric]:
        """The provider's metrics as (name, influx-style tags, value, type), Airflow's own left aside."""
        metrics = []
        for packet in self.packets():
            assert SECRET_KEY not in packet
            if not packet.startswith(PREFIX):
                continue
            name_and_tags, _, rest = packet.partition(":")
            name, *tags = name_and_tags.split(",")
            value, kind = rest.split("|")[:2]
            metrics.append((name, dict(tag.split("=", 1) for tag in tags), float(value), kind))
        return metrics


@pytest.fixture
def statsd(monkeypatch) -> Iterator[StatsdServer]:
    """Airflow's metrics sent to a fresh StatsD socket (plain StatsD, the default flavour)."""
    server = StatsdServer()
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(server.port))
    reset_stats()
    yield server
    monkeypatch.undo()
    reset_stats()
    server.sock.close()


def by_name(metrics: list[Metric]) -> dict[str, list[tuple[dict[str, str], float, str]]]:
    """Each metric name with every (tags, value, type) it was sent with."""
    found: dict[str, list[tuple[dict[str, str], float, str]]] = {}
    for name, tags, value, kind in metrics:
        found.setdefault(name, []).append((tags, value, kind))
    return found


def test_plain_statsd_gets_each_metric_once_without_tags(alta_emulator, statsd):
    alta_emulator.configure(duration=0.2)
    result = run_dag("t_sync")
    assert result.state == "success"
    metrics = by_name(statsd.alta())
    assert metrics == {
        "airflow.alta.run.status.succeed": [({}, 1.0, "c")],
        "airflow.alta.run.cost": [({}, pytest.approx(0.6928), "c")],
        "airflow.alta.run.tokens": [({}, 1745.0, "c")],
        "airflow.alta.run.duration": [({}, 200.0, "ms")],
        "airflow.alta.run.queries": [({}, 0.0, "c")],  # a synchronous run is one invoke, no query
    }


def test_influxdb_tags_on_a_deferred_run_count_the_triggers_queries(alta_emulator, statsd, monkeypatch):
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED", "True")
    reset_stats()
    alta_emulator.configure(duration=1.0)
    result = run_dag("t_deferrable")
    assert result.state == "success"
    run_id = result.xcom("run", "workflow_run_id")
    queries = alta_emulator.run(run_id)["queries"]
    assert queries >= 1
    tags = {
        "dag_id": "t_deferrable",
        "task_id": "run",
        "conn_id": "alta_default",
        "workflow": "todayNews",
        "status": "SUCCEED",
    }
    assert by_name(statsd.alta()) == {
        "airflow.alta.run.status.succeed": [(tags, 1.0, "c")],
        "airflow.alta.run.cost": [(tags, pytest.approx(0.6928), "c")],
        "airflow.alta.run.tokens": [(tags, 1745.0, "c")],
        "airflow.alta.run.duration": [(tags, 1000.0, "ms")],
        "airflow.alta.run.queries": [(tags, float(queries), "c")],  # every query the trigger sent
    }


def test_a_failed_run_is_counted_as_failed_once(alta_emulator, statsd, monkeypatch):
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED", "True")
    reset_stats()
    alta_emulator.configure(duration=0.3, outcome="fail")
    result = run_dag("t_failed")
    assert result.state == "failed"
    run_id = result.xcom("run", "workflow_run_id")
    metrics = by_name(statsd.alta())
    assert "airflow.alta.run.status.succeed" not in metrics
    [(tags, count, kind)] = metrics["airflow.alta.run.status.failed"]
    assert (count, kind, tags["status"], tags["dag_id"]) == (1.0, "c", "FAILED", "t_failed")
    # The worker polled: each query it sent is counted, as Alta saw them.
    [(_, queries, _)] = metrics["airflow.alta.run.queries"]
    assert queries == alta_emulator.run(run_id)["queries"] >= 1


def test_a_run_that_never_started_sends_no_run_metrics(alta_emulator, statsd):
    result = run_dag("t_input_schema")  # refused before the invoke
    assert result.state == "failed"
    assert statsd.alta() == []


TRIGGERER_EMIT = """
import asyncio
import airflow.jobs.triggerer_job_runner  # a triggerer process (on 3.2+ its own metrics use core's client)
from airflow_provider_alta._airflow.metrics import emit_run_metrics
from airflow_provider_alta.models import WorkflowRun

run = WorkflowRun.from_response(
    {"workflowRunId": "r-1", "status": "SUCCEED", "workflowName": "todayNews", "totalCost": 0.5, "totalTokens": 7}
)

async def finish() -> None:  # as a trigger ending its task would, inside the triggerer's event loop
    emit_run_metrics(run, dag_id="d", task_id="t", conn_id="alta_default", queries=3)

asyncio.run(finish())
"""


@pytest.mark.cli
def test_a_triggerer_process_sends_the_metrics(statsd):
    """The emit needs no task context, and works in a triggerer process that never set the SDK's client up."""
    env = {**os.environ, "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True"}
    subprocess.run([sys.executable, "-c", TRIGGERER_EMIT], env=env, check=True, timeout=120)
    tags = {"dag_id": "d", "task_id": "t", "conn_id": "alta_default", "workflow": "todayNews", "status": "SUCCEED"}
    assert by_name(statsd.alta()) == {
        "airflow.alta.run.status.succeed": [(tags, 1.0, "c")],
        "airflow.alta.run.cost": [(tags, 0.5, "c")],
        "airflow.alta.run.tokens": [(tags, 7.0, "c")],
        "airflow.alta.run.queries": [(tags, 3.0, "c")],  # no execution time reported: no timer sent
    }


# -- OpenLineage ---------------------------------------------------------------------------------------------


def lineage_events(tmp_path: Path, dag_id: str) -> list[dict]:
    """Run ``dag_id`` in a fresh ``airflow dags test`` process with OpenLineage's file transport; its events."""
    return lineage_run(tmp_path, dag_id)[0]


def lineage_run(tmp_path: Path, dag_id: str) -> tuple[list[dict], str]:
    """Run ``dag_id`` in a fresh ``airflow dags test`` process with OpenLineage's file transport; its events and
    its output (the task logs).

    A process of its own: the OpenLineage provider reads its configuration once per process.
    """
    log_file = tmp_path / "lineage.jsonl"
    env = os.environ.copy()
    env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(
        {"type": "file", "log_file_path": str(log_file), "append": True}
    )
    env["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "alta-tests"
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", dag_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Airflow 3.0's `dags test` prints its supervisor's debug messages, each secret it is asked to mask among them
    # ("MaskSecret(value=…)", see the README). Those lines are Airflow's own; nothing else may hold the key.
    output = (proc.stdout + proc.stderr).splitlines()
    assert SECRET_KEY not in "\n".join(line for line in output if "MaskSecret(value=" not in line)
    assert log_file.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    events = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    assert SECRET_KEY not in log_file.read_text()
    return events, plain("\n".join(output))


def task_events(events: list[dict], task_id: str, event_type: str) -> list[dict]:
    return [e for e in events if e["eventType"] == event_type and e["job"]["name"].endswith(f".{task_id}")]


def task_event(events: list[dict], task_id: str, event_type: str) -> dict:
    matching = task_events(events, task_id, event_type)
    assert len(matching) == 1, [(e["eventType"], e["job"]["name"]) for e in events]
    return matching[0]


@pytest.mark.cli
def test_openlineage_complete_event_carries_the_alta_run_facet(alta_emulator, tmp_path):
    alta_emulator.configure(duration=0.2)
    events = lineage_events(tmp_path, "t_sync")
    complete = task_event(events, "run", "COMPLETE")
    facet = complete["run"]["facets"]["alta_run"]
    run_id = facet["workflowRunId"]
    assert alta_emulator.invoke_count() == 1
    assert alta_emulator.run(run_id)["body"]["totalTokens"] == 1745  # the run the task paid for
    assert {k: v for k, v in facet.items() if not k.startswith("_")} == {
        "workflowName": "todayNews",
        "workflowVersion": "1.0.1",
        "workflowRunId": run_id,
        "status": "SUCCEED",
        "totalCost": pytest.approx(0.6928),
        "totalTokens": 1745,
        "executionTimeMs": 200,
    }
    assert facet["_schemaURL"] == SCHEMA_URL  # its JSON schema (tests/_airflow/test_lineage.py validates against it)
    assert "alta_run" not in task_event(events, "run", "START")["run"].get("facets", {})


@pytest.mark.cli
def test_openlineage_a_deferred_task_resumes_on_a_worker_and_completes_with_the_facet(alta_emulator, tmp_path):
    """Where OpenLineage is enabled, a deferred task finishes where its listener runs, and says why."""
    alta_emulator.configure(duration=1.0)
    events, output = lineage_run(tmp_path, "t_deferrable")
    (complete,) = task_events(events, "run", "COMPLETE")
    facet = complete["run"]["facets"]["alta_run"]
    assert (facet["status"], facet["totalTokens"], facet["_schemaURL"]) == ("SUCCEED", 1745, SCHEMA_URL)
    facet_validator().validate(facet)  # against the schema the package ships
    assert facet["totalCost"] == pytest.approx(0.6928)
    assert alta_emulator.run(facet["workflowRunId"])["queries"] >= 1  # the run the trigger waited for
    # START when the task began (again when it resumed, under the same OpenLineage run), one COMPLETE.
    starts = task_events(events, "run", "START")
    assert starts and {e["run"]["runId"] for e in starts} == {complete["run"]["runId"]}
    assert f"The task resumes on a worker after its run, not in the triggerer: {OPENLINEAGE_REASON}" in output
    assert f"then the task resumes on a worker: {OPENLINEAGE_REASON}" in output


@pytest.mark.cli
def test_openlineage_fail_event_of_a_failed_run_carries_the_facet(alta_emulator, tmp_path):
    alta_emulator.configure(duration=0.3, outcome="fail")
    events = lineage_events(tmp_path, "t_failed")
    facet = task_event(events, "run", "FAIL")["run"]["facets"]["alta_run"]
    assert facet["status"] == "FAILED"
    assert alta_emulator.run(facet["workflowRunId"])["body"]["status"] == "FAILED"


@pytest.mark.cli
def test_openlineage_sensor_reports_the_run_it_waited_for(alta_emulator, tmp_path):
    alta_emulator.configure(duration=0.5)
    events = lineage_events(tmp_path, "t_sensor_poke")
    facet = task_event(events, "wait", "COMPLETE")["run"]["facets"]["alta_run"]
    assert (facet["status"], facet["workflowName"], facet["totalTokens"]) == ("SUCCEED", "todayNews", 1745)
    # The operator that only started the run did not finish it: no facet of its own.
    assert "alta_run" not in task_event(events, "start", "COMPLETE")["run"]["facets"]


# -- The "Alta run" link -------------------------------------------------------------------------------------

TEMPLATE = "https://app.example/runs/{workflow_run_id}?view=cost"


def link_shown(result, task_id: str) -> str | None:
    """The link as the API server shows it (REST ``.../links``, the UI): from the serialized DAG's task.

    Airflow 3 asks the operator for the link in the worker when the task ends and stores the answer as an
    XCom; the API server's task, deserialized from the DAG's JSON, reads that XCom back. ``dag.test()``
    stores no serialized DAG on 3.0, so the DAG goes through Airflow's serialization here, as the DAG
    processor would write it.
    """
    try:  # Airflow 3.2+
        from airflow.serialization.serialized_objects import DagSerialization as Serializer
    except ImportError:  # Airflow 3.0, 3.1
        from airflow.serialization.serialized_objects import SerializedDAG as Serializer
    import alta_test_dags

    ti = result.ti(task_id)
    task = Serializer.from_dict(Serializer.to_dict(getattr(alta_test_dags, ti.dag_id))).get_task(task_id)
    assert "Alta run" in task.extra_links
    return task.get_extra_links(ti, "Alta run")


def test_link_to_the_run_from_the_connection_template(alta_emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_emulator.connection_uri(SECRET_KEY, run_url_template=TEMPLATE))
    alta_emulator.configure(duration=0.2)
    result = run_dag("t_sync")
    assert result.state == "success"
    run_id = result.xcom("run", "workflow_run_id")
    expected = f"https://app.example/runs/{run_id}?view=cost"
    assert result.xcom("run", "_link_AltaRunLink") == expected
    assert link_shown(result, "run") == expected


def test_link_of_a_failed_run_still_points_at_it(alta_emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_emulator.connection_uri(SECRET_KEY, run_url_template=TEMPLATE))
    alta_emulator.configure(duration=0.3, outcome="fail")
    result = run_dag("t_failed")
    assert result.state == "failed"
    run_id = result.xcom("run", "workflow_run_id")
    assert link_shown(result, "run") == f"https://app.example/runs/{run_id}?view=cost"


def test_no_link_without_a_template_or_a_run(alta_emulator, monkeypatch):
    alta_emulator.configure(duration=0.2)
    assert not link_shown(run_dag("t_sync"), "run")  # no run_url_template on the connection
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_emulator.connection_uri(SECRET_KEY, run_url_template=TEMPLATE))
    result = run_dag("t_input_schema")  # refused before the invoke: no run id
    assert result.state == "failed"
    assert not link_shown(result, "run")


def test_run_url_quotes_the_run_id():
    from airflow_provider_alta.links.alta import run_url

    assert run_url(TEMPLATE, "a/b c?d") == "https://app.example/runs/a%2Fb%20c%3Fd?view=cost"
    assert run_url(None, "run-1") == "" and run_url(TEMPLATE, None) == ""


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("https://app.example/runs/", "with {workflow_run_id} in it"),
        ("app.example/runs/{workflow_run_id}", "must be an http(s) URL"),
        (f"https://app.example/runs/{{workflow_run_id}}?key={SECRET_KEY}", "contains the API key"),
    ],
)
def test_a_bad_run_url_template_is_refused(template, message):
    from airflow_provider_alta._core.connection import AltaConnectionConfig
    from airflow_provider_alta.exceptions import AltaValidationError

    with pytest.raises(AltaValidationError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        AltaConnectionConfig.from_parts(
            conn_id="alta_default",
            host="https://altatech.ai",
            password=SECRET_KEY,
            extra={"run_url_template": template},
        )
    assert SECRET_KEY not in str(err.value)
