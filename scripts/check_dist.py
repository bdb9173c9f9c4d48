"""Check what ``make dist`` built: the files and entry points a provider needs are inside the wheel and sdist.

python scripts/check_dist.py dist
"""

from __future__ import annotations

import configparser
import sys
import tarfile
import zipfile
from pathlib import Path

#: Files the installed provider cannot work without.
WHEEL_FILES = (
    "airflow_provider_alta/py.typed",
    "airflow_provider_alta/schemas/invoke_request.json",
    # The OpenLineage facet's schema, which every alta_run facet's _schemaURL names.
    "airflow_provider_alta/schemas/alta_run_facet.json",
    "airflow_provider_alta/get_provider_info.py",
    "airflow_provider_alta/_airflow/version_compat/__init__.py",
)
#: Entry point groups and the names each must declare.
ENTRY_POINTS = {
    "apache_airflow_provider": "provider_info",
    "airflow.plugins": "alta_webhook_receiver",
    "pytest11": "alta_emulator",
    "console_scripts": "alta-emulator",
}
SDIST_FILES = ("pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE", "airflow_provider_alta/py.typed")
#: The license a wheel must carry (PEP 639: under its .dist-info/licenses/, named by License-File).
LICENSE = "LICENSE"


def check_wheel(path: Path) -> list[str]:
    problems = []
    with zipfile.ZipFile(path) as wheel:
        names = set(wheel.namelist())
        problems += [f"{path.name}: missing {name}" for name in WHEEL_FILES if name not in names]
        (entry_file,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        parser = configparser.ConfigParser()
        parser.read_string(wheel.read(entry_file).decode())
        for group, name in ENTRY_POINTS.items():
            if not parser.has_option(group, name):
                problems.append(f"{path.name}: entry point {group}:{name} missing")
        leaked = [n for n in names if n.startswith(("tests/", "bench/", "dags_examples/"))]
        problems += [f"{path.name}: ships {n}" for n in leaked]
        metadata = wheel.read(entry_file.replace("entry_points.txt", "METADATA"))
        problems += check_wheel_license(path.name, names, metadata)
    return problems


def check_wheel_license(wheel_name: str, names: set[str], metadata: bytes) -> list[str]:
    """The license text travels with every installed copy: a wheel without it cannot be redistributed."""
    (dist_info,) = {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
    problems = []
    if f"{dist_info}/licenses/{LICENSE}" not in names:
        problems.append(f"{wheel_name}: missing {dist_info}/licenses/{LICENSE}")
    if f"License-File: {LICENSE}" not in metadata.decode().splitlines():
        problems.append(f"{wheel_name}: METADATA names no License-File: {LICENSE}")
    return problems


def check_sdist(path: Path) -> list[str]:
    with tarfile.open(path) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    return [f"{path.name}: missing {name}" for name in SDIST_FILES if name not in names]


def main(folder: str) -> int:
    dist = Path(folder)
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    problems = [] if len(wheels) == len(sdists) == 1 else [f"expected one wheel and one sdist in {dist}"]
    for wheel in wheels:
        problems += check_wheel(wheel)
    for sdist in sdists:
        problems += check_sdist(sdist)
    for problem in problems:
        print("dist check:", problem)
    if not problems:
        print(f"dist check: {', '.join(p.name for p in [*wheels, *sdists])} hold every file and entry point")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "dist"))
