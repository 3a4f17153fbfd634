# Warp Speed: `make demo` runs one scoring window end to end; `make airflow` runs a live Airflow
# on the embedded stack (WINDOW_MINUTES=2 by default); `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
JARS := .jars
# The provider never resolves paths inside this checkout; the repo's targets say where things are.
export WARPSPEED_HOME ?= $(CURDIR)/.warpspeed
export WARPSPEED_JARS_DIR ?= $(CURDIR)/$(JARS)
export WARPSPEED_DAGS_FOLDER ?= $(CURDIR)/dags
export WARPSPEED_WORKLOADS_FILE ?= $(CURDIR)/dags/config/workloads.yaml

WINDOW_MINUTES ?= 2

.PHONY: setup demo airflow soak test lint typecheck unit bench clean chromium wheel-smoke

setup: $(VENV)/.installed $(JARS)/.fetched

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv
	# uv's cache grows by about 1.6 GB per fresh install (pyspark is an sdist, built and unpacked
	# again); over repeated CI runs on one machine it reached 72 GB and filled the disk: drop what
	# no install uses any more
	$(VENV)/bin/uv cache prune --quiet || true
	$(VENV)/bin/uv pip install --python $(PY) --quiet -e ".[dev,models,embedded]"
	touch $@

# `warpspeed setup`, as a wheel user runs it: the jars of local Spark (warpspeed.embedded.jars
# lists them) and the embedded servers' classpaths (ElasticMQ = SQS, Iceberg REST catalog) from
# the poms shipped in the package, with Maven; it writes the stamp and skips what is up to date.
SERVER_POMS := $(wildcard provider/warpspeed/embedded/maven/*/pom.xml)

$(JARS)/.fetched: $(VENV)/.installed provider/warpspeed/embedded/jars.py $(SERVER_POMS)
	$(PY) -m warpspeed.cli setup --jars-dir $(JARS)

demo: setup
	$(PY) -m warpspeed.cli demo

# A real Airflow 3 (api-server, scheduler, dag-processor, triggerer) on the embedded stack with a
# request producer; prints the UI URL and login. Ctrl-C stops everything; state stays in .warpspeed/.
airflow: setup
	WINDOW_MINUTES=$(WINDOW_MINUTES) $(PY) -m warpspeed.embedded.live

# The live stack under hostile load (5,000 requests over 10 one-minute windows, 6% hostile, 6%
# re-sent), SIGKILLs of scheduler/triggerer/tasks and SQS faults, then an audit: prints
# `SOAK {json}`, exits 1 if anything was lost, scored twice or dead-lettered without a reason.
# SOAK_REQUESTS, SOAK_WINDOWS, SOAK_KILLS, SOAK_FAULT_RATE change the load; state in .warpspeed/soak.
soak: setup
	$(PY) -m warpspeed.embedded.soak.run

lint: setup
	$(VENV)/bin/ruff check provider spark_jobs dags plugins maintenance tests benchmarks

typecheck: setup
	$(VENV)/bin/mypy

unit: setup
	$(VENV)/bin/pytest tests

# Headless Chromium for the dashboard test (Debian package; the test skips, saying why, without it).
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); } || \
	  echo "chromium not installed: the dashboard's browser check will skip"

test: lint typecheck chromium
	$(VENV)/bin/pytest tests -p no:cacheprovider

bench: setup
	$(PY) benchmarks/run.py

# Build the wheel, install it into a fresh venv under /tmp and run the demo's DAG from a copy of dags/.
wheel-smoke: setup
	bash tests/wheel_smoke.sh

clean:
	rm -rf .warpspeed
