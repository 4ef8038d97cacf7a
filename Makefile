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
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv test lint fmt sandbox

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

venv: $(STAMP) $(SAM_STAMP) ## create the virtualenvs and install the pinned dependencies

lint: $(STAMP) $(SAM_STAMP) ## ruff, cfn-lint and sam validate --lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml
	$(SAM) validate --lint --region us-east-1

fmt: $(STAMP) ## format the code with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint ## lint, then the whole test suite
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

sandbox: $(STAMP) ## the AIR MILES sandbox alone (SANDBOX_PORT, default 3001)
	$(PY) -m local.sandbox
