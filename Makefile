# Everyday commands. `make demo` and `make test` are the two that matter.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)
DBT := $(BIN)/dbt
DBT_ARGS := --profiles-dir . --project-dir .
export DBT_PROFILES_DIR := $(CURDIR)
export TRACKHOUSE_PROJECT_DIR := $(CURDIR)

.PHONY: setup system-deps demo build test lint sqlfluff pytest test-spark dagster bench clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-* && touch $@

## setup: the virtualenv with the pinned packages (first use only)
setup: $(STAMP)

## system-deps: PostgreSQL server binaries, Chromium and a Java runtime (Debian packages) when missing
system-deps:
	bash scripts/system-deps.sh

## demo: generate demo events, load them into warehouse.duckdb, dbt build, print a summary
demo: setup
	$(BIN)/trackhouse demo --output data/demo-events.ndjson.gz
	$(BIN)/trackhouse load data/demo-events.ndjson.gz
	$(DBT) build $(DBT_ARGS) --quiet
	$(BIN)/trackhouse summary

## build: dbt build on the configured target
build: setup
	$(DBT) build $(DBT_ARGS)

## test: system packages when missing, then ruff, sqlfluff and pytest (DuckDB, PostgreSQL, Spark)
# The one test command (the README's and CI's): on a fresh machine it installs what
# the tests need first (scripts/system-deps.sh; apt when root, else it names the command).
test: setup system-deps lint sqlfluff pytest

lint: setup
	$(BIN)/ruff check python orchestration tests bench
	$(BIN)/ruff format --check python orchestration tests bench

# The dbt templater compiles the project; it gets a scratch DuckDB file of its own.
sqlfluff: setup
	@mkdir -p target
	TRACKHOUSE_TARGET=duckdb TRACKHOUSE_DUCKDB_PATH=target/sqlfluff.duckdb \
		$(BIN)/sqlfluff lint models --processes 2

pytest: setup
	$(BIN)/pytest -n 2 --dist loadgroup --durations=30

## test-spark: the Spark parity module (Spark vs DuckDB; needs Java: make system-deps)
test-spark: setup system-deps
	TRACKHOUSE_TEST_TARGETS=duckdb,spark $(BIN)/pytest -p no:xdist tests/test_parity_spark.py

## dagster: the Dagster UI on the demo warehouse (http://127.0.0.1:3000)
# [tool.dagster] in pyproject.toml names the code location. DAGSTER_HOME under data/ keeps
# run history, schedule state and the sensor's cursor
# across restarts (so landing files are never launched twice).
dagster: setup
	mkdir -p data/dagster data/landing && cp dagster.yaml data/dagster/dagster.yaml
	DAGSTER_HOME=$(CURDIR)/data/dagster $(BIN)/dagster dev -h 127.0.0.1 -p 3000

## bench: the load benchmark (see bench/)
bench: setup
	$(BIN)/python bench/load.py

clean:
	rm -rf target logs data warehouse.duckdb
