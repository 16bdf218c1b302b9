# kith integration tests: shared helpers. Source it with KITH set to the
# kith binary. Nodes listen on 127.0.0.1 only; every wait is bounded.

set -euo pipefail

KITH=${KITH:?set KITH to the kith binary}
WORK=$(mktemp -d /tmp/kith-it.XXXXXX)
declare -A NODE_PID=()
FAILS=0
PASSES=0

cleanup() {
  local rc=$?
  for name in "${!NODE_PID[@]}"; do
    kill "${NODE_PID[$name]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "${KEEP_WORK:-0}" = 1 ] || [ "$FAILS" -gt 0 ] || [ "$rc" -ne 0 ]; then
    for f in "$WORK"/*.log; do
      [ -f "$f" ] && { echo "--- last lines of $f"; tail -n 30 "$f"; }
    done
    echo "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

home() { echo "$WORK/$1"; }
k() { local n=$1; shift; "$KITH" --home "$(home "$n")" "$@"; }

pass() { PASSES=$((PASSES + 1)); echo "ok: $*"; }
fail() {
  FAILS=$((FAILS + 1))
  echo "FAIL: $*"
}
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

# start_node NAME [ARGS...]: starts a node in the background (extra
# arguments go to kith node) and waits until its control socket answers (at
# most 15 s).
start_node() {
  local n=$1; shift
  # exec, so that $! is the node itself and a signal reaches it
  (exec "$KITH" --home "$(home "$n")" node --port 0 --bind 127.0.0.1 "$@" \
    >>"$WORK/$n.log" 2>&1 </dev/null) &
  NODE_PID[$n]=$!
  for _ in $(seq 150); do
    if k "$n" status >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "node $n did not start; its log:"; cat "$WORK/$n.log"
  return 1
}

stop_node() {
  local n=$1
  kill -TERM "${NODE_PID[$n]}"
  wait "${NODE_PID[$n]}" 2>/dev/null || true
  unset "NODE_PID[$n]"
  if k "$n" status >/dev/null 2>&1; then
    echo "node $n still answers after SIGTERM"; return 1
  fi
}

# wait_for SECONDS COMMAND...: retries every 0.2 s until it succeeds.
wait_for() {
  local limit=$1; shift
  local tries=$((limit * 5))
  for _ in $(seq "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

# json_field KEY: reads one JSON object on stdin, prints the value of KEY.
json_field() { jq -r --arg k "$1" '.[$k]'; }

now_ms() { date +%s%3N; }

finish() {
  echo "$PASSES passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}

# log_has NODE GROUP TEXT: does NODE's log of GROUP contain TEXT now?
# (Use it under wait_for: each try reads the log afresh.)
log_has() { k "$1" log "$2" | grep -q -- "$3"; }

# same_state GROUP NODE...: do all these nodes show one state_hash now?
same_state() {
  local g=$1; shift
  test "$(for n in "$@"; do k "$n" --json group info "$g" | json_field state_hash; done |
    sort -u | wc -l)" -eq 1
}
