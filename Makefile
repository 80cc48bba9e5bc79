# tdwgym: `make demo` sets up .venv and runs the main job; `make test` sets up and runs the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch (a local file on the project's machines; from PyPI elsewhere). Override for CUDA, e.g.
# `make test TORCH_SPEC=torch` on a GPU machine.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test docs bench lint format clean help

help:
	@echo "make demo   - create $(VENV), install tdwgym, train, film and evaluate a curiosity agent (runs/demo/)"
	@echo "make test   - create or reuse $(VENV), install the dev extras and run pytest"
	@echo "make docs   - build the documentation site (MkDocs) into site/"
	@echo "make bench  - throughput benchmarks (figures in BENCHMARKS.md)"
	@echo "make lint   - ruff check and format check"
	@echo "make format - apply ruff's fixes and formatting"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev,tdw,ray]"
	@touch $@

demo: $(STAMP)
	$(BIN)/tdwgym demo --out runs/demo

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/tdwgym bench --out runs/bench.json

lint: $(STAMP)
	$(BIN)/ruff check tdwgym envs agents examples tests scripts
	$(BIN)/ruff format --check tdwgym envs agents examples tests scripts

format: $(STAMP)
	$(BIN)/ruff check --fix tdwgym envs agents examples tests scripts
	$(BIN)/ruff format tdwgym envs agents examples tests scripts

clean:
	rm -rf runs build dist site *.egg-info .pytest_cache .ruff_cache
