# make demo  — set everything up and run the demo on the embedded default
# make test  — set everything up (venv, Redis, Mosquitto) and run the whole suite, TEST_WORKERS at a time
# make test-serial — the same, one test after another (to tell a test that breaks in parallel from one that breaks)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PLUGIN_DIRS := $(sort $(dir $(wildcard plugins/*/*/pyproject.toml plugins/*/*/setup.py conformance/pyproject.toml)))
STAMP  := $(VENV)/.installed
# Most tests wait on I/O (brokers, subprocesses, timeouts), so more workers than cores pays: on 2
# cores, 6 kept the CPU ~85 % busy where 4 left a third of it idle (12 min 50 s against 14 min).
# Each module stays on one worker (loadfile; conftest.py spreads a few long ones), as module
# fixtures are costly.
TEST_WORKERS ?= 6
# Test deadlines on a busy machine (hub.testing.time_scale): waits for an event end when it happens,
# so a scale above 1 costs only where a test must sit out a limit (a silent simulator).
TEST_TIME_SCALE ?= 2

.PHONY: all demo test test-serial test-fast services venv schemas bench clean

all: test

$(STAMP): setup.py $(wildcard plugins/*/*/pyproject.toml plugins/*/*/setup.py conformance/pyproject.toml)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=python3.11)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	@# setuptools notes each editable install of a package list (not a src/ layout) with a boxed
	@# "Editable installation." message, which pip shows once per distribution: information, not a warning.
	@# --no-build-isolation: the twenty editable installs build with the venv's setuptools (upgraded
	@# just above) instead of each fetching its own into a throw-away environment: half the time.
	PYTHONWARNINGS='ignore:Editable installation' $(PIP) install -q --no-build-isolation \
		-e '.[test,embedded,postgres,server]' \
		$(foreach d,$(PLUGIN_DIRS),-e ./$(d))
	@touch $(STAMP)

venv: $(STAMP)

services:
	@scripts/services.sh

test: venv services
	HUB_TEST_TIME_SCALE=$(TEST_TIME_SCALE) $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

test-serial: venv services
	HUB_TEST_TIME_SCALE=$(TEST_TIME_SCALE) $(PY) -m pytest -p no:xdist

test-fast: venv
	$(PY) -m pytest -x -q -m 'not slow'

demo: venv
	$(VENV)/bin/hub demo

schemas: venv
	$(VENV)/bin/hub schemas export

bench: venv services
	$(PY) -m bench

clean:
	rm -rf $(VENV) var .pytest_cache build *.egg-info
