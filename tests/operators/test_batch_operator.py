"""AltaBatchOperator and ``@task.alta_batch`` in real DAG runs (dag.test) against the emulator."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.operators.batch import AltaBatchOperator
from tests.conftest import DAGS, SECRET_KEY
from tests.dag_runner import plain

pytestmark = pytest.mark.usefixtures("airflow_db", "alta_conn")


def batch_dags():
    if str(DAGS) not in sys.path:
        sys.path.insert(0, str(DAGS))
    import alta_batch_dags

    return alta_batch_dags


def rows(folder: Path) -> list[dict]:
    return [json.loads(line) for part in sorted(folder.glob("part-*.jsonl")) for line in part.read_text().splitlines()]


def test_batches_from_an_upstream_task_a_csv_file_and_a_function(alta_emulator, tmp_path, monkeypatch, capsys):
    alta_emulator.configure(api_key=SECRET_KEY, duration=0.2, input_schema=None)
    table = tmp_path / "in.csv"
    table.write_text("id,topic\n" + "".join(f"c{n},Row {n}\n" for n in range(10)))
    monkeypatch.setenv("AIRFLOW_VAR_ALTA_BATCH_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("AIRFLOW_VAR_ALTA_BATCH_IN", f"file://{table}")
    active_asset(batch_dags().ENRICHED)
    dag_run = batch_dags().t_batch.test()
    out = plain(capsys.readouterr().out)
    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    assert {task_id: ti.state for task_id, ti in tis.items()} == dict.fromkeys(
        ("tickets", "from_xcom", "loaded", "from_file", "from_function"), "success"
    )
    manifest = tis["from_xcom"].xcom_pull(task_ids="from_xcom")
    assert (manifest["total"], manifest["succeeded"], manifest["failed"]) == (12, 12, 0)
    assert manifest["output_path"] == f"file://{tmp_path}/out/from_xcom" and len(manifest["results"]) == 1
    assert tis["loaded"].xcom_pull(task_ids="loaded") == 12
    from_file = tis["from_file"].xcom_pull(task_ids="from_file")
    assert from_file["total"] == 10 and len(from_file["results"]) == 3  # chunks of 4 rows
    assert sorted(r["key"] for r in rows(tmp_path / "out" / "from_file")) == [f"c{n}" for n in range(10)]
    decorated = rows(tmp_path / "out" / "decorated")
    assert sorted(r["key"] for r in decorated) == [0, 1, 2, 3, 4]
    assert decorated[0]["output"]["news"][0]["title"].startswith("Markets ")
    assert alta_emulator.stats()["runs"] == 12 + 10 + 5
    assert "Alta batch ended: 12/12 items done (100.0 %): 12 succeeded" in out
    assert SECRET_KEY not in out
    # The results folder is the task's Asset outlet: its event is what a downstream DAG is scheduled on.
    events = asset_events("alta_batch_enriched")
    assert [(event["dag_id"], event["task_id"]) for event in events] == [("t_batch", "from_file")]


def active_asset(asset) -> None:
    """Register ``asset`` as Airflow's DAG processor does on parsing its DAG (``dag.test()`` on Airflow 3.0 does
    not, and a task with an unregistered outlet fails there before it runs)."""
    from airflow.models.asset import AssetActive, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        if session.scalar(select(AssetModel.id).where(AssetModel.name == asset.name)) is None:
            session.add(AssetModel(name=asset.name, uri=asset.uri, group=asset.group))
        if session.scalar(select(AssetActive.name).where(AssetActive.name == asset.name)) is None:
            session.add(AssetActive(name=asset.name, uri=asset.uri))


def asset_events(name: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        found = session.execute(
            select(AssetEvent.source_dag_id, AssetEvent.source_task_id)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == name)
        ).all()
    return [{"dag_id": dag_id, "task_id": task_id} for dag_id, task_id in found]


def test_too_many_failed_items_fail_the_task_at_once(alta_emulator, tmp_path, monkeypatch, capsys):
    alta_emulator.configure(api_key=SECRET_KEY, duration=0.3)
    monkeypatch.setenv("AIRFLOW_VAR_ALTA_BATCH_OUT", str(tmp_path))
    dag_run = batch_dags().refused.test()
    out = plain(capsys.readouterr().out)
    (ti,) = dag_run.get_task_instances()
    assert (ti.state, ti.try_number) == ("failed", 1)  # a retry would find the same rows
    assert "AltaBatchFailure" in out and "2 of 4 items failed" in out and "rerun_failed=True" in out
    found = rows(tmp_path / "refused")
    assert sorted(r["status"] for r in found) == ["REFUSED", "REFUSED", "SUCCEED"]  # the last was not started
    assert "INVALID_INPUT" in found[1]["error"] + found[2]["error"]


def test_a_batch_stopped_by_an_outage_is_retried_and_reattaches(alta_emulator, tmp_path, monkeypatch, capsys):
    alta_emulator.configure(api_key=SECRET_KEY, duration=0.3)
    monkeypatch.setenv("AIRFLOW_VAR_ALTA_BATCH_OUT", str(tmp_path))
    # A connection whose requests give up after one second of failures: the batch stops, Airflow retries it.
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTA_FLAKY", alta_emulator.connection_uri(SECRET_KEY, retry_backoff=0.1, retry_max_wait=1)
    )
    alta_emulator.inject("query", "status", status=502, count=12)
    dag_run = batch_dags().flaky.test()
    out = plain(capsys.readouterr().out)
    (ti,) = dag_run.get_task_instances()
    assert (ti.state, ti.try_number) == ("success", 2)
    assert "AltaServerError" in out and "runs of earlier tries to reattach to" in out
    found = rows(tmp_path / "flaky")
    assert sorted(r["key"] for r in found) == list(range(6)) and {r["status"] for r in found} == {"SUCCEED"}
    assert alta_emulator.stats()["runs"] == 6  # the retry reattached to the first try's runs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "pass the items either as items="),
        ({"items": [], "input_path": "x.jsonl"}, "not both and not neither"),
        ({"items": [], "max_active_runs": 0}, "max_active_runs must be a whole number >= 1"),
        ({"items": [], "max_failed_items": 2.5}, "max_failed_items as a fraction"),
        ({"input_path": "data.parquet"}, "cannot tell the format of input_path"),
        ({"items": [], "output_path": 42}, "output_path must be an ObjectStoragePath or a URI string"),
        ({"items": [], "poll_min_interval": -1}, "poll_min_interval"),
        ({"items": [], "rerun_failed": "yes"}, "rerun_failed must be True or False"),
    ],
)
def test_arguments_are_checked_when_the_dag_is_parsed(kwargs, message):
    with pytest.raises(AltaValidationError, match=message):
        AltaBatchOperator(task_id="t", **{"output_path": "file:///tmp/out", **kwargs})


def test_registered_as_task_alta_batch():
    from airflow.sdk import task

    from airflow_provider_alta.decorators.batch import alta_batch_task

    assert task.alta_batch is alta_batch_task


@pytest.mark.parametrize(
    ("uri", "namespace", "name"),
    [
        ("file:///data/in.csv", "file", "/data/in.csv"),
        ("s3://lake/tickets/2026-01-01", "s3://lake", "tickets/2026-01-01"),
        ("gs://bucket/out", "gs://bucket", "out"),
    ],
)
def test_openlineage_gets_the_input_file_and_the_output_folder(uri, namespace, name):
    from airflow_provider_alta._batch.lineage import batch_lineage, dataset_name

    assert dataset_name(uri) == (namespace, name)
    lineage = batch_lineage(None, uri)
    assert lineage.inputs == [] and [(d.namespace, d.name) for d in lineage.outputs] == [(namespace, name)]


def test_the_task_reports_what_it_read_and_wrote(alta_emulator, tmp_path, monkeypatch):
    alta_emulator.configure(api_key=SECRET_KEY, duration=0.1, input_schema=None)
    table = tmp_path / "in.csv"
    table.write_text("id,topic\n1,One\n")
    monkeypatch.setenv("AIRFLOW_VAR_ALTA_BATCH_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("AIRFLOW_VAR_ALTA_BATCH_IN", f"file://{table}")
    task = batch_dags().t_batch.get_task("from_file")
    assert task.get_openlineage_facets_on_complete(None).outputs == []  # not run yet: nothing to tell
    task.input_path, task.output_path = f"file://{table}", f"file://{tmp_path}/out"
    task.execute({})
    lineage = task.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("file", str(table))]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("file", f"{tmp_path}/out")]
