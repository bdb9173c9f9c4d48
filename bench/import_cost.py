"""Parse-time cost: what importing our operator + sensor adds on top of ``airflow.sdk``.

Each measurement is a fresh interpreter that imports ``airflow.sdk`` first,
then times the import under test (the Airflow modules it pulls in included);
median of N runs, twice: from source (a cache directory of its own, kept
empty: a machine that keeps no bytecode, as with ``PYTHONDONTWRITEBYTECODE``),
and from bytecode (the same directory, filled by a first run). The HTTP
provider's ``HttpOperator`` + ``HttpSensor`` are measured the same way, side
by side, when that provider is installed.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile

PROBE = """
import json, sys, time
import airflow.sdk
sys.pycache_prefix = {cache!r}
sys.dont_write_bytecode = {read_only}
before = set(sys.modules)
t = time.perf_counter()
{imports}
elapsed = time.perf_counter() - t
added = set(sys.modules) - before
clients = {{m.split('.')[0] for m in added}} & {{'aiohttp', 'requests'}}
print(json.dumps({{"ms": elapsed * 1000, "http_clients": sorted(clients)}}))
"""

CANDIDATES = {
    "airflow-provider-alta operator + sensor": (
        "airflow_provider_alta",
        "import airflow_provider_alta.operators.alta, airflow_provider_alta.sensors.alta",
    ),
    "HTTP provider HttpOperator + HttpSensor": (
        "airflow.providers.http",
        "import airflow.providers.http.operators.http, airflow.providers.http.sensors.http",
    ),
}


def measure(imports: str, runs: int, *, bytecode: bool) -> tuple[float, list[str]]:
    samples, clients = [], []
    cache = tempfile.mkdtemp(prefix="alta-import-cost-")
    if bytecode:  # one run that writes the bytecode the measured runs read
        probe(imports, cache, read_only=False)
    for _ in range(runs):
        out = probe(imports, cache, read_only=True)
        result = json.loads(out.strip().splitlines()[-1])
        samples.append(result["ms"])
        clients = result["http_clients"]
    return statistics.median(samples), clients


def probe(imports: str, cache: str, *, read_only: bool) -> str:
    code = PROBE.format(imports=imports, cache=cache, read_only=read_only)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def main(runs: int = 10) -> list[str]:
    lines = [
        f"## Parse-time import cost (median of {runs} fresh interpreters, airflow.sdk already imported)",
        "",
        "| modules | no bytecode, ms | bytecode, ms | HTTP clients pulled in |",
        "|---|---|---|---|",
    ]
    for name, (package, imports) in CANDIDATES.items():
        if importlib.util.find_spec(package.split(".")[0]) is None or (
            package.startswith("airflow.providers") and importlib.util.find_spec(package) is None
        ):
            lines.append(f"| {name} | not installed | | |")
            continue
        source_ms, clients = measure(imports, runs, bytecode=False)
        bytecode_ms, _ = measure(imports, runs, bytecode=True)
        lines.append(f"| {name} | {source_ms:.1f} | {bytecode_ms:.1f} | {', '.join(clients) or 'none'} |")
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
