#!/usr/bin/env bash
# Build the provider's wheel, install it into a fresh venv under /tmp (not the checkout) and run
# the demo's scoring window there from a bundle that `warpspeed init` wrote.
# Usage: tests/wheel_smoke.sh   (from the repository root, after `make setup`; ~3-5 min)
# (tests/live/test_byo_model_doc.py goes further: docs/byo-model.md from the wheel, setup included.)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/warpspeed-wheel-XXXXXX)
trap 'rm -rf "$work"' EXIT
uv=$repo/.venv/bin/uv

env -u PYTHONPATH -u VIRTUAL_ENV "$uv" build --wheel --quiet --out-dir "$work/dist" "$repo"
wheel=$(ls "$work"/dist/warpspeed_airflow_provider-*.whl)
echo "built $(basename "$wheel")"
"$uv" venv --quiet --python "$(command -v python3.11 || command -v python3)" "$work/venv"
"$uv" pip install --quiet --compile-bytecode --python "$work/venv/bin/python" "${wheel}[embedded,models]"

cd "$work"
python=$work/venv/bin/python
env -u PYTHONPATH "$python" - <<'PY'
import importlib.util, warpspeed, spark_jobs
assert "site-packages/warpspeed/" in warpspeed.__file__, warpspeed.__file__
assert "site-packages/warpspeed/jobs/spark_jobs/" in spark_jobs.__file__, spark_jobs.__file__
assert importlib.util.find_spec("maintenance") is None  # no top-level job packages installed
print("imports from", warpspeed.__file__)
PY
env -u PYTHONPATH "$work/venv/bin/warpspeed" init "$work/bundle" > /dev/null
cd "$work/bundle"
# Jars are not Python packages: pass where `make setup` put them, like any deployment would.
env -u PYTHONPATH -u WARPSPEED_DAGS_FOLDER -u WARPSPEED_WORKLOADS_FILE WARPSPEED_HOME=$work/home \
  WARPSPEED_JARS_DIR=$repo/.jars "$work/venv/bin/warpspeed" demo | tail -3
