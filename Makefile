# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: install run api worker test test-fast check lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $(TEST_STAMP)

install: $(STAMP)

# The demo seed (directory + admin credits) is for this target only, and only on an
# empty install; an explicit PHONE_DEMO_SEED in the environment wins.
run: $(STAMP)
	PHONE_DEMO_SEED="$${PHONE_DEMO_SEED:-true}" $(BIN)/phone-enrich serve

api: $(STAMP)
	$(BIN)/phone-enrich api

worker: $(STAMP)
	$(BIN)/phone-enrich worker

# What CI runs (.ci/run) and what the README calls the test command: lint, types, tests.
test: lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

# The fast tier: in-memory doubles and pure functions, no DBOS/S3 server/browser, nothing
# that takes seconds (bcrypt, fuzzing, huge files: marked slow).
test-fast: $(TEST_STAMP)
	$(BIN)/pytest -q -p no:cacheprovider -m "not integration and not slow and not browser and not postgres"

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

check: test

bench: $(TEST_STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
