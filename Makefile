# Evergreen. `make demo` runs the scheduler on a local stack; `make test` runs every test suite.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-unit test-faults soak test-fast lint typecheck demo demo-keep data deployments bench load load-short screenshot clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

## The README's test command: lint, types, then unit, flow, integration and e2e suites.
test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q -ra --durations=30 -m "not faults_full"

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

## The whole fault and bad-input suite, including the faults_full tests `make test` leaves out.
test-faults: $(STAMP)
	$(BIN)/python -m pytest -q -ra tests/faults

## The 100-batch random-fault soak (`make test` runs 8 batches); EVERGREEN_SOAK_SEED=N replays a run.
soak: $(STAMP)
	EVERGREEN_SOAK_BATCHES=$${EVERGREEN_SOAK_BATCHES:-100} $(BIN)/python -m pytest -q -s -ra tests/faults/test_soak.py

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

data: $(STAMP)
	$(BIN)/evergreen seed

## prefect.yaml rendered from models/*.yaml (a unit test fails when the committed file is stale).
deployments: $(STAMP)
	$(BIN)/evergreen deployments render

demo: $(STAMP)
	$(BIN)/evergreen demo

demo-keep: $(STAMP)
	$(BIN)/evergreen demo --keep

## docs/img/demo_report.png from the last `make demo` report (synthetic rows when there is none yet).
screenshot: $(STAMP)
	EVERGREEN_SCREENSHOT_OUT=docs/img/demo_report.png \
	EVERGREEN_SCREENSHOT_REPORT=$${EVERGREEN_HOME:-.evergreen}/reports/demo.html \
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e/test_report_browser.py

## Side-by-side benchmarks; results land in benchmarks/results/.
bench: $(STAMP)
	$(BIN)/python benchmarks/drift.py
	$(BIN)/python benchmarks/drift_dask.py --lazy-rows 100000000
	$(BIN)/python benchmarks/retrain.py
	$(BIN)/python benchmarks/retrain.py --rows 1000000 --before benchmarks/results/retrain_1m_before.json
	$(BIN)/python benchmarks/backtest.py
	$(BIN)/python benchmarks/update_cost.py
	$(BIN)/python benchmarks/event_latency.py
	$(BIN)/python benchmarks/load.py

## Load test (docs/scale.md#load): 20 models, 200 trigger events a minute for 10 minutes, PostgreSQL-backed
## Prefect and MLflow on loopback (fresh databases, dropped after); benchmarks/results/load.json.
load: $(STAMP)
	$(BIN)/python benchmarks/load.py

## Its short form (4 models, 60 events over 1 minute, own stack) as a test; marker `load`, not part of
## `make test`, which runs the bounded CI form on the suite's servers (tests/e2e/test_load_burst.py).
load-short: $(STAMP)
	$(BIN)/python -m pytest -q -ra -m load tests/load

clean:
	rm -rf .evergreen .pytest_cache .ruff_cache .mypy_cache
