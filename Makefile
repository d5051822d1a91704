# Two commands on a fresh machine: `make demo` and `make test`. Each bootstraps what it needs:
# a .venv with the pinned requirements (uv when available, else pip; bytecode compiled, since every
# Airflow process pays the import cost) and a repo-local, git-ignored Airflow home.
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
export PYTHONDONTWRITEBYTECODE :=

INPUT ?=
PYTEST_ARGS ?=
# Test files run side by side, one process per core, each with its own emulator, moto and Airflow home;
# a file's tests stay in one process (module fixtures such as the Celery stack start once). 0 = one process.
PYTEST_WORKERS ?= auto

.PHONY: help bootstrap demo test check lint bench lock clean up down

help:
	@echo "make demo   run the nightly privacy job on the embedded default (emulator + local S3)"
	@echo "make test   run the whole test suite (what CI runs)"
	@echo "make bench  run the benchmark suite and write BENCHMARKS.md"
	@echo "make check  ruff (including Airflow's AIR rules) and mypy over plugins/ and include/"
	@echo "make lint   ruff only"
	@echo "make up     start the local Airflow UI (+ emulator, local S3, demo input) in the background"
	@echo "make down   stop what make up started"

bootstrap: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if $(VENV)/bin/pip install -q "uv==$$(sed -n 's/^uv==//p' requirements.txt)" 2>/dev/null; then \
	  $(VENV)/bin/uv pip install -q --python $(PY) --compile-bytecode -r requirements.txt && \
	  $(VENV)/bin/uv pip install -q --python $(PY) --compile-bytecode --no-deps \
	    -e . ; \
	else \
	  $(VENV)/bin/pip install -q -r requirements.txt && \
	  $(VENV)/bin/pip install -q --no-deps -e . && \
	  $(PY) -m compileall -q $(VENV)/lib >/dev/null ; \
	fi
	@mkdir -p $(AIRFLOW_HOME)
	@touch $@

demo: $(STAMP)
	$(PY) scripts/demo.py $(if $(INPUT),--input $(INPUT),)

up: $(STAMP)
	$(PY) scripts/up.py

down:
	@if [ -x $(PY) ]; then $(PY) scripts/down.py; else echo "No .venv: make up never ran here."; fi

test: check
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# What CI fails on before any test runs: a lint error or a type error.
check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m mypy plugins/adobe_privacy include/privacy_pipeline include/privacy_emulator

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) -m bench

lock: $(STAMP)
	$(VENV)/bin/uv pip compile -q --python $(PY) requirements.in -o /tmp/requirements.lock
	@echo "Review /tmp/requirements.lock, then copy it over requirements.txt"

clean:
	rm -rf $(VENV) $(AIRFLOW_HOME) demo-output test-artifacts
