#!/usr/bin/env bash
# `make test`: ruff first; then every other check in lanes that share the machine's cores while each
# waits for its own servers, windows and clusters:
#   - in the foreground, the DAG and unit tests (their output streams);
#   - in the background, mypy then the wheel user's docs/byo-model.md (mypy ends early); the integration
#     tests with every bench module's smoke run; the live stack with bench_live's smoke run, then the
#     maintenance DAG run; the short soak, then the preprocessing DAG run, the concurrent commits and the
#     embedded servers' tests; the EMR rehearsal, then the Airflow database dump and the wheel plugin tests.
# The foreground's output is also kept, so that its FAILED/ERROR lines come last with the others'.
# The suite is CPU-bound on two cores: one foreground lane of DAG, unit and integration tests alone
# ran longer than these lanes side by side, and the soak then the rehearsal in one lane made the
# longest lane (a fresh clone took 2077 s in four lanes; green runs in these six took 1500-1884 s). The lanes split the
# suite by folder and marker so that each test runs in exactly one of them. The background lanes'
# output is printed after the foreground's, then every background lane's FAILED/ERROR lines, then
# one line with every exit code; fails if any lane fails, and pytest's exit 5 (no tests collected)
# counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTEST=("$VENV/bin/pytest" -p no:cacheprovider)
REST="not live and not rehearsal"
# The two longest DAG runs run after the live and the soak lanes' own tests, which end first (in a fresh
# clone the foreground took 1186 s, the live lane 549 s and the soak 581 s; these two took 401 s and 186 s
# of the foreground's time); so does the longest integration test, since the integration lane then ended
# last (ci28: integration 1134 s, its concurrent commits 105 s; the soak lane 868 s)
AFTER_LIVE=tests/dags/test_maintenance_dag_run.py
AFTER_SOAK=tests/dags/test_preprocessing_dag_run.py
# The integration lane still ended last, alone on the machine for its last 100-120 s (ci41: 1243 s, the
# rehearsal lane 1059 s; ci47: 1210 s, the foreground 1097 s, the soak lane 1010 s): integration files
# with servers of their own and no Spark session run after the soak and the rehearsal instead
AFTER_SOAK_TOO="tests/integration/test_concurrent_commits.py tests/integration/test_embedded_servers.py"
AFTER_REHEARSAL="tests/integration/test_airflow_db_dump.py tests/integration/test_wheel_plugin.py"
MOVED=$(for f in $AFTER_SOAK_TOO $AFTER_REHEARSAL; do printf ' --ignore=%s' "$f"; done)
FOREGROUND=(-m "$REST" tests/dags tests/unit --ignore=$AFTER_LIVE --ignore=$AFTER_SOAK)
BYO=tests/live/test_byo_model_doc.py
# mypy's cache lives outside the checkout, as uv's and Maven's do; mypy compares each module's hash, so
# what changed is checked again. A whole check took 37.3 CPU-s; a fresh clone (its own venv) with the
# cache another clone left 17.5; the same venv again 1.1. The first run on a machine pays the whole check.
export MYPY_CACHE_DIR=${MYPY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warpspeed/mypy}
NAMES=("mypy, then the wheel user's page" integration "live, then the maintenance DAG run" \
       "soak, then the preprocessing DAG run, the concurrent commits and the embedded servers" \
       "rehearsal, then the dump test and the wheel's plugin")
# a lane of two commands stops at Ctrl-C (pytest exits 2 on SIGINT, and the lane would go on to the next)
LANES=(
  "trap 'exit 130' INT; $VENV/bin/mypy; mypy=\$?; ${PYTEST[*]} -m live $BYO; byo=\$?; echo \"mypy: \$mypy, byo: \$byo\"
   exit \$(( mypy != 0 || byo != 0 ))"
  "${PYTEST[*]} -m '$REST' tests --ignore=tests/dags --ignore=tests/unit$MOVED"
  "trap 'exit 130' INT; ${PYTEST[*]} -m live tests --ignore=tests/live/test_soak.py --ignore=$BYO; live=\$?
   ${PYTEST[*]} -m '$REST' $AFTER_LIVE; after=\$?; echo \"live: \$live, then $AFTER_LIVE: \$after\"
   exit \$(( live != 0 || after != 0 ))"
  "trap 'exit 130' INT; ${PYTEST[*]} -m live tests/live/test_soak.py; soak=\$?
   ${PYTEST[*]} -m '$REST' $AFTER_SOAK $AFTER_SOAK_TOO; after=\$?
   echo \"soak: \$soak, then $AFTER_SOAK $AFTER_SOAK_TOO: \$after\"
   exit \$(( soak != 0 || after != 0 ))"
  "trap 'exit 130' INT; ${PYTEST[*]} -m rehearsal tests; rehearsal=\$?
   ${PYTEST[*]} -m '$REST' $AFTER_REHEARSAL; after=\$?; echo \"rehearsal: \$rehearsal, then $AFTER_REHEARSAL: \$after\"
   exit \$(( rehearsal != 0 || after != 0 ))"
)

"$VENV/bin/ruff" check provider spark_jobs dags plugins maintenance tests benchmarks || exit 1
# Bytecode for this checkout's own modules (`make setup` compiles the venv's): where PYTHONDONTWRITEBYTECODE
# is set, every process of the suite (airflow commands, tasks, servers) would compile them again.
env -u PYTHONDONTWRITEBYTECODE "$VENV/bin/python" -m compileall -q -j 0 provider spark_jobs dags plugins maintenance \
  tests benchmarks >/dev/null || exit 1

logs=$(mktemp -d "${TMPDIR:-/tmp}/warpspeed-lanes.XXXXXX")
pids=()
set -m  # job control while starting them: each gets its own process group and keeps SIGINT (teardown)
for i in "${!LANES[@]}"; do
  bash -c "${LANES[$i]}" >"$logs/$i.log" 2>&1 &
  pids+=($!)
done
set +m  # the foreground runs in this script's process group: Ctrl-C reaches it, then the trap stops the rest
show_lanes() {
  for i in "${!LANES[@]}"; do
    echo "=============== lane ${NAMES[$i]}: ${LANES[$i]} (run beside the foreground) ==============="
    cat "$logs/$i.log"
  done
  # every lane's failures once more, last: a log read from its end names them without scrolling
  grep -E '^(FAILED|ERROR) ' "$logs/fg.log" 2>/dev/null | sed "s/^/lane dags and unit: /"
  for i in "${!LANES[@]}"; do
    grep -E '^(FAILED|ERROR) ' "$logs/$i.log" | sed "s/^/lane ${NAMES[$i]}: /"
  done
  rm -rf "$logs"
}
stop_lanes() {
  kill -INT -- "${pids[@]/#/-}" 2>/dev/null
  wait "${pids[@]}" 2>/dev/null
  show_lanes
}
trap 'stop_lanes; exit 130' INT TERM

"${PYTEST[@]}" "${FOREGROUND[@]}" 2>&1 | tee -i "$logs/fg.log"
code=${PIPESTATUS[0]}
codes="dags and unit: $code"
failed=$(( code != 0 ))
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"
  code=$?
  codes+=", ${NAMES[$i]}: $code"
  (( code != 0 )) && failed=1
done
trap - INT TERM
show_lanes
echo "make test exit codes: $codes"
exit "$failed"
