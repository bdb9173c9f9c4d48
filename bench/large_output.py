"""Peak memory of a run with a 20 MB output: the provider's paths against a bare client, side by side.

The emulator serves the output from its own process. Each path runs in a fresh interpreter, which
reports two peaks of its RSS above what it held once everything was imported (Linux: the peak is read
from ``VmHWM`` and reset through ``/proc/self/clear_refs`` between the two phases):

* **read**: the answer read, parsed and checked, up to the output handed to Airflow;

  - bare client: ``requests`` + ``response.json()``;
  - sync: ``AltaHook.invoke_workflow`` + ``finish_run`` (the checks before the push);
  - sync-json: as sync, with ``output_format="json"`` (the output handed over as JSON text);
  - deferred: the trigger's query (``AltaAsyncHook.get_run``, aiohttp) and its event body, then the task's
    ``run_from_event`` + ``finish_run``. What Airflow itself does with the event (storing it, logging it,
    ``next_kwargs``) is not counted here;

* **push**: the JSON text an XCom push of the output writes, while the output is still held.

``--before REF`` runs the provider's paths a second time with the package as it was at the git revision
``REF``, so a change is measured before and after in one run, against the same emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

MB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent
#: Two shapes of the same size: many small objects (Python's costliest), and a few long texts.
SHAPES = {
    "rows": lambda size: {
        "rows": [{"id": i, "text": f"row {i} " + "x" * 160, "score": i / 7} for i in range(size // 200)]
    },
    "texts": lambda size: {
        "documents": [{"title": f"doc {i}", "body": "lorem ipsum " * (size // 240)} for i in range(20)]
    },
}
MODES = ("baseline", "sync", "deferred", "sync-json")


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> None:
    """Start a new peak: from now on ``VmHWM`` is the highest RSS since this call."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def _measure(mode: str, url: str, key: str) -> None:
    """One path in this (fresh) process; prints each phase's peak RSS above the post-import level, in bytes."""
    import requests

    import airflow_provider_alta
    from airflow_provider_alta._airflow.finishing import event_body, finish_run, run_from_event
    from airflow_provider_alta._core.finish_plan import FinishContract
    from airflow_provider_alta.hooks.alta import AltaAsyncHook, AltaHook

    os.environ["AIRFLOW_CONN_ALTA_DEFAULT"] = json.dumps({"conn_type": "alta", "host": url, "password": key})
    hook = AltaHook()
    hook.get_conn()

    class Ti:
        def xcom_push(self, key: str, value: object) -> None:
            pass

    class Log:
        def info(self, *args: object) -> None:
            pass

        warning = info

    async def trigger_query(run_id: str | None) -> Any:
        """The trigger's side: query the run, build the event's body (inside the loop, as the trigger does)."""
        async with AltaAsyncHook() as async_hook:
            return event_body(await async_hook.get_run(run_id))[0] if run_id else None

    if mode == "deferred":  # the async hook's imports (aiohttp), before the level is taken
        asyncio.run(trigger_query(None))
    started = _status_kb("VmRSS")
    _reset_peak()
    output: Any
    if mode == "baseline":
        answer = requests.post(
            url + "/v1/workflow/invoke",
            json={"input": {"topic": "bench"}},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        ).json()
        output = answer["output"]
    elif mode in ("sync", "sync-json"):
        run = hook.invoke_workflow({"topic": "bench"})
        output_format = "json" if mode == "sync-json" else "value"
        contract = FinishContract(push=True, output_format=output_format)
        output = finish_run(run, contract, context={"ti": Ti()}, log=Log())
        del run
    else:
        run_id = hook.invoke_workflow({"topic": "bench"}, is_async=True).workflow_run_id
        time.sleep(0.2)
        body = asyncio.run(trigger_query(run_id))
        event = {"status": "success", "workflow_run_id": run_id, "message": "", "run": body}
        del body
        run = run_from_event(event, run_id, fetch=hook.get_run)
        output = finish_run(run, FinishContract(push=True), context={"ti": Ti()}, log=Log())
        del run, event
    read = _status_kb("VmHWM") - started
    _reset_peak()
    pushed = json.dumps(output)  # what an XCom push of the output writes
    push = _status_kb("VmHWM") - started
    package = str(Path(airflow_provider_alta.__file__).parent.parent)
    print(json.dumps({"read": read, "push": push, "pushed": len(pushed), "package": package}))


def _package_at(revision: str, into: Path) -> Path:
    """The provider's package as it was at ``revision``, extracted under ``into`` (for ``PYTHONPATH``)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision, "airflow_provider_alta"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _run(mode: str, url: str, shape: str, pythonpath: Path | None) -> dict[str, int]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, __file__, "--measure", mode, url, shape],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    expected = pythonpath or ROOT
    if Path(figures.pop("package")) != expected:
        raise RuntimeError(f"the {mode} path imported the provider from outside {expected}")
    return figures


def _cell(figure: dict[str, int] | None, phase: str, payload: int) -> str:
    if figure is None:
        return "–"
    return f"{figure[phase] / MB:.0f} MB ({figure[phase] / payload:.1f}×)"


def main(size: int = 20 * MB, before: str | None = None) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        old = _package_at(before, Path(tmp) / "before") if before else None
        config = Path(tmp) / "workflows.json"
        workflows = {
            shape: {"duration": 0.0, "input_schema": None, "output": make(size)} for shape, make in SHAPES.items()
        }
        config.write_text(json.dumps({"workflows": workflows}))
        port_file = Path(tmp) / "port"
        serve = [sys.executable, "-m", "airflow_provider_alta.testing.emulator", "--config", str(config)]
        emulator = subprocess.Popen([*serve, "--port", "0", "--port-file", str(port_file)], stdout=subprocess.DEVNULL)
        try:
            for _ in range(200):
                if port_file.exists() and port_file.read_text():
                    break
                time.sleep(0.05)
            url = f"http://127.0.0.1:{port_file.read_text()}"
            figures: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
            for shape in SHAPES:
                for mode in MODES:
                    by_code = figures.setdefault(shape, {}).setdefault(mode, {})
                    by_code["after"] = _run(mode, url, shape, None)
                    if old is not None and mode != "baseline":
                        by_code["before"] = _run(mode, url, shape, old)
        finally:
            emulator.terminate()
            emulator.wait(10)
    title = f"before = {before}, after = the working tree" if before else "the working tree"
    lines = [
        f"## Large output (peak RSS above the imports, fresh interpreter per path; {title})",
        "",
        "| output | path | read, before | read, after | push, before | push, after |",
        "|---|---|---|---|---|---|",
    ]
    for shape, by_mode in figures.items():
        payload = by_mode["baseline"]["after"]["pushed"]
        for mode, by_code in by_mode.items():
            name = {"baseline": "bare client", "sync-json": 'sync, `output_format="json"`'}.get(mode, mode)
            lines.append(
                f"| {shape}, {payload / MB:.1f} MB | {name} "
                f"| {_cell(by_code.get('before'), 'read', payload)} | {_cell(by_code['after'], 'read', payload)} "
                f"| {_cell(by_code.get('before'), 'push', payload)} | {_cell(by_code['after'], 'push', payload)} |"
            )
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        _measure(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--before", metavar="REF", help="also measure the package as it was at this git revision")
        main(before=parser.parse_args().before)
