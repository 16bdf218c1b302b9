# kith integration tests: shared helpers. Source it with KITH set to the
# kith binary. Nodes listen on 127.0.0.1 only; every wait is bounded.

set -euo pipefail

KITH=${KITH:?set KITH to the kith binary}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kith-it.XXXXXX")
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
    kill -0 "${NODE_PID[$n]}" 2>/dev/null || break # it exited
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
# (A node that cannot say counts as disagreeing.)
same_state() {
  local g=$1 n h hashes=""
  shift
  for n in "$@"; do
    h=$(k "$n" --json group info "$g" 2>/dev/null | json_field state_hash) || return 1
    [ ${#h} -eq 52 ] || return 1
    hashes="$hashes$h"$'\n'
  done
  test "$(sort -u <<<"${hashes%$'\n'}" | wc -l)" -eq 1
}

# ---- churn: processes, exit times, CPU ----

# proc_gone PID: has the process exited (gone, or a zombie not yet reaped)?
proc_gone() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
  [ -z "$st" ] || [ "$st" = Z ]
}

# stop_nodes SIGNAL NAME...: signals all the nodes at once; each must exit
# within 2 s. One that still runs after 10 s is killed. Sets STOP_MS to the
# slowest exit time in ms and fails if it exceeds 2000.
STOP_MS=0
stop_nodes() {
  local sig=$1; shift
  local t0 n pid slow=0 ok=0 dt
  t0=$(now_ms)
  for n in "$@"; do kill -"$sig" "${NODE_PID[$n]}" 2>/dev/null || true; done
  for n in "$@"; do
    pid=${NODE_PID[$n]}
    while ! proc_gone "$pid" && [ $(($(now_ms) - t0)) -lt 10000 ]; do
      sleep 0.02
    done
    dt=$(($(now_ms) - t0))
    if ! proc_gone "$pid"; then
      echo "node $n did not exit 10 s after SIG$sig; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      ok=1
    fi
    wait "$pid" 2>/dev/null || true
    unset "NODE_PID[$n]"
    [ "$dt" -gt "$slow" ] && slow=$dt
  done
  STOP_MS=$slow
  [ "$ok" -eq 0 ] && [ "$slow" -le 2000 ]
}

# kill9_node NAME: kill -9, no chance to clean up.
kill9_node() {
  kill -KILL "${NODE_PID[$1]}" 2>/dev/null || true
  wait "${NODE_PID[$1]}" 2>/dev/null || true
  unset "NODE_PID[$1]"
}

# start_nodes NAME...: starts them all at once (port 0: new ports), then
# waits until each answers (at most 20 s in all).
start_nodes() {
  local n
  for n in "$@"; do
    (exec "$KITH" --home "$(home "$n")" node --port 0 --bind 127.0.0.1 \
      >>"$WORK/$n.log" 2>&1 </dev/null) &
    NODE_PID[$n]=$!
  done
  for n in "$@"; do
    wait_for 20 k "$n" status || { echo "node $n did not start"; return 1; }
  done
}

# cpu_ticks PID: user + system CPU time of the process so far (clock ticks).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# cpu_percent SECONDS NAME...: CPU use of each node over the next SECONDS,
# in percent of one core: prints "NAME PERCENT" (one decimal) per node.
cpu_percent() {
  local secs=$1; shift
  local hz n
  declare -A before=()
  hz=$(getconf CLK_TCK)
  for n in "$@"; do before[$n]=$(cpu_ticks "${NODE_PID[$n]}"); done
  sleep "$secs"
  for n in "$@"; do
    echo "$n $(($(cpu_ticks "${NODE_PID[$n]}") - before[$n]))"
  done | awk -v hz="$hz" -v s="$secs" '{printf "%s %.1f\n", $1, $2 * 100 / (hz * s)}'
}

# peers_up NODE N: does NODE have at least N links up now?
peers_up() { [ "$(k "$1" --json peers | wc -l)" -ge "$2" ]; }

# count_in_log NODE GROUP TEXT: how many messages of GROUP on NODE hold TEXT.
count_in_log() { k "$1" log "$2" | grep -c -- "$3" || true; }

# quietly COMMAND...: runs it with its output thrown away (for check).
quietly() { "$@" >/dev/null 2>&1; }

# sleep_ms MS: sleeps that many milliseconds.
sleep_ms() { sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }
