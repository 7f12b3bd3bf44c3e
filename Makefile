# The two commands of the README: `make run` and `make test`. Plain Python, no compiler.
# The distribution's python3 when it is 3.11 or later; `make PY=...` picks another.
PY ?= $(shell /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(VENV)/bin

# The real-Asterisk tests (tests/asterisk/): an Asterisk 22 source tarball, built once and cached
# in ~/.cache/ivr-guard; or IVR_TEST_ASTERISK=/path/to/asterisk. Without either they are skipped.
ASTERISK_TARBALL ?= $(wildcard ../shared/asterisk22/asterisk-22.10.1.tar.gz)
export ASTERISK_TARBALL

.PHONY: run test venv lint test-servers bench

$(BIN)/python:
	$(PY) -m venv $(VENV) || (apt-get update && apt-get install -y python3-venv && $(PY) -m venv $(VENV))
	$(BIN)/pip install -q --upgrade pip

venv: $(BIN)/python

run: venv
	$(BIN)/pip install -q -e .
	$(BIN)/ivr db upgrade
	exec $(BIN)/ivr serve

lint: venv
	$(BIN)/ruff check ivr tests migrations bench
	$(BIN)/mypy

# Servers the suite starts for itself (on loopback, in temporary folders): PostgreSQL.
test-servers:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql)

test: venv test-servers
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/ruff check ivr tests migrations bench
	$(BIN)/mypy
	$(BIN)/pytest -q

# The benchmark (bench/run.py); BENCH_ARGS="--help" lists its options.
bench: venv test-servers
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/python -m bench.run $(BENCH_ARGS)
