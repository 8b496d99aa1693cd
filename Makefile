# The one entry point for developers and CI (.ci/run calls `make test`).
#
#   make run    bootstrap, local Kafka (Tansu), migrate, load the Saga City sample, serve on :1026
#   make test   bootstrap, lint, pytest (unit + integration against PostgreSQL/PostGIS and Tansu)
#
# Everything respects CITYOS_DATABASE_URL, CITYOS_TEST_DATABASE_URL, CITYOS_KAFKA_BOOTSTRAP and
# CITYOS_DEV_KAFKA_PORT (see README.md, Settings).

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
CITYOS_DEV_KAFKA_PORT ?= 9092

export CITYOS_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/cityos_test

.DEFAULT_GOAL := help
.PHONY: help bootstrap run test lint fmt bench fuzz stop clean demo-federation

help:
	@echo "make run | test | lint | fmt | bench | fuzz | stop | clean   (see README.md, Make targets)"

bootstrap:
	@bash scripts/bootstrap.sh

# Without CITYOS_KAFKA_BOOTSTRAP the API publishes to the local Tansu that kafka-dev.sh starts;
# with it, kafka-dev.sh leaves Kafka alone and the given brokers are used.
run: bootstrap
	@bash scripts/kafka-dev.sh start
	$(BIN)/city-os migrate
	$(BIN)/city-os load-sample
	CITYOS_KAFKA_BOOTSTRAP="$${CITYOS_KAFKA_BOOTSTRAP:-127.0.0.1:$(CITYOS_DEV_KAFKA_PORT)}" \
		CITYOS_OUTBOUND_ALLOW="$${CITYOS_OUTBOUND_ALLOW-loopback}" \
		exec $(BIN)/city-os serve

test: bootstrap lint
	$(BIN)/pytest tests

lint: bootstrap
	$(BIN)/ruff check city_os tests
	$(BIN)/ruff format --check city_os tests
	$(BIN)/mypy

fmt: bootstrap
	$(BIN)/ruff check --fix city_os tests
	$(BIN)/ruff format city_os tests

# The long fuzzing run: every operation of /openapi.json, valid and invalid requests, boundary
# cases, random seeds (CITYOS_FUZZ_EXAMPLES per operation; `make test` runs 1). Another test
# session on the same CITYOS_TEST_DATABASE_URL drops the run's tenant at its start: run it alone.
fuzz: bootstrap
	CITYOS_FUZZ_EXAMPLES="$${CITYOS_FUZZ_EXAMPLES:-200}" CITYOS_FUZZ_NEGATIVE=1 CITYOS_FUZZ_COVERAGE=1 \
		CITYOS_FUZZ_RANDOM=1 $(BIN)/pytest tests/integration/fuzz -o timeout=3600 -p no:cacheprovider

# make bench ARGS="--only stellio": arguments of python -m bench (python -m bench --help)
bench: bootstrap
	$(BIN)/python -m bench $(ARGS)

# Saga Prefecture + Saga City, Ogi, Kanzaki on ports 1041-1044 (scripts/demo_federation.py)
demo-federation: bootstrap
	$(BIN)/python scripts/demo_federation.py

stop:
	@bash scripts/kafka-dev.sh stop

# Keeps .venv (delete it by hand to rebuild from scratch).
clean: stop
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache build
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +
