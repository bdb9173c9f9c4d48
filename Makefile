# Every target installs what it needs into ./.venv first (Python 3.10+ and make are enough).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench venv clean

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

bench: $(STAMP)
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[dev,bench]'
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
