#!/usr/bin/env bash
# Build the provider's wheel, install it into a fresh venv under /tmp (not the checkout) and run
# the demo's scoring DAG there with only a copy of the DAG bundle (dags/ and its config/).
# Usage: tests/wheel_smoke.sh   (from the repository root, after `make setup`; ~3-5 min)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/warpspeed-wheel-XXXXXX)
trap 'rm -rf "$work"' EXIT
uv=$repo/.venv/bin/uv

"$repo/.venv/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$repo"
wheel=$(ls "$work"/dist/warpspeed_airflow_provider-*.whl)
echo "built $(basename "$wheel")"
"$uv" venv --quiet --python "$(command -v python3.11 || command -v python3)" "$work/venv"
"$uv" pip install --quiet --python "$work/venv/bin/python" "${wheel}[embedded,models]"

mkdir -p "$work/bundle"
cp -r "$repo/dags" "$work/bundle/dags"
cd "$work/bundle"
python=$work/venv/bin/python
"$python" - <<'PY'
import warpspeed, spark_jobs, maintenance
for m in (warpspeed, spark_jobs, maintenance):
    assert "site-packages" in m.__file__, m.__file__
print("imports from", warpspeed.__file__)
PY
# Jars are not Python packages: pass where `make setup` put them, like any deployment would.
WARPSPEED_HOME=$work/home WARPSPEED_JARS_DIR=$repo/.jars WARPSPEED_DAGS_FOLDER=$work/bundle/dags \
  "$python" -m warpspeed.embedded.demo | tail -3
