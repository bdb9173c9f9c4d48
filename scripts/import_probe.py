"""What importing the operator and the sensor costs a DAG file's parse, beside the rest of the package.

Run in a fresh interpreter: ``python scripts/import_probe.py [ROUNDS]`` prints one JSON object. After
``airflow.sdk`` (which every DAG file imports anyway), it imports the parse path (the operator and the sensor)
and then the rest of the package (the Airflow-free core, the trigger, the finish; not the hooks, the plugins
or the testing tools, which pull in HTTP clients and web frameworks), twice per round: from source, as on a
machine that keeps no bytecode, then from the bytecode the first import wrote (to a private cache directory).
Between rounds the package's modules are dropped from ``sys.modules``. Medians in milliseconds; the modules
of the parse path, and the other modules it pulls in, are listed, so a test can hold them to a list.
"""

from __future__ import annotations

import json
import pkgutil
import statistics
import sys
import tempfile
import time

import airflow.sdk  # noqa: F401  (a DAG file's first import: not part of what is measured)

PACKAGE = "airflow_provider_alta"
PARSE_PATH = (f"{PACKAGE}.operators.alta", f"{PACKAGE}.sensors.alta")
NOT_MEASURED = tuple(f"{PACKAGE}.{name}" for name in ("plugins", "testing", "hooks"))


def _timed(names: list[str] | tuple[str, ...]) -> float:
    started = time.perf_counter()
    for name in names:
        __import__(name)
    return (time.perf_counter() - started) * 1000


def _drop_package() -> None:
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def _rest() -> list[str]:
    import airflow_provider_alta

    return [
        m.name
        for m in pkgutil.walk_packages(airflow_provider_alta.__path__, PACKAGE + ".")
        if not m.name.startswith(NOT_MEASURED) and m.name not in sys.modules
    ]


def measure(rounds: int) -> dict[str, object]:
    figures: dict[str, list[float]] = {"parse_source": [], "rest_source": [], "parse_bytecode": [], "rest_bytecode": []}
    parse_modules: list[str] = []
    # A first import outside the rounds loads the Airflow modules the parse path needs (measured by
    # bench/import_cost.py in fresh interpreters); the rounds measure the package's own modules.
    before = set(sys.modules)
    _timed(PARSE_PATH)
    pulled_in = sorted(m for m in set(sys.modules) - before if not m.startswith(PACKAGE))
    for _ in range(rounds):
        cache = tempfile.mkdtemp(prefix="alta-import-probe-")
        sys.pycache_prefix = cache  # read and written there only: an empty cache is "no bytecode"
        for mode in ("source", "bytecode"):
            sys.dont_write_bytecode = mode == "bytecode"
            _drop_package()
            __import__(PACKAGE)
            before = set(sys.modules)
            figures[f"parse_{mode}"].append(_timed(PARSE_PATH))
            parse_modules = sorted(m for m in set(sys.modules) - before if m.startswith(PACKAGE))
            figures[f"rest_{mode}"].append(_timed(_rest()))
    result: dict[str, object] = {name: statistics.median(values) for name, values in figures.items()}
    result["parse_modules"] = parse_modules
    result["other_modules"] = pulled_in
    return result


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 5)))
