# Every target runs inside .venv, created and filled from pyproject.toml on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FIXTURE_DISTS := $(wildcard tests/fixtures/dists/*)

.PHONY: install install-test test test-random mutation bench run lint clean

# The host alone: what `make run` needs.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

# Plus the test extra and the fixture distributions the tests load as plugins.
$(VENV)/.installed-test: $(VENV)/.installed $(foreach d,$(FIXTURE_DISTS),$(wildcard $(d)/pyproject.toml $(d)/*/*.py))
	$(PY) -m pip install --quiet -e '.[test]' $(FIXTURE_DISTS)
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(VENV)/bin/flowstone-host run

# Line and branch coverage of flowstone_host, subprocesses included ([tool.coverage.*]).
test: install-test
	rm -f .coverage .coverage.*
	$(PY) -m pytest --cov --cov-report=
	$(PY) -m coverage report --skip-covered --skip-empty
	$(PY) -m coverage json -q -o build/coverage.json
	$(PY) -c "import json; t = json.load(open('build/coverage.json'))['totals']; \
	print(f\"coverage: lines {t['covered_lines']}/{t['num_statements']} \
	({t['covered_lines'] / max(t['num_statements'], 1):.1%}), branches \
	{t['covered_branches']}/{t['num_branches']} \
	({t['covered_branches'] / max(t['num_branches'], 1):.1%})\")"

# The suite in three random orders (pytest-randomly); the seeds are printed to replay one.
# tests/runtime and the postgres/aws plugin tests are left to their own owners' runs.
RANDOM_SEEDS ?= 1 2 3
test-random: install-test
	for seed in $(RANDOM_SEEDS); do \
	  $(PY) -m pytest -q -p randomly --randomly-seed=$$seed \
	    --ignore=tests/plugins/postgres --ignore=tests/plugins/aws --ignore=tests/runtime \
	    || exit 1; \
	done

$(VENV)/.installed-mutation: $(VENV)/.installed-test
	$(PY) -m pip install --quiet -e '.[mutation]'
	touch $@

# mutmut on the core modules, each against its own tests, in build/mutation/ (not part of
# `make test`). MODULES=registry limits it to some: see tests/mutate.py.
mutation: $(VENV)/.installed-mutation
	$(PY) tests/mutate.py $(MODULES)

bench: install-test
	$(PY) -m bench

# The daemon for FLOWSTONE_SOAK_MINUTES (default 10) under reload churn, SIGHUPs, slow
# clients and a crashing isolated plugin; not part of `make test` (see docs/soak.md).
.PHONY: soak
soak: install-test
	$(PY) -m bench.soak

$(VENV)/.installed-lint: $(VENV)/.installed-test
	$(PY) -m pip install --quiet -e '.[lint]'
	touch $@

# ruff (lint and format) over everything, mypy --strict over the package, and the layer
# contracts of pyproject.toml ([tool.importlinter]): dependencies run one way.
lint: $(VENV)/.installed-lint
	$(PY) -m ruff check flowstone_host tests bench
	$(PY) -m ruff format --check flowstone_host tests bench
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) build dist .pytest_cache .hypothesis .coverage .coverage.*

# A throwaway PostgreSQL for manual use: prints its DSN, serves until Ctrl-C.
.PHONY: pg
pg: install-test
	$(PY) tests/postgres_server.py
