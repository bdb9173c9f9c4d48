# Every target installs what it needs into ./.venv first (Python 3.10+ and make are enough).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test e2e distributed check lint bench venv clean matrix dist

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade uv
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -e '.[dev]' \
	  || $(PY) -m pip install --quiet --compile -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

# The tiers (README, Development): each one command, each with its time budget on a 2-core machine.
#: pytest-xdist workers for `make test`: two per core, as its tests mostly wait (on the emulator's runs, on
#: dag.test()'s loops); on 2 cores 4 workers take about 80 s, 3 about 100 s, 2 about 130 s (each worker pays a few
#: seconds of CPU for its own Airflow start-up).
JOBS ?= $(shell echo $$(( 2 * $$(nproc 2>/dev/null || echo 1) )))
UNIT := not cli and not e2e and not distributed

# Unit and dag.test() suites on the development Airflow, no services: <= 140 s.
test: $(STAMP)
	$(VENV)/bin/pytest -n $(JOBS) --dist worksteal -m "$(UNIT)" $(PYTEST_ARGS)

# Real Airflow processes: the command line as a user types it (in parallel), then the real Airflow stacks (each
# module drives one stack, its tests one at a time; the e2e stack and the browser test's stack run side by side).
e2e: $(STAMP)
	$(VENV)/bin/pytest -n auto --dist worksteal -m cli $(PYTEST_ARGS)
	$(VENV)/bin/pytest -n 2 --dist loadfile -m e2e $(PYTEST_ARGS)

# The production shape: PostgreSQL, Celery on Redis, two triggerers, two workers.
distributed: $(STAMP)
	$(VENV)/bin/pytest -m distributed $(PYTEST_ARGS)

# Everything CI runs, in the order it runs it (.ci/run).
check: lint test dist matrix distributed

lint: $(STAMP)
	$(VENV)/bin/ruff check airflow_provider_alta tests dags_examples scripts bench
	$(VENV)/bin/ruff format --check airflow_provider_alta tests dags_examples scripts bench
	$(VENV)/bin/mypy airflow_provider_alta

# The built wheel in one clean venv per supported Airflow (3.0.6 to 3.3.2): the unit suites two at a time (each
# leaves a core mostly idle while it waits on the emulator), then the command line and e2e on the oldest and newest.
MATRIX_ARGS ?= --jobs 2
matrix: $(STAMP)
	$(PY) scripts/matrix.py --uv $(VENV)/bin/uv $(MATRIX_ARGS)

# Build the wheel and sdist into ./dist and check what is inside them.
dist: $(STAMP)
	rm -rf dist
	$(VENV)/bin/uv build --out-dir dist
	$(VENV)/bin/twine check --strict dist/*
	$(PY) scripts/check_dist.py dist

bench: $(STAMP)
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[dev,bench]'
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .matrix dist
