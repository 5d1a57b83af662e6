# Everything bootstraps from the project's own files: uv (pinned) into .tools/, then the locked env in .venv/.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
RUN := $(UV) run --frozen
export GX_ANALYTICS_ENABLED := false
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: help install lint format test test-quick demo airflow sandbox bench clean

help:
	@echo "make demo       the whole pipeline on this laptop: sandbox, local S3, Airflow backfill, warehouse"
	@echo "make test       lint + the whole test suite (what CI runs)"
	@echo "make test-quick lint + the tests not marked slow"
	@echo "make airflow    Airflow with its UI, the sandbox and local S3, ready for backfills"
	@echo "make bench      benchmarks (results in include/benchmarks/)"
	@echo "make lint       ruff and mypy"

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-extras
	touch $@

install: .venv/.synced

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

format: install
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

test: lint
	$(RUN) pytest $(PYTEST_ARGS)

test-quick: lint
	$(RUN) pytest -m "not slow" $(PYTEST_ARGS)

demo: install
	$(RUN) ledgerlake demo $(DEMO_ARGS)

airflow: install
	$(RUN) python -m ledgerlake.local airflow

sandbox: install
	$(RUN) ledgerlake sandbox

bench: install
	$(RUN) python -m ledgerlake.bench $(BENCH_ARGS)

clean:
	rm -rf .venv .tools .airflow .test-airflow .demo .pytest_cache .mypy_cache .ruff_cache
