"""Fan one Alta workflow out over many inputs, within the API key's quota.

Dynamic task mapping creates one task per topic. They all run in the Airflow
pool ``alta_api``, whose slot count caps how many runs are in flight at once:
size it to the plan (a free-tier key allows 100 requests a day). Create it
once with ``airflow pools set alta_api 2 "Alta API quota"``.

``summary`` collects every mapped output into one list.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator

TOPICS = ["Markets", "Science", "Sports", "Health", "Climate"]

with DAG(
    "alta_mapped_fanout",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["alta", "example"],
) as dag:
    runs = AltaRunWorkflowOperator.partial(task_id="news_per_topic", pool="alta_api").expand(
        input=[{"topic": topic} for topic in TOPICS]
    )

    @task(multiple_outputs=False)  # one XCom holding every count, not one per topic
    def summary(outputs: list[dict]) -> dict[str, int]:
        counts = {output["news"][0]["title"].split(":")[0]: len(output["news"]) for output in outputs}
        print(counts)
        return counts

    summary(runs.output)
