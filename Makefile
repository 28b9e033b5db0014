# Bureaucracy Fest platform. Works on a fresh machine with only Python 3.11+.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo up cluster test chaos lint bench asyncapi clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

## The main job: the embedded stack and a demo cycle.
demo: install
	$(BIN)/bfest demo

## The embedded stack alone (NATS, Temporal dev server + UI, the four services, the worker).
up: install
	$(BIN)/bfest dev up

## The cluster on one machine: 3 NATS nodes (streams at 3 replicas), PostgreSQL at
## BFEST_DEV_POSTGRES_URL (default 127.0.0.1:5432, a database per service), two replicas of each
## service, of the portal and of the worker, the Temporal dev server.
cluster: install
	$(BIN)/bfest dev up --cluster

## axe-core (npm registry) for the portal's WCAG 2.1 AA checks in the browser tests; without npm
## those checks are skipped, saying why.
AXE := var/npm/node_modules/axe-core/axe.min.js
$(AXE):
	-npm install --silent --no-save --no-audit --no-fund --prefix var/npm axe-core@4

## The whole suite: hygiene first (ruff, import boundaries, mypy on contracts, services, workflows
## and the test support), then pytest. Beside it runs the chaos suite's short subset (the
## undisturbed year and the NATS leader kill on the cluster): its years mostly wait on their
## compressed schedule, so it adds little to the suite's time; its lines follow the suite's.
CHAOS_CI_LOG := var/test-artifacts/chaos-ci.log
test: install lint $(AXE)
	@mkdir -p var/test-artifacts
	@BFEST_CHAOS=ci BFEST_CHAOS_MINUTES=$${BFEST_CHAOS_MINUTES:-3.5} $(BIN)/pytest -q -s -p no:cacheprovider -m chaos_ci \
	  --basetemp=var/test-artifacts/chaos-tmp tests/chaos > $(CHAOS_CI_LOG) 2>&1 & chaos=$$!; \
	BFEST_CHAOS=none $(BIN)/pytest -q -p no:cacheprovider; suite=$$?; \
	wait $$chaos; subset=$$?; \
	echo "--- the chaos suite's CI subset ($(CHAOS_CI_LOG)):"; \
	grep -aE '^(cluster up|fault=)|[0-9]+ (passed|failed|error)' $(CHAOS_CI_LOG) | tail -20; \
	test $$suite -eq 0 -a $$subset -eq 0

## Faults as a suite: a compressed year on the cluster, undisturbed then once per fault, one line
## per fault (`make test` runs only its short subset).
chaos: install
	BFEST_CHAOS=all $(BIN)/pytest -q -s -p no:cacheprovider tests/chaos

lint: install
	$(BIN)/ruff check contracts services workflows bfest tests
	$(BIN)/lint-imports
	$(BIN)/mypy contracts workflows services tests/support.py

## Benchmarks: print figures and ratios to a baseline measured in the same run.
bench: install
	$(BIN)/pytest -q -s -p no:cacheprovider tests/benchmarks

asyncapi: install
	$(BIN)/bfest contracts asyncapi

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
