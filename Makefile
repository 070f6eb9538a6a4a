# Every target runs inside .venv, created and filled from pyproject.toml on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FIXTURE_DISTS := $(wildcard tests/fixtures/dists/*)

.PHONY: install test bench run clean

$(VENV)/.installed: pyproject.toml $(foreach d,$(FIXTURE_DISTS),$(d)/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' $(FIXTURE_DISTS)
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest

bench: install
	$(PY) -m bench

run: install
	$(VENV)/bin/flowstone-host run

clean:
	rm -rf $(VENV) build dist .pytest_cache .hypothesis
