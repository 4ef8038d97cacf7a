# Offer State Gateway: developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Re-install when any requirement file changes.
REQUIREMENTS := requirements/dev.txt requirements/constraints.txt layers/offer_state/requirements.txt
STAMP := $(VENV)/.installed-dev
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

venv: $(STAMP) ## create the virtualenv and install the pinned dependencies

lint: $(STAMP) ## ruff (lint and format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP) ## format the code with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint ## lint, then the whole test suite
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

sandbox: $(STAMP) ## the AIR MILES sandbox alone (SANDBOX_PORT, default 3001)
	$(PY) -m local.sandbox
