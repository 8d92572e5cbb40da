# Two commands for a fresh machine: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)

.PHONY: setup browser demo test test-fast up up-scaled down bench lock clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

## setup: create .venv with the locked dependencies and bananaflow installed
setup: $(STAMP)

## demo: run the example catalog on the simulator + local S3 + local Prefect (no keys);
##       `make demo GCS=1`: into a Cloud Storage emulator instead (gs://bananaflow-demo/demo)
demo: setup
	$(BIN)/bananaflow demo $(if $(GCS),--gcs)

## browser: headless Chromium + chromedriver (Debian packages) for the Prefect UI test
browser:
	@sh tools/install-browser.sh

# Tests run on TEST_WORKERS processes (pytest-xdist), each test module whole on one of them;
# tests/conftest.py says which modules must also wait for each other. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadfile

## test: the whole test suite, end-to-end tests included
test: setup browser
	$(BIN)/python -m pytest $(XDIST)

## test-fast: unit tests only (no S3 or Prefect servers), under a minute
test-fast: setup
	$(BIN)/python -m pytest tests/unit -m "not e2e" -q $(XDIST)

## up: local Prefect server (UI on 127.0.0.1:4200), a process worker, blocks and deployments
up: setup
	$(BIN)/bananaflow up

## up-scaled: the same on PostgreSQL (127.0.0.1:5432) + Redis messaging (127.0.0.1:6379), two workers
up-scaled: setup
	$(BIN)/bananaflow up --scaled

## down: stop what `make up`/`make demo` left running
down:
	@if [ -x $(BIN)/bananaflow ]; then $(BIN)/bananaflow down; fi

## bench: throughput benchmark on the simulator (prints a table, writes docs/benchmarks.md + PNG)
bench: setup
	$(BIN)/python bench/throughput.py $(BENCH_ARGS)

## lock: re-resolve requirements.lock from pyproject.toml (needs pip-tools)
lock:
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
		--extra test --extra bench --strip-extras --allow-unsafe -o requirements.lock pyproject.toml

clean: down
	rm -rf $(VENV) .state
