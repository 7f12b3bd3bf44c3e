# The two commands of the README: `make run` and `make test`.
# The distribution's python3 when it is 3.11 or later. Debian's interpreter (statically linked)
# ran the service 13 % faster than a pyenv build (shared libpython, no --enable-optimizations) on
# the benchmark machine; a fresh Debian has no other. `make PY=...` picks another.
PY ?= $(shell /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(VENV)/bin

# The call path compiled in place by mypyc (setup.py, ivr/compiled.py): a C compiler and Python's
# headers are installed when missing. COMPILE=0 removes the compiled modules: plain Python.
COMPILE ?= 1
HEADERS := $(BIN)/python -c 'import os, sys, sysconfig; \
	sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'
SO := find ivr -name '*.cpython-*.so'

# The real-Asterisk tests (tests/asterisk/): an Asterisk 22 source tarball, built once and cached
# in ~/.cache/ivr-guard; or IVR_TEST_ASTERISK=/path/to/asterisk. Without either they are skipped.
ASTERISK_TARBALL ?= $(wildcard ../shared/asterisk22/asterisk-22.10.1.tar.gz)
export ASTERISK_TARBALL

.PHONY: run test venv lint test-servers bench compile

$(BIN)/python:
	$(PY) -m venv $(VENV) || (apt-get update && apt-get install -y python3-venv && $(PY) -m venv $(VENV))
	$(BIN)/pip install -q --upgrade pip

venv: $(BIN)/python

compile: venv
ifeq ($(COMPILE),1)
	@(command -v gcc >/dev/null && $(HEADERS)) || (apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev python3-dev)
	$(BIN)/python -c 'import mypyc' 2>/dev/null || $(BIN)/pip install -q -e '.[compile]'
	$(BIN)/python -c 'from ivr import compiled; [p.unlink() for p in compiled.unlisted().values()]'
	IVR_COMPILE=1 $(BIN)/python setup.py -q build_ext --inplace
	@# Built from the sources as they are now, also when a module's C was unchanged and kept.
	$(SO) | xargs -r touch
else
	$(SO) | xargs -r rm -f
endif

run: venv
	$(BIN)/pip install -q -e '.[compile]'
	$(MAKE) compile
	$(BIN)/ivr db upgrade
	exec $(BIN)/ivr serve

lint: venv
	$(BIN)/ruff check ivr tests migrations bench setup.py
	$(BIN)/mypy

# Servers the suite starts for itself (on loopback, in temporary folders): PostgreSQL.
test-servers:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql)

test: venv test-servers
	$(BIN)/pip install -q -e '.[test]'
	$(MAKE) compile
	$(BIN)/ruff check ivr tests migrations bench setup.py
	$(BIN)/mypy
	$(BIN)/pytest -q

# The benchmark (bench/run.py): about 13 minutes; BENCH_ARGS="--help" lists its options.
bench: venv test-servers
	$(BIN)/pip install -q -e '.[test,bench]'
	$(MAKE) compile
	$(BIN)/python -m bench.run $(BENCH_ARGS)
