"""The version matrix: the built wheel, installed into one clean virtualenv per supported Airflow, tested there.

For each Airflow release this makes ``.matrix/airflow-<version>/venv`` with
that Airflow and the provider's wheel (never an editable install), copies the
test suite into ``.matrix/airflow-<version>/work`` (without the package, so
every ``import airflow_provider_alta`` resolves to site-packages), and runs
the unit and ``dag.test()`` suites, plus the command-line and end-to-end
suites where asked (the oldest and newest release by default).
Airflow's constraint files are not used: each environment is resolved with
the dependencies that existed when that Airflow was released
(``uv pip install --exclude-newer``), plus the few pins listed below.

    python scripts/matrix.py                      # every version, e2e on the oldest and newest
    python scripts/matrix.py --versions 3.0.6 --e2e none
    python scripts/matrix.py --versions 3.0.6 --e2e none --distributed 3.0.6
    python scripts/matrix.py --versions none --e2e none   # only the oldest and newest Python (3.10, 3.12)
    python scripts/matrix.py --units 3.0.6,3.1.8,3.2.2    # CI: `make test` just ran the unit tier on 3.3.2

Every suite of every release goes into one queue, longest first, and ``--jobs``
of them run at once: each mostly waits (on the emulator's runs, on Airflow's
loops), so a 2-core machine keeps two busy. The e2e suites and the production
shape run alone (see ``ALONE``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MATRIX = ROOT / ".matrix"
#: What the tests need beside themselves: example DAGs, the demo script, the pytest configuration, the README.
COPIED = ("tests", "dags_examples", "scripts", "pyproject.toml", "README.md")


@dataclass(frozen=True)
class Release:
    version: str
    #: Resolve dependencies as of this date (``None``: as of today).
    exclude_newer: str | None
    #: Pins on top of the date, where the date alone picks a broken combination.
    pins: tuple[str, ...] = ()
    #: About how long its unit suite takes here (minutes): with ``--jobs``, the longest start first.
    unit_minutes: float = 10.0
    #: Another Python than the one running this script (``"3.10"``): the oldest and newest the package claims.
    python: str | None = None

    @property
    def name(self) -> str:
        return self.version if self.python is None else f"{self.version}-py{self.python}"

    def interpreter(self) -> str:
        """This release's Python: this script's, or the named version's (on the PATH, or installed by pyenv)."""
        if self.python is None:
            return sys.executable
        candidates = [shutil.which(f"python{self.python}") or ""]
        pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
        candidates += sorted(str(p) for p in pyenv.glob(f"versions/{self.python}.*/bin/python{self.python}"))
        for candidate in candidates:
            if candidate and subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
                return candidate
        raise SystemExit(f"Python {self.python} is not installed: the matrix tests the oldest and newest Python")


RELEASES = (
    # Airflow 3.0 draws a provider's connection form fields only with the FAB provider (flask-appbuilder, wtforms).
    Release("3.0.6", "2025-08-30", ("apache-airflow-providers-fab",), unit_minutes=3.3),
    Release("3.1.8", "2026-03-20", unit_minutes=3.5),
    Release("3.2.2", "2026-05-30", ("fastapi<0.137", "svcs<26"), unit_minutes=3.5),
    Release("3.3.2", None, unit_minutes=3.0),
)
DEFAULT_E2E = (RELEASES[0].version, RELEASES[-1].version)
#: The oldest and newest Python the package's classifiers claim, with the newest Airflow, running the suites that
#: touch what differs between Pythons (the core, the hooks, the packaging, the operator under dag.test()).
PYTHONS = tuple(Release(RELEASES[-1].version, None, python=python) for python in ("3.10", "3.12"))


@dataclass
class Outcome:
    version: str
    suites: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    install_s: float = 0.0
    test_s: float = 0.0
    returncode: int = 1

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0 and self.passed > 0


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    print("+", " ".join(args), flush=True)
    return subprocess.run(args, check=True, text=True, **kwargs)  # type: ignore[call-overload]


def build(uv: str) -> Path:
    dist = MATRIX / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    run([uv, "build", "--wheel", "--out-dir", str(dist), str(ROOT)])
    (wheel,) = dist.glob("*.whl")
    return wheel


