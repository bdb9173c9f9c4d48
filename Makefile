# Every target installs what it needs into ./.venv first (Python 3.10+ and make are enough).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench venv clean matrix dist

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[dev]' \
	  || $(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check airflow_provider_alta tests dags_examples scripts bench
	$(VENV)/bin/ruff format --check airflow_provider_alta tests dags_examples scripts bench
	$(VENV)/bin/mypy airflow_provider_alta

# The built wheel in one clean venv per supported Airflow (3.0.6 to 3.3.2); e2e on the oldest and newest.
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
