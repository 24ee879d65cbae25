# One command to run the service on the embedded stack, one to run every test.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-stack bench-status bench-tracing soak soak-crash setup clean

# export_service.py too: the editable install copies that single-file module (force-include)
# into site-packages, where the `export-service` script imports it from.
$(STAMP): pyproject.toml export_service.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

## make run [DATA=dir]: local Kafka, FerretDB and SeaweedFS, demo (or DATA) loaded, worker on :6066
run: $(STAMP)
	$(PY) -m devstack run $(if $(DATA),--data $(DATA),)

## make test: the whole suite (unit, agents, web, e2e on the local stack; Docker tests skip)
test: $(STAMP)
	$(PY) -m devstack prepare
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## make bench: every export type through the engine (columnar and row engines), then the
## entries export through the real worker on the embedded stack (100k users)
bench: $(STAMP)
	$(PY) -m bench.engine --compare-rows $(BENCH_ARGS)
	$(PY) -m devstack prepare
	$(PY) -m bench.stack_export --users 100000 --results stack_export_100k.json
	$(PY) -m bench.status_load --results status_load_100k.json
	$(PY) -m bench.tracing_cost

## make bench-tracing: the entries export with tracing off, on, and without tracing code
bench-tracing: $(STAMP)
	$(PY) -m bench.tracing_cost $(BENCH_TRACING_ARGS)

## make bench-status: a worker whose status table holds 100k records (1,000 campaigns):
## recovery, POST/GET p99, intake rate, idle CPU, each beside a baseline from the same run
bench-status: $(STAMP)
	$(PY) -m devstack prepare
	$(PY) -m bench.status_load $(BENCH_STATUS_ARGS)

## make soak [SEEDS="1 2 3"] [SOAK_ARGS=...]: every export type over REST and Kafka while the
## worker is SIGKILLed and Kafka, MongoDB and S3 restart; checks nothing was lost (one run
## per seed; a random seed when none is given; the suite runs a short version)
soak: $(STAMP)
	$(PY) -m devstack prepare
	$(PY) -m devstack.soak $(foreach seed,$(SEEDS),--seed $(seed)) $(SOAK_ARGS)

## make soak-crash [SOAK_KILLS=8]: the suite's kill -9 test with more kills (3 in the suite)
soak-crash: $(STAMP)
	$(PY) -m devstack prepare
	SOAK_KILLS=$${SOAK_KILLS:-8} $(PY) -m pytest tests/e2e/test_lifecycle.py -k kills -s

## make bench-stack: entries export of generated 100k- and 1M-user datasets via `devstack run`,
## three exports per size (the 100k export lasts seconds: one alone is noisy)
BENCH_STACK_ARGS ?= --repeat 3
bench-stack: $(STAMP)
	$(PY) -m devstack prepare
	$(PY) -m bench.stack_export $(BENCH_STACK_ARGS)

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
