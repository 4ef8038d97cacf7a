# Offer State Gateway: developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Re-install when any requirement file changes.
REQUIREMENTS := requirements/dev.txt requirements/constraints.txt layers/offer_state/requirements.txt
STAMP := $(VENV)/.installed-dev
# SAM CLI pins boto3/pydantic ranges of its own: it lives in a virtualenv of its own.
SAM_VENV := $(VENV)/tools/sam
SAM := $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed
export SAM_CLI_TELEMETRY := 0
# checkov too (it pins an old boto3). --skip-download: it must not call home.
CHECKOV_VENV := $(VENV)/tools/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# The Node tools of `make lint` (Spectral), pinned by their lock file, under the Node `make build`
# uses (node from PATH, else requirements/node.txt's): local/node_tools.py.
NODE_TOOLS_PINS := requirements/node-tools/package.json requirements/node-tools/package-lock.json
NODE_TOOLS_STAMP := $(VENV)/tools/node-tools/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv browser test test-slow unit lint fmt sandbox run token invoke build faults bench load tokens audit openapi

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

$(STAMP): $(REQUIREMENTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing development dependencies into $(VENV) (first run only)"
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.txt -c requirements/constraints.txt
	@touch $@

$(SAM_STAMP): requirements/sam.txt requirements/sam-constraints.txt
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	@echo "installing AWS SAM CLI into $(SAM_VENV) (first run only)"
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/sam.txt -c requirements/sam-constraints.txt
	@touch $@

$(CHECKOV_STAMP): requirements/checkov.txt requirements/checkov-constraints.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	@echo "installing checkov into $(CHECKOV_VENV) (first run only)"
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/checkov.txt -c requirements/checkov-constraints.txt
	@touch $@

$(NODE_TOOLS_STAMP): $(NODE_TOOLS_PINS) requirements/node.txt | $(STAMP)
	@echo "installing the Node tools of make lint into $(VENV)/tools/node-tools (first run only)"
	@$(PY) -m local.node_tools install
	@touch $@

venv: $(STAMP) $(SAM_STAMP) $(CHECKOV_STAMP) $(NODE_TOOLS_STAMP) ## create the virtualenvs and install the pinned dependencies

# Complexity in radon's grades. local/ (the local stack, the sandbox, the bench and load tools)
# may keep a C block where a case reads better whole; each of its modules, and the whole of
# local/, averages A.
lint: $(STAMP) $(SAM_STAMP) $(CHECKOV_STAMP) $(NODE_TOOLS_STAMP) ## ruff, xenon (no block worse than B in layers and functions, C in local), mypy, cfn-lint, sam validate --lint, checkov (skips explained in template.yaml), spectral (openapi.json)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/xenon --max-absolute B --max-modules A --max-average A layers functions
	$(BIN)/xenon --max-absolute C --max-modules A --max-average A local
	$(BIN)/mypy layers/offer_state/python/offer_state functions/get_state/app.py functions/update_state/app.py functions/reconcile_pending/app.py functions/refresh_token/app.py local tests
	$(BIN)/cfn-lint template.yaml
	$(SAM) validate --lint --region us-east-1
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --skip-download --compact --quiet
	$(PY) -m local.node_tools spectral lint --fail-severity=warn --ruleset .spectral.yaml openapi.json

fmt: $(STAMP) ## format the code with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

browser: $(STAMP) ## the headless Chromium the browser tests drive: found, or installed (apt-get, else Playwright's)
	@$(PY) -m local.browser

# Tests marked `fleet` start many function environments at once (the token and load
# benchmarks, the token acceptance bursts): beside them, the other worker's timed tests would
# get a share of two cores too small for their budgets. They run after the rest, one at a
# time. (Exit 5: PYTEST_ARGS chose no test of that part.)
test: lint browser ## lint, then the whole test suite
	$(BIN)/pytest -n 2 --dist loadfile -m "not fleet" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(BIN)/pytest -m fleet $(PYTEST_ARGS) || [ $$? -eq 5 ]

# The edit loop: no lint, and none of the slow folders (browser, whole stack, template: two
# `sam build`s; reliability: the fault matrix waits out real timeouts). `make test` runs them all.
UNIT_TESTS := tests/unit tests/sandbox tests/integration tests/functions

unit: $(STAMP) ## the edit loop (a minute or two): unit, sandbox, client and handler tests, no lint
	$(BIN)/pytest -n 2 --dist loadfile $(UNIT_TESTS) $(PYTEST_ARGS)

# The timing-sensitive folders on a slow CPU. `-n 2` spelled out as two execnet workers whose
# Python is local.cpu_share's `run`, which joins a cgroup of its own and execs the worker: each
# worker (and what it starts) at SLOW_SHARE of a core, not half a core between them. `check`
# says in one line whether it can (where it cannot, `run` execs uncapped without a line each);
# `sweep` then removes the workers' groups, whatever the tests' outcome.
SLOW_TESTS := tests/functions tests/reliability
SLOW_SHARE := 0.5
CAPPED_PY := $(PY) -m local.cpu_share run --quiet --share $(SLOW_SHARE) -- $(PY)

test-slow: $(STAMP) ## tests/functions and tests/reliability, each test process at half a core (where cgroups allow)
	@$(PY) -m local.cpu_share check --share $(SLOW_SHARE)
	$(BIN)/pytest --tx '2*popen//python=$(CAPPED_PY)' --dist loadfile $(SLOW_TESTS) $(PYTEST_ARGS); \
	status=$$?; $(PY) -m local.cpu_share sweep; exit $$status

audit: $(STAMP) ## audit records: COLLECTOR=80000000110 or CORRELATION=<uuid>; STACK=<name> for a deployed stack; JSON=1; LEGACY_PEPPER_FILE=<file>
	@PYTHONPATH=layers/offer_state/python $(PY) -m local.audit_reader $(if $(COLLECTOR),--collector "$(COLLECTOR)") $(if $(CORRELATION),--correlation "$(CORRELATION)") $(if $(STACK),--stack "$(STACK)") $(if $(JSON),--json) $(if $(LEGACY_PEPPER_FILE),--legacy-pepper-file "$(LEGACY_PEPPER_FILE)")

openapi: $(STAMP) ## regenerate openapi.json from the handlers' routes and models
	@$(PY) -m local.openapi

faults: $(STAMP) ## the fault matrix: every route under every fault, a table and a summary (FAULTS="PUT one" for some)
	@PYTHONPATH=layers/offer_state/python $(PY) -m tests.reliability.matrix

bench: $(STAMP) build ## cold start, per-request overhead, calls per request, then make tokens: tables and bench-results.json
	@$(PY) -m local.bench
	@$(PY) -m local.tokens

tokens: $(STAMP) ## AIR MILES token requests: steady (32 environments with churn), cold burst, revocation, throttled store; bench-results.json (tokens)
	@$(PY) -m local.tokens

load: $(STAMP) ## the local stack under load at concurrency 1, 4, 16: req/s, p50/p95/p99, audit checks; bench-results.json (load)
	@PYTHONPATH=layers/offer_state/python $(PY) -m local.load

# sam build caches each artifact by the content of its own folder (samconfig.toml: cached =
# true); the build code they share lives outside those folders, so a change to it empties the
# cache.
BUILD_CODE := local/build.py local/pyodide_python.mjs requirements/node.txt
.aws-sam/.build-code: $(BUILD_CODE)
	@rm -rf .aws-sam/cache
	@mkdir -p .aws-sam && touch $@

# The artifacts' Makefiles run local/build.py, which runs pip: with the SAM CLI's Python, which
# has it (a system python3 may come without pip).
build: $(SAM_STAMP) .aws-sam/.build-code ## sam build: python3.13 on arm64 with its bytecode (no Docker, no local 3.13); size, bytecode counts
	PYTHON="$(abspath $(SAM_VENV))/bin/python" $(SAM) build
	@$(PYTHON) local/build.py summary .aws-sam/build

run: $(STAMP) ## the whole stack on 127.0.0.1:3000 (sandbox, moto, dev issuer, gateway); Ctrl-C stops it
	@$(PY) -m local.stack

sandbox: $(STAMP) ## the AIR MILES sandbox alone (SANDBOX_PORT, default 3001)
	@$(PY) -m local.sandbox

token: $(STAMP) ## a dev token: COLLECTOR=80000000110 (member), or M2M=1; SCOPES="..." replaces the scopes
	@$(PY) -m local.issuer token $(if $(M2M),--m2m,--collector $(or $(COLLECTOR),80000000110)) $(if $(SCOPES),--scopes "$(SCOPES)")

invoke: $(STAMP) ## one function, one event: FUNCTION=GetStateFunction EVENT=events/get_states.json
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo "usage: make invoke FUNCTION=GetStateFunction EVENT=events/get_states.json"; exit 2; }
	@$(PY) -m local.invoke $(FUNCTION) $(EVENT)
