# Two commands on a fresh machine: `make demo` (the offline demo) and `make test` (the test suite).
# Both build the virtual environment first (scripts/setup.sh, idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-fast lint clean

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/bin/warmeval demo

test: setup
	$(PY) -m pytest -q

# The edit loop: every test not marked slow (388 tests, about 1.5 minutes on 2 cores); CI runs `make test`, all of them.
test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check warmeval tasks solvers scorers training sycophancy analysis tests scripts benchmarks
	$(PY) scripts/typecheck.py  # mypy on the package as installed: every warmeval.* import resolved

clean:
	rm -rf $(VENV) warmeval-demo
