# Two commands on a fresh machine: `make demo` (the offline demo) and `make test` (the test suite).
# Both build the virtual environment first (scripts/setup.sh, idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-fast lint clean

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/bin/warmeval demo

# Two pytest-xdist workers: the demo test runs on one while the rest share the other (the slowest tests go first).
# Each worker keeps to its own half of the CPUs, one thread per core (tests/conftest.py); WORKERS=0 runs serially.
WORKERS ?= 2
XDIST := $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist worksteal)

test: setup
	$(PY) -m pytest -q $(XDIST)

# The edit loop: every test not marked slow; CI runs `make test`, all of them.
test-fast: setup
	$(PY) -m pytest -q -m "not slow" $(XDIST)

lint: setup
	$(VENV)/bin/ruff check warmeval tasks solvers scorers training sycophancy analysis tests scripts benchmarks
	$(PY) scripts/typecheck.py  # mypy on the package as installed: every warmeval.* import resolved

clean:
	rm -rf $(VENV) warmeval-demo
