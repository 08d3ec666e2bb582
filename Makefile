# Two commands on a fresh clone: `make serve` runs the product, `make test` passes the tests.
# Each does its own set-up: a virtualenv in .venv, the package and its dependencies, and the
# browser libraries from npm.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
# Test processes (pytest-xdist): most tests wait on sockets, servers and browsers, so three
# on two cores took the suite from about 20 minutes to 6 on this machine kind.
TEST_WORKERS ?= 3

.PHONY: serve test install clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP) $(NPM_STAMP)

serve: install
	$(BIN)/contactcenter serve --demo

test: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

bench: install
	$(BIN)/python benchmarks/intake.py --json

clean:
	rm -rf $(VENV) node_modules
