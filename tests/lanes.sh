#!/usr/bin/env bash
# `make test`: ruff first; then the live tier in the background, two pytest processes (the live
# stack with bench_live's smoke run and the wheel user's docs/byo-model.md, and the short soak: minutes of
# waiting for windows each), while mypy and every other test run in the foreground. Fails if any
# of them fails; pytest's exit 5 (no tests collected) counts as a failure. The live processes'
# output is printed after the rest's, then one line with every exit code.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTEST=("$VENV/bin/pytest" -p no:cacheprovider)
LIVE_LANES=("tests/live/test_live_stack.py tests/bench tests/live/test_byo_model_doc.py" "tests/live/test_soak.py")

"$VENV/bin/ruff" check provider spark_jobs dags plugins maintenance tests benchmarks || exit 1
# Bytecode for this checkout's own modules (`make setup` compiles the venv's): where PYTHONDONTWRITEBYTECODE
# is set, every process of the suite (airflow commands, tasks, servers) would compile them again.
env -u PYTHONDONTWRITEBYTECODE "$VENV/bin/python" -m compileall -q -j 0 provider spark_jobs dags plugins maintenance \
  tests benchmarks >/dev/null || exit 1

logs=$(mktemp -d "${TMPDIR:-/tmp}/warpspeed-live-tier.XXXXXX")
pids=()
set -m  # job control while starting them: each gets its own process group and keeps SIGINT (teardown)
for i in "${!LIVE_LANES[@]}"; do
  # shellcheck disable=SC2086  # a lane is a list of paths
  "${PYTEST[@]}" -m live ${LIVE_LANES[$i]} >"$logs/$i.log" 2>&1 &
  pids+=($!)
done
set +m  # the rest runs in this script's process group: Ctrl-C reaches both, then the trap stops the live tier
show_live() {
  for i in "${!LIVE_LANES[@]}"; do
    echo "=============== live tier: ${LIVE_LANES[$i]} (run beside the rest) ==============="
    cat "$logs/$i.log"
  done
  rm -rf "$logs"
}
stop_live() {
  kill -INT "${pids[@]}" 2>/dev/null
  wait "${pids[@]}" 2>/dev/null
  show_live
}
trap 'stop_live; exit 130' INT TERM

if ! "$VENV/bin/mypy"; then
  stop_live
  exit 1
fi
"${PYTEST[@]}" -m "not live" tests
codes="the rest: $?"
failed=$(( ${codes##* } != 0 ))
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"
  code=$?
  codes+=", ${LIVE_LANES[$i]}: $code"
  (( code != 0 )) && failed=1
done
trap - INT TERM
show_live
echo "make test exit codes: $codes"
exit "$failed"
