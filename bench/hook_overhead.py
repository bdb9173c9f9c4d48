"""Sync hook overhead: AltaHook.get_run against the same request through a bare requests.Session.

Both run against the local emulator (instant answers) in the same process,
interleaved in rounds so machine noise hits both alike. Target ratio <= 1.2.
"""

from __future__ import annotations

import json
import os
import time


def main(calls: int = 1000, rounds: int = 5) -> list[str]:
    import requests

    from airflow_provider_alta.hooks.alta import AltaHook
    from airflow_provider_alta.testing.client import EmulatorClient
    from airflow_provider_alta.testing.emulator import EmulatorThread
    from airflow_provider_alta.testing.workflows import DEFAULT_API_KEY

    with EmulatorThread() as server:
        client = EmulatorClient(server.url)
        client.configure(duration=0.0)
        os.environ["AIRFLOW_CONN_ALTA_DEFAULT"] = client.connection_uri()
        hook = AltaHook()
        run_id = hook.invoke_workflow({"topic": "bench"}).workflow_run_id
        session = requests.Session()
        url = server.url + "/v1/workflow/query/result"
        headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}", "Content-Type": "application/json"}
        body = json.dumps({"workflowRunId": run_id})

        def bare() -> None:
            response = session.post(url, data=body, headers=headers, timeout=(10, 60))
            response.raise_for_status()
            response.json()

        def ours() -> None:
            hook.get_run(run_id)

        totals = {"bare": 0.0, "ours": 0.0}
        per_round = calls // rounds
        for _ in range(rounds):
            for name, fn in (("bare", bare), ("ours", ours)):
                start = time.perf_counter()
                for _ in range(per_round):
                    fn()
                totals[name] += time.perf_counter() - start
    ratio = totals["ours"] / totals["bare"]
    lines = [
        "## Sync hook overhead",
        "",
        f"{calls} sequential get_run calls: AltaHook {totals['ours'] / calls * 1e3:.2f} ms/call, "
        f"bare requests.Session {totals['bare'] / calls * 1e3:.2f} ms/call, ratio {ratio:.2f} "
        f"(target <= 1.2: {'met' if ratio <= 1.2 else 'MISSED'})",
    ]
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
