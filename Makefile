# Two environments, each created and filled from pyproject.toml on first use: .venv holds
# the host alone (`make run`); .venv-test holds the host, the test, lint and bench tools and
# the fixture distributions the tests load as plugins (hostile ones among them), so that
# nothing a test installs is ever discovered by the host `make run` starts.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TEST_VENV ?= .venv-test
TPY := $(TEST_VENV)/bin/python
FIXTURE_DISTS := $(wildcard tests/fixtures/dists/*)

.PHONY: install install-test test test-random test-orders mutation bench run lint clean

# The host alone: what `make run` needs.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

# The tests' own environment: the host, the test extra and the fixture distributions.
$(TEST_VENV)/.installed-test: pyproject.toml $(foreach d,$(FIXTURE_DISTS),$(wildcard $(d)/pyproject.toml $(d)/*/*.py))
	$(PYTHON) -m venv $(TEST_VENV)
	$(TPY) -m pip install --quiet --upgrade pip
	$(TPY) -m pip install --quiet -e '.[test]' $(FIXTURE_DISTS)
	touch $@

install: $(VENV)/.installed

install-test: $(TEST_VENV)/.installed-test

run: install
	$(VENV)/bin/flowstone-host run

# Line and branch coverage of flowstone_host, subprocesses included ([tool.coverage.*]), in
# a new random order each run (pytest-randomly); the seed is printed at the top and the end
# of the run, and `make test RANDOM_SEED=N` runs that order again.
RANDOM_SEED ?=
test: install-test
	rm -f .coverage .coverage.*
	$(TPY) -m pytest --cov --cov-report= $(if $(RANDOM_SEED),-p randomly --randomly-seed=$(RANDOM_SEED))
	$(TPY) -m coverage report --skip-covered --skip-empty
	$(TPY) -m coverage json -q -o build/coverage.json
	$(TPY) -c "import json; t = json.load(open('build/coverage.json'))['totals']; \
	print(f\"coverage: lines {t['covered_lines']}/{t['num_statements']} \
	({t['covered_lines'] / max(t['num_statements'], 1):.1%}), branches \
	{t['covered_branches']}/{t['num_branches']} \
	({t['covered_branches'] / max(t['num_branches'], 1):.1%})\")"

# The whole suite in three new random orders, without coverage; each seed is printed to
# replay its order (`make test RANDOM_SEED=N`), and RANDOM_SEEDS="7 8" runs those orders.
# About three times `make test`'s time.
RANDOM_SEEDS ?= default default default
test-random: install-test
	for seed in $(RANDOM_SEEDS); do \
	  $(TPY) -m pytest -q -p randomly --randomly-seed=$$seed || exit 1; \
	done

# Two more new random orders of the tests not marked integration, without coverage (3-4
# minutes each on 2 cores): with `make test`'s own order, CI runs three within its time
# budget. `make test-orders RANDOM_SEED=N` runs the one order of a printed seed again.
test-orders: install-test
	for seed in $(or $(RANDOM_SEED),default default); do \
	  $(TPY) -m pytest -q -m "not integration" -p randomly --randomly-seed=$$seed || exit 1; \
	done

$(TEST_VENV)/.installed-mutation: $(TEST_VENV)/.installed-test
	$(TPY) -m pip install --quiet -e '.[mutation]'
	touch $@

# mutmut on the core modules, each against its own tests, in build/mutation/ (not part of
# `make test`). MODULES=registry limits it to some: see tests/mutate.py.
mutation: $(TEST_VENV)/.installed-mutation
	$(TPY) tests/mutate.py $(MODULES)

bench: install-test
	$(TPY) -m bench

# The daemon for FLOWSTONE_SOAK_MINUTES (default 10) under reload churn, SIGHUPs, slow
# clients and a crashing isolated plugin; not part of `make test` (see docs/soak.md).
.PHONY: soak
soak: install-test
	$(TPY) -m bench.soak

$(TEST_VENV)/.installed-lint: $(TEST_VENV)/.installed-test
	$(TPY) -m pip install --quiet -e '.[lint]'
	touch $@

# ruff (lint and format) over everything, mypy --strict over the package, and the layer
# contracts of pyproject.toml ([tool.importlinter]): dependencies run one way.
lint: $(TEST_VENV)/.installed-lint
	$(TPY) -m ruff check flowstone_host tests bench
	$(TPY) -m ruff format --check flowstone_host tests bench
	$(TPY) -m mypy
	$(TEST_VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) $(TEST_VENV) build dist .pytest_cache .hypothesis .coverage .coverage.*

# A throwaway PostgreSQL for manual use: prints its DSN, serves until Ctrl-C.
.PHONY: pg
pg: install-test
	$(TPY) tests/postgres_server.py