def install(uv: str, release: Release, wheel: Path) -> Path:
    home = MATRIX / f"airflow-{release.name}"
    venv = home / "venv"
    shutil.rmtree(home, ignore_errors=True)
    run([uv, "venv", "--quiet", "--python", release.interpreter(), str(venv)])
    python = venv / "bin" / "python"
    # Bytecode compiled once here: every Airflow process the tests start would otherwise compile Airflow again.
    args = [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python)]
    if release.exclude_newer:
        # ruff is a tool the tests run, not a library Airflow resolves against: any release that knows the rules.
        tomorrow = (datetime.date.today() + datetime.timedelta(days=1)).isoformat()
        args += ["--exclude-newer", release.exclude_newer, "--exclude-newer-package", f"ruff={tomorrow}"]
    run([*args, f"apache-airflow=={release.version}", f"airflow-provider-alta[test] @ {wheel.as_uri()}", *release.pins])
    return python


def timed_install(uv: str, release: Release, wheel: Path) -> tuple[Path, float]:
    started = time.monotonic()
    python = install(uv, release, wheel)
    return python, time.monotonic() - started


def copy_tests(release: Release) -> Path:
    work = MATRIX / f"airflow-{release.name}" / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, work / name)
    return work


def summary_counts(output: str) -> dict[str, int]:
    last = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    counts = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    if last:
        for number, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", last[-1]):
            counts["error" if word.startswith("error") else word] += int(number)
    return counts


#: The pytest marker expression of each suite, how the summary names it, and how pytest-xdist spreads it: over
#: every core (independent tests), one module per worker (the e2e modules each drive a stack of their own, their
#: tests one at a time), or not at all (the production shape drives one stack that takes the whole machine).
SUITES = {
    "unit": ("not cli and not e2e and not distributed", "unit, dag.test", ["-n", "auto", "--dist", "worksteal"]),
    "cli": ("cli", "command line", ["-n", "auto", "--dist", "worksteal"]),
    "e2e": ("e2e", "end to end", ["-n", "2", "--dist", "loadfile"]),
    "distributed": ("distributed", "production shape", []),
    "python": (
        "not cli and not e2e and not distributed",
        "Python",
        [
            "-n",
            "2",
            "--dist",
            "worksteal",
            "tests/_core",
            "tests/test_imports.py",
            "tests/test_layout.py",
            "tests/test_packaging.py",
            "tests/hooks/test_alta_hook.py",
            "tests/operators/test_operator.py",
        ],
    ),
}
#: About how long each suite other than the unit suite takes on a 2-core machine (minutes): the queue's order.
SUITE_MINUTES = {"cli": 5.0, "e2e": 6.5, "distributed": 9.0, "python": 1.6}
#: Nothing runs beside these: the production shape takes the whole machine, and an e2e suite (already two Airflow
#: stacks side by side) needs a scheduler that is not slowed by a busy machine, which can fail a task whose trigger
#: fires moments after it deferred, on a stale executor event (apache/airflow#71580): it did so beside two
#: command-line suites, and on 3.0.6 beside one unit suite.
ALONE = {"distributed", "e2e"}


@dataclass(frozen=True)
class Job:
    """One suite of one release's environment."""

    release: Release
    suite: str

    @property
    def minutes(self) -> float:
        return self.release.unit_minutes if self.suite == "unit" else SUITE_MINUTES[self.suite]

    def may_start_beside(self, running: list[Job]) -> bool:
        if not running:
            return True
        return self.suite not in ALONE and not any(job.suite in ALONE for job in running)


def run_queue(jobs: list[Job], slots: int, run_one: Any) -> dict[Job, Outcome]:
    """Every job, ``slots`` at a time, the longest first among those that may start beside the running ones."""
    pending = sorted(jobs, key=lambda job: -job.minutes)
    running: dict[Future[Outcome], Job] = {}
    finished: dict[Job, Outcome] = {}
    with ThreadPoolExecutor(max_workers=max(1, slots)) as pool:
        while pending or running:
            for job in list(pending):
                if len(running) >= max(1, slots):
                    break
                if job.may_start_beside(list(running.values())):
                    pending.remove(job)
                    running[pool.submit(run_one, job)] = job
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                finished[running.pop(future)] = future.result()
    return finished


