# shallownet: `make demo` and `make test` are all a new user needs (Python 3.11, pip, venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
STORE  ?= sqlite:///outputs/mlflow.db
PORT   ?= 5000
BACKEND ?= postgres
PYTEST_ARGS ?=
# Every dependency's exact version and hashes, for Python 3.11 on Linux x86_64 (make lock);
# pyproject.toml keeps the ranges for installing shallownet into an environment of one's own.
LOCK   := requirements.lock
PIP_VERSION ?= 26.3
PIP_TOOLS   ?= pip-tools==7.6.2
UV_VERSION  ?= 0.13.10
UV_DIR      := $(VENV)/.uv
UV          := $(UV_DIR)/bin/uv

.PHONY: help venv lock browser demo test test-fast format screenshots ui bench server clean

help:
	@echo "make demo    set up .venv, run the tutorial 000 ablation sweep, report it, reproduce a run"
	@echo "make test    set up .venv and run the whole test suite (slow end-to-end tests included)"
	@echo "make format  ruff format (make test checks that the code is formatted)"
	@echo "make screenshots  refresh the README's MLflow UI screenshots in docs/ (tests/test_browser.py)"
	@echo "make ui      MLflow UI on http://127.0.0.1:$(PORT) for $(STORE)"
	@echo "make bench   model and harness benchmarks"
	@echo "make server  MLflow tracking server (BACKEND=postgres|sqlite) on 127.0.0.1:$(PORT)"
	@echo "make lock    re-resolve $(LOCK) after pyproject.toml changed (UPGRADE=1: newest of all; minutes)"

# The locked versions (every file checked against the lock's hashes), then shallownet
# itself without resolving anything: built with the locked hatchling, not the newest one.
# uv installs them: the same files as pip would, several times faster, and every fresh
# clone and CI run pays this step. It lives in $(UV_DIR), outside the venv's packages (a
# tool, not a dependency: runs record the venv's distributions). --compile-bytecode as pip
# does: where PYTHONDONTWRITEBYTECODE is set (this machine), a process would otherwise
# compile every module it imports, every time. pip check fails when the lock no longer
# satisfies pyproject.toml (run make lock then).
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'pip==$(PIP_VERSION)'
	test "$$($(UV) --version 2>/dev/null | cut -d' ' -f2)" = '$(UV_VERSION)' || $(BIN)/python -m pip install --quiet --upgrade --target $(UV_DIR) 'uv==$(UV_VERSION)'
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python --require-hashes -r $(LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

venv: $(STAMP)

# pip-tools (pip-compile) rather than uv: a pure-Python tool from the same project family as
# pip, run by the same interpreter as the venv, so the lock is resolved for exactly that
# Python and platform. It lives in a throwaway venv: nothing of it enters .venv or the lock.
# The machine's pip config is ignored here (local wheel dirs and extra indexes): the lock
# names PyPI's files only, whose hashes hold on every machine. Without UPGRADE=1, pins that
# still satisfy pyproject.toml are kept.
lock:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "make lock: needs Python 3.11")'; \
	$(PYTHON) -m venv "$$tmp"; \
	"$$tmp/bin/python" -m pip install --quiet '$(PIP_TOOLS)'; \
	env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL -u PIP_CONSTRAINT \
		PIP_CONFIG_FILE=/dev/null "$$tmp/bin/pip-compile" --quiet $(if $(UPGRADE),--upgrade) --generate-hashes \
		--extra test --all-build-deps --allow-unsafe --strip-extras --no-emit-index-url \
		--no-emit-find-links --output-file $(LOCK) pyproject.toml
	@echo "make lock: wrote $(LOCK); make venv installs it"

demo: $(STAMP)
	$(BIN)/python -m shallownet.demo

browser: $(STAMP)
	bash scripts/install-browser.sh

test: $(STAMP) browser
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest --durations=15 $(PYTEST_ARGS)

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks

# make test writes every screenshot under outputs/screenshots/ and leaves docs/ as committed
screenshots: $(STAMP) browser
	SHALLOWNET_DOCS_SCREENSHOTS=1 $(BIN)/python -m pytest -n 0 tests/test_browser.py -k grouped

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

ui: $(STAMP)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri $(STORE) \
		--host 127.0.0.1 --port $(PORT) --workers 1

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_model.py
	$(BIN)/python benchmarks/bench_runpath.py
	bash benchmarks/peers/make_venv.sh $(PYTHON)
	$(BIN)/python benchmarks/bench_peers.py

server: $(STAMP)
	$(BIN)/python -m shallownet.server start --backend $(BACKEND) --port $(PORT)

clean:
	rm -rf outputs multirun
