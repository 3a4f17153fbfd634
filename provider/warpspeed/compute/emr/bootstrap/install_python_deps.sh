#!/bin/bash
# Warp Speed's EMR bootstrap action: install the jobs' Python libraries with the cluster's interpreter.
#
#   install_python_deps.sh --python /usr/bin/python3.11 "mlflow-skinny>=3.17,<4" "pyiceberg[pyarrow,glue]>=0.12,<0.13" ...
#
# EMR runs it on every node as the node joins (primary, core, and every task node, Spot ones
# included), as the hadoop user, before applications start. The profile's `python:` names the
# interpreter (EMR 7.x ships 3.9 as the default `python3` and 3.11; the job code needs 3.11) and
# `{python}` in the profile's args expands to it. A failure fails the node's bootstrap, and EMR
# replaces the node (or, on the primary, fails the cluster) with this script's message in the
# bootstrap log: <log_uri>/<cluster>/node/<instance>/bootstrap-actions/1/stderr.gz.
#
# Staged by Warp Speed under <storage_prefix>/bootstrap/<content hash>/ (warpspeed.compute.staging).
# WARPSPEED_BOOTSTRAP_SUDO="" installs without sudo (an interpreter the user owns, e.g. a venv).
set -euo pipefail

python=/usr/bin/python3.11
if [ "${1:-}" = "--python" ]; then
  python="${2:?--python needs a path}"
  shift 2
fi
sudo="${WARPSPEED_BOOTSTRAP_SUDO-sudo}"
if [ "$(id -u)" = 0 ]; then sudo=""; fi

say() { echo "warpspeed bootstrap: $*" >&2; }

if [ ! -x "$python" ]; then
  say "interpreter $python is not on this node: set the cluster profile's python: to one the EMR release ships (EMR 7.x: /usr/bin/python3.11)"
  exit 2
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  say "$python is $("$python" -V 2>&1); Warp Speed's jobs need Python 3.11 or later: set the cluster profile's python:"
  exit 3
fi
if ! "$python" -m pip --version >/dev/null 2>&1; then
  say "no pip for $python; installing it"
  $sudo "$python" -m ensurepip --upgrade >/dev/null 2>&1 || $sudo dnf install -y -q "$(basename "$python")-pip"
fi
if [ "$#" -eq 0 ]; then
  say "no requirements given; $python is ready"
  exit 0
fi
say "installing with $python: $*"
$sudo "$python" -m pip install --no-cache-dir --quiet "$@"
say "ready: $("$python" -V 2>&1) with $*"
