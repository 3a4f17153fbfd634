# Warp Speed: `make demo` runs one scoring window end to end; `make airflow` runs a live Airflow
# on the embedded stack (WINDOW_MINUTES=2 by default); `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
JARS := .jars
ICEBERG_VERSION := 1.10.1
SQLITE_JDBC_VERSION := 3.46.1.3
# The provider never resolves paths inside this checkout; the repo's targets say where things are.
export WARPSPEED_HOME ?= $(CURDIR)/.warpspeed
export WARPSPEED_JARS_DIR ?= $(CURDIR)/$(JARS)
export WARPSPEED_DAGS_FOLDER ?= $(CURDIR)/dags
export WARPSPEED_WORKLOADS_FILE ?= $(CURDIR)/dags/config/workloads.yaml
MAVEN_ARTIFACTS := org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:$(ICEBERG_VERSION) \
                   org.xerial:sqlite-jdbc:$(SQLITE_JDBC_VERSION)

WINDOW_MINUTES ?= 2

.PHONY: setup demo airflow rehearsal soak test lint typecheck unit bench clean chromium wheel-smoke

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

# The embedded servers' classpaths (ElasticMQ = SQS, Iceberg REST catalog) and the rehearsal's (S3Proxy;
# hadoop-aws, its SDK and Iceberg's AWS bundle for the Spark nodes), one folder each.
SERVER_POMS := $(wildcard provider/warpspeed/embedded/maven/*/pom.xml)

$(JARS)/.fetched: Makefile $(SERVER_POMS)
	mkdir -p $(JARS)
	for artifact in $(MAVEN_ARTIFACTS); do \
	  mvn --batch-mode --quiet dependency:copy -Dartifact=$$artifact -DoutputDirectory=$(JARS) || exit 1; \
	done
	for pom in $(SERVER_POMS); do \
	  dir=$(abspath $(JARS))/$$(basename $$(dirname $$pom)); rm -rf $$dir; \
	  mvn --batch-mode --quiet -f $$pom dependency:copy-dependencies -DincludeScope=runtime \
	    -DoutputDirectory=$$dir || exit 1; \
	done
	touch $@

demo: setup
	$(PY) -m warpspeed.embedded.demo

# A real Airflow 3 (api-server, scheduler, dag-processor, triggerer) on the embedded stack with a
# request producer; prints the UI URL and login. Ctrl-C stops everything; state stays in .warpspeed/.
airflow: setup
	WINDOW_MINUTES=$(WINDOW_MINUTES) $(PY) -m warpspeed.embedded.live

# The production rehearsal (docs/emr.md): `make airflow` with compute_backend = emr on an EMR and Glue
# control plane (moto, emulated), S3Proxy and a Spark standalone cluster on loopback; every step's command
# line runs as EMR would run it. WINDOW_MINUTES (default 5); REHEARSAL_IDLE_SECONDS shortens the profiles'
# idle auto-termination. A Spot loss on request: `.venv/bin/python -m warpspeed.embedded.rehearsal spot`.
REHEARSAL_WINDOW_MINUTES ?= 5
rehearsal: setup
	WINDOW_MINUTES=$(REHEARSAL_WINDOW_MINUTES) $(PY) -m warpspeed.embedded.rehearsal

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
