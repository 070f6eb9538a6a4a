# Every target runs inside .venv, created and filled from pyproject.toml on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FIXTURE_DISTS := $(wildcard tests/fixtures/dists/*)

.PHONY: install install-test test bench run lint clean

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

test: install-test
	$(PY) -m pytest

bench: install-test
	$(PY) -m bench

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
	rm -rf $(VENV) build dist .pytest_cache .hypothesis

# A throwaway PostgreSQL for manual use: prints its DSN, serves until Ctrl-C.
.PHONY: pg
pg: install-test
	$(PY) tests/postgres_server.py
