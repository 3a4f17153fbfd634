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

.PHONY: setup setup-files demo airflow rehearsal soak test lint typecheck unit integration live bench bench-rehearsal clean chromium wheel-smoke

# Two jobs at a time: local Spark's class archive (one JVM, one core, about 30 s) is written beside the
# embedded servers' (one after another, about 8 s)
setup:
	@$(MAKE) --no-print-directory -j2 setup-files

setup-files: $(VENV)/.installed $(JARS)/.fetched $(JARS)/iceberg-rest-launcher/source.sha256 \
  $(JARS)/cds/.spark $(JARS)/cds/.servers

$(VENV)/.installed: pyproject.toml tests/gc_threshold.pth
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv
	# uv's cache grows by about 1.6 GB per fresh install (pyspark is an sdist, built and unpacked
	# again); over repeated CI runs on one machine it reached 72 GB and filled the disk: drop what
	# no install uses any more
	$(VENV)/bin/uv cache prune --quiet || true
	# --compile-bytecode: pip writes .pyc files at install time, uv only when asked; without them every
	# Python process (each airflow command, task and server) compiles Airflow from source again where
	# PYTHONDONTWRITEBYTECODE is set (2.5x the CPU of an Airflow import). Here uv's install and compile
	# took 48.5 CPU-s in all, `python -m compileall -j 0` of the same files alone 69.1.
	# --offline first: from uv's cache alone when it holds every package. Online, uv revalidates each
	# download and the index here answers "modified" every time, so pyspark's sdist was downloaded and built
	# again on every install (15 CPU-s, 16 s); a machine without the packages cached installs online.
	$(VENV)/bin/uv pip install --python $(PY) --quiet --compile-bytecode --offline -e ".[dev,models,embedded]" \
	  2>/dev/null || $(VENV)/bin/uv pip install --python $(PY) --quiet --compile-bytecode -e ".[dev,models,embedded]"
	# the test suite's GC thresholds in every interpreter of this venv, when the suite sets them (tests/__init__.py)
	cp tests/gc_threshold.pth "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/"
	touch $@