def test(python: Path, work: Path, release: Release, suite: str) -> Outcome:
    """One pytest session: the unit and ``dag.test()`` suites, the command line, end to end, or production shape."""
    markers, title, spread = SUITES[suite]
    outcome = Outcome(release.name, title if release.python is None else f"{title} {release.python}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ALTA_"))}
    env["ALTA_TESTS_EXPECT_INSTALLED"] = "1"
    if os.environ.get("ALTA_TESTS_REQUIRE_SERVICES"):
        env["ALTA_TESTS_REQUIRE_SERVICES"] = os.environ["ALTA_TESTS_REQUIRE_SERVICES"]
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    args = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", markers, *spread]
    log = work.parent / ("pytest.log" if suite == "unit" else f"pytest-{suite}.log")
    started = time.monotonic()
    print("+", " ".join(args), f"(in {work}, log {log})", flush=True)
    tag = release.name if suite == "unit" else f"{release.name} {suite}"
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            sys.stdout.write(f"[{tag}] {line}")
        outcome.returncode = proc.wait()
    outcome.test_s = time.monotonic() - started
    counts = summary_counts(log.read_text())
    outcome.passed, outcome.skipped = counts["passed"], counts["skipped"]
    outcome.failed = counts["failed"] + counts["error"]
    return outcome


def table(outcomes: list[Outcome]) -> str:
    lines = [
        "| Airflow | suites | passed | failed | skipped | install | tests | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        lines.append(
            f"| {o.version} | {o.suites} | {o.passed} | {o.failed} | {o.skipped} "
            f"| {f'{o.install_s:.0f} s' if o.install_s else '-'} "
            f"| {o.test_s:.0f} s | {'green' if o.ok else 'RED'} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", default=",".join(r.version for r in RELEASES), help="comma-separated")
    parser.add_argument(
        "--e2e", default=",".join(DEFAULT_E2E), help="versions that also run the command-line and e2e suites, or 'none'"
    )
    parser.add_argument("--distributed", default="none", help="versions that also run the production-shape suite")
    parser.add_argument(
        "--units", default="all", help="versions whose unit and dag.test() suites run ('all' or comma-separated)"
    )
    parser.add_argument(
        "--pythons", default=",".join(r.python or "" for r in PYTHONS), help="other Pythons to test, or 'none'"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="suites run at once (the e2e and production-shape suites alone)"
    )
    parser.add_argument("--uv", default=shutil.which("uv") or str(Path(sys.executable).parent / "uv"))
    options = parser.parse_args()
    wanted = [] if options.versions == "none" else options.versions.split(",")
    releases = [r for r in RELEASES if r.version in wanted]
    unknown = set(wanted) - {r.version for r in releases}
    if unknown:
        parser.error(f"unsupported versions {sorted(unknown)}; supported: {[r.version for r in RELEASES]}")
    e2e = set() if options.e2e == "none" else set(options.e2e.split(","))
    pythons = [] if options.pythons == "none" else [r for r in PYTHONS if r.python in options.pythons.split(",")]
    distributed = set() if options.distributed == "none" else set(options.distributed.split(","))
    with_units = [r for r in releases if options.units == "all" or r.version in options.units.split(",")]

    started = time.monotonic()
    MATRIX.mkdir(exist_ok=True)
    wheel = build(options.uv)
    # Installing is network- and disk-bound, testing CPU-bound: every environment installs at once, up front.
    with ThreadPoolExecutor(max_workers=len(releases) + len(pythons)) as pool:
        installs = {r.name: pool.submit(timed_install, options.uv, r, wheel) for r in [*releases, *pythons]}
        ready = {name: future.result() for name, future in installs.items()}
    works = {r.name: copy_tests(r) for r in [*releases, *pythons]}
    jobs = [Job(r, "unit") for r in with_units] + [Job(r, "python") for r in pythons]
    for release in releases:
        for suite, wanted_here in (("cli", e2e), ("e2e", e2e), ("distributed", distributed)):
            if release.version in wanted_here:
                jobs.append(Job(release, suite))

    def run_one(job: Job) -> Outcome:
        return test(ready[job.release.name][0], works[job.release.name], job.release, job.suite)

    finished = run_queue(jobs, options.jobs, run_one)
    outcomes = [finished[job] for job in jobs]
    for job, outcome in zip(jobs, outcomes, strict=True):
        if job.suite in ("unit", "python"):
            outcome.install_s = ready[job.release.name][1]
    report = table(outcomes) + f"\n\nWheel: {wheel.name}; whole matrix {time.monotonic() - started:.0f} s.\n"
    (MATRIX / "summary.md").write_text(report)
    print("\n" + report)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
