# shallownet: `make demo` and `make test` are all a new user needs (Python 3.11, pip, venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
STORE  ?= sqlite:///outputs/mlflow.db
PORT   ?= 5000
BACKEND ?= postgres
PYTEST_ARGS ?=

.PHONY: help venv browser demo test test-fast ui bench server clean

help:
	@echo "make demo    set up .venv, run the tutorial 000 ablation sweep, report it, reproduce a run"
	@echo "make test    set up .venv and run the whole test suite (slow end-to-end tests included)"
	@echo "make ui      MLflow UI on http://127.0.0.1:$(PORT) for $(STORE)"
	@echo "make bench   model and harness benchmarks"
	@echo "make server  MLflow tracking server (BACKEND=postgres|sqlite) on 127.0.0.1:$(PORT)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m experiments.demo

browser: $(STAMP)
	bash scripts/install-browser.sh

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

ui: $(STAMP)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri $(STORE) \
		--host 127.0.0.1 --port $(PORT) --workers 1

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_model.py
	$(BIN)/python benchmarks/bench_harness.py
	bash benchmarks/peers/make_venv.sh $(PYTHON)
	$(BIN)/python benchmarks/bench_peers.py

server: $(STAMP)
	$(BIN)/python -m experiments.server start --backend $(BACKEND) --port $(PORT)

clean:
	rm -rf outputs multirun