# `warpspeed setup`, as a wheel user runs it: the jars of local Spark (warpspeed.embedded.jars
# lists them) and the embedded servers' classpaths (ElasticMQ = SQS, Iceberg REST catalog,
# S3Proxy = S3) from the poms shipped in the package, with Maven, then our launcher of the REST
# catalog (javac); it writes the stamps and skips what is up to date.
SERVER_POMS := $(wildcard provider/warpspeed/embedded/maven/*/pom.xml)

$(JARS)/.fetched: $(VENV)/.installed provider/warpspeed/embedded/jars.py $(SERVER_POMS)
	$(PY) -m warpspeed.cli setup --jars-dir $(JARS)

# Our launcher of the embedded REST catalog (loopback only, a bearer token, no stack traces in
# answers), compiled against the catalog's classpath by `warpspeed setup`. The stamp is the first
# 16 hex digits of the source's SHA-256: the provider compiles it again on first use when the
# stamp does not match.
LAUNCHER_SRC := provider/warpspeed/embedded/maven/iceberg-rest/WarpspeedRestCatalog.java

$(JARS)/iceberg-rest-launcher/source.sha256: $(LAUNCHER_SRC) $(JARS)/.fetched
	$(PY) -m warpspeed.cli setup --jars-dir $(JARS)
	touch $@

# local Spark's class archive for the test suite's drivers (warpspeed.embedded.spark_archive): one small
# Spark job, about 30 CPU seconds
$(JARS)/cds/.spark: provider/warpspeed/embedded/spark_archive.py $(JARS)/.fetched
	$(PY) -m warpspeed.embedded.spark_archive --jars-dir $(JARS)
	touch $@

# the embedded JVM servers' class archives (warpspeed.embedded.server_archives): each server started once
# until it answers, before `make test`'s lanes start theirs all at once (each would write its own)
$(JARS)/cds/.servers: provider/warpspeed/embedded/server_archives.py $(JARS)/iceberg-rest-launcher/source.sha256
	$(PY) -m warpspeed.embedded.server_archives --jars-dir $(JARS)
	touch $@

demo: setup
	$(PY) -m warpspeed.cli demo

# A real Airflow 3 (api-server, scheduler, dag-processor, triggerer) on the embedded stack with a
# request producer; prints the UI URL and login. Ctrl-C stops everything; state stays in .warpspeed/.
airflow: setup
	WINDOW_MINUTES=$(WINDOW_MINUTES) $(PY) -m warpspeed.embedded.live

# The production rehearsal (docs/emr.md): `make airflow` with compute_backend = emr on an EMR and Glue
# control plane (moto, emulated), S3Proxy and a Spark standalone cluster on loopback; every step's command
# line runs as EMR would run it; one S3Proxy (the live stack's) serves both. WINDOW_MINUTES (default 5);
# REHEARSAL_IDLE_SECONDS shortens the profiles' idle auto-termination. A Spot loss on request:
# `.venv/bin/python -m warpspeed.embedded.rehearsal spot`.
REHEARSAL_WINDOW_MINUTES ?= 5
rehearsal: setup
	WINDOW_MINUTES=$(REHEARSAL_WINDOW_MINUTES) $(PY) -m warpspeed.embedded.rehearsal

# The live stack under hostile load (5,000 requests over 10 one-minute windows, 6% hostile, 6%
# re-sent), SIGKILLs of scheduler/triggerer/tasks and SQS faults, then an audit: prints
# `SOAK {json}`, exits 1 if anything was lost, scored twice or dead-lettered without a reason.
# SOAK_REQUESTS, SOAK_WINDOWS, SOAK_KILLS, SOAK_FAULT_RATE change the load; state in .warpspeed/soak.
# SOAK_BACKEND=emr runs it on the production rehearsal (every batch an EMR step; docs/emr.md).
soak: setup
	$(PY) -m warpspeed.embedded.soak.run

lint: setup
	$(VENV)/bin/ruff check provider spark_jobs dags plugins maintenance tests benchmarks

typecheck: setup
	$(VENV)/bin/mypy

# Test tiers (pyproject.toml's markers say what each proves). `make unit` is the fast lane: no
# server, Spark session or JVM, under a minute in two pytest-xdist workers (it draws a fifth of the
# planner's property examples); `make integration` runs the real pieces on loopback and a smoke run
# of every benchmark; `make live` the live Airflow stack (minutes, mostly waiting for windows).
unit: setup
	WARPSPEED_FAST_LANE=1 $(VENV)/bin/pytest -p no:cacheprovider -n 2 -m unit tests/unit tests/dags

integration: setup
	$(VENV)/bin/pytest -p no:cacheprovider -m integration tests

live: setup chromium
	$(VENV)/bin/pytest -p no:cacheprovider -m live tests/live tests/bench

# Headless Chromium for the dashboard and live UI tests (Debian package; they skip, saying why, without it).
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); } || \
	  echo "chromium not installed: the dashboard's browser check will skip"

# Every check: ruff, then mypy and every test in lanes (tests/lanes.sh: the DAG and unit tests in the
# foreground; mypy then the wheel user's page, integration, the live stack then the maintenance DAG run,
# the soak then the preprocessing DAG run, the concurrent commits and the embedded servers, and the rehearsal
# then the Airflow database dump and the wheel plugin beside them); fails if any fails.
# `--durations=25` (pyproject) lists the slowest tests of each lane.
test: setup chromium
	VENV=$(VENV) bash tests/lanes.sh

# Every figure: benchmarks/bench_*.py, then benchmarks/slow/ (the EMR path on the rehearsal, minutes).
bench: setup
	$(PY) benchmarks/run.py
	$(PY) benchmarks/run.py --slow

# rehearsal_window_seconds and rehearsal_vs_local_window (benchmarks/slow/), with their phases: one window
# through the EMR backend on the rehearsal vs the local warm engine (the last part of `make bench`, alone).
bench-rehearsal: setup
	$(PY) benchmarks/run.py --slow rehearsal

# Build the wheel, install it into a fresh venv under /tmp and run the demo's DAG from a copy of dags/.
wheel-smoke: setup
	bash tests/wheel_smoke.sh

clean:
	rm -rf .warpspeed
