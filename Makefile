# Warp Speed: `make demo` runs one scoring window end to end; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
JARS := .jars
ICEBERG_VERSION := 1.10.1
SQLITE_JDBC_VERSION := 3.46.1.3
MAVEN_ARTIFACTS := org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:$(ICEBERG_VERSION) \
                   org.xerial:sqlite-jdbc:$(SQLITE_JDBC_VERSION)

.PHONY: setup demo test lint typecheck unit bench clean

setup: $(VENV)/.installed $(JARS)/.fetched

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --python $(PY) --quiet -e ".[dev]"
	touch $@

$(JARS)/.fetched: Makefile
	mkdir -p $(JARS)
	for artifact in $(MAVEN_ARTIFACTS); do \
	  mvn --batch-mode --quiet dependency:copy -Dartifact=$$artifact -DoutputDirectory=$(JARS) || exit 1; \
	done
	touch $@

demo: setup
	$(PY) -m warpspeed.embedded.demo

lint: setup
	$(VENV)/bin/ruff check provider spark_jobs dags plugins maintenance tests benchmarks

typecheck: setup
	$(VENV)/bin/mypy

unit: setup
	$(VENV)/bin/pytest tests

test: lint typecheck
	$(VENV)/bin/pytest tests -p no:cacheprovider

bench: setup
	$(PY) benchmarks/run.py

clean:
	rm -rf .warpspeed
