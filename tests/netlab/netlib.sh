# shellcheck shell=bash
# kith network-lab tests: shared helpers in the style of
# tests/integration/lib.sh. Source it after setting KITH (the kith binary,
# or empty for lab-only tests). It sources lab.sh, skips (exit 77) with a
# reason when the lab cannot run here, and installs one cleanup trap that
# stops the nodes, the watchdog and the lab on every exit, including
# SIGINT/SIGTERM and a failed check.

set -uo pipefail

NETLAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$NETLAB_DIR/lab.sh"

NETLAB_DEADLINE=${NETLAB_DEADLINE:-240} # s; below ctest's TIMEOUT 300
NETLAB_NODE_START_S=15
declare -A NODE_PID=() NODE_NS=() NODE_ARGS=()
FAILS=0
PASSES=0
NETLAB_WATCHDOG=""

lab_require

# netlab_need_node_flags: skip unless the kith binary has the connectivity
# features the scenarios drive (--stun, --turn, --relay, friend, peers).
netlab_need_node_flags() {
  [ -x "${KITH:-}" ] || lab_skip "no kith binary given (usage: $0 path/to/kith)"
  local help
  help=$("$KITH" node --help 2>&1)
  local f
  for f in --stun --turn --relay; do
    grep -q -- "$f" <<<"$help" ||
      lab_skip "this kith node has no $f option yet (issue 4 not implemented)"
  done
  "$KITH" friend --help >/dev/null 2>&1 ||
    lab_skip "this kith has no 'friend' command yet (issue 4 not implemented)"
}

netlab_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$NETLAB_WATCHDOG" ] && kill "$NETLAB_WATCHDOG" 2>/dev/null
  local n
  for n in "${!NODE_PID[@]}"; do kill -TERM "${NODE_PID[$n]}" 2>/dev/null; done
  for n in "${!NODE_PID[@]}"; do wait "${NODE_PID[$n]}" 2>/dev/null; done
  lab_down
  if [ -n "$LAB_RUN" ] && [ -d "$LAB_RUN" ]; then
    if [ "${KEEP_WORK:-0}" = 1 ] || [ "$FAILS" -gt 0 ] || [ "$rc" -ne 0 ]; then
      for f in "$LAB_RUN"/*.log; do
        [ -f "$f" ] && { echo "--- last lines of $f"; tail -n 40 "$f"; }
      done
      echo "run directory kept: $LAB_RUN"
    else
      rm -rf "$LAB_RUN"
    fi
  fi
  exit "$rc"
}
trap netlab_cleanup EXIT
trap 'echo "interrupted"; exit 130' INT
trap 'echo "terminated (deadline or signal)"; exit 143' TERM

# netlab_up NAT1 NAT2: lab_up plus a watchdog that sends this script
# SIGTERM at the deadline, so that the trap tears the lab down before
# ctest's own timeout would kill us without a chance to clean up. The
# watchdog is a subshell waiting on a FIFO with `read -t` (no child).
netlab_up() {
  lab_up "$1" "$2" || { fail "lab_up $1 $2"; exit 1; }
  local fifo="$LAB_RUN/watchdog.fifo" me=$$
  mkfifo "$fifo"
  (exec 3<>"$fifo"; read -r -t "$NETLAB_DEADLINE" -u 3; kill -TERM "$me") \
    >/dev/null 2>&1 </dev/null &
  NETLAB_WATCHDOG=$!
}

pass() { PASSES=$((PASSES + 1)); echo "ok: $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL: $*"; }
not() { ! "$@"; } # for check: "check WHAT not CMD..."
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

home() { echo "$LAB_RUN/$1"; }
# k NODE ARGS...: the CLI, run in the host namespace: it reaches the node
# through the Unix control socket in the home, across network namespaces.
k() { local n=$1; shift; "$KITH" --home "$(home "$n")" "$@"; }

# start_node NAME ROLE [ARGS...]: runs `kith node --port 7733 ARGS` inside
# the namespace of ROLE and waits (bounded) until its control socket answers.
# The arguments are remembered for restart_node.
start_node() {
  local n=$1 role=$2; shift 2
  NODE_NS[$n]=$role
  NODE_ARGS[$n]="$*"
  # ip netns exec execs kith, so $! is the node and signals reach it
  (exec ip netns exec "$(lab_ns "$role")" "$KITH" --home "$(home "$n")" \
    node --port 7733 "$@" >>"$LAB_RUN/$n.log" 2>&1 </dev/null) &
  NODE_PID[$n]=$!
  for _ in $(seq $((NETLAB_NODE_START_S * 10))); do
    if k "$n" status >/dev/null 2>&1; then return 0; fi
    kill -0 "${NODE_PID[$n]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "node $n did not start; its log:"; tail -n 30 "$LAB_RUN/$n.log"
  return 1
}

stop_node() {
  local n=$1 pid=${NODE_PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  unset "NODE_PID[$n]"
  ! k "$n" status >/dev/null 2>&1
}

# restart_node NAME: stops it if running, starts it again in the same
# namespace with the same arguments.
restart_node() {
  local n=$1
  stop_node "$n" || return 1
  # shellcheck disable=SC2086 # the remembered arguments are word-split
  start_node "$n" "${NODE_NS[$n]}" ${NODE_ARGS[$n]}
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

json_field() { jq -r --arg k "$1" '.[$k]'; }
now_ms() { date +%s%3N; }
node_id() { k "$1" --json id | json_field node_id; } # needs the node up

log_has() { k "$1" log "$2" | grep -q -- "$3"; }

same_state() {
  local g=$1; shift
  test "$(for n in "$@"; do k "$n" --json group info "$g" | json_field state_hash; done |
    sort -u | wc -l)" -eq 1
}

# peer_field NODE PEER_ID FIELD: FIELD of NODE's link to PEER_ID (empty if
# there is no such link now).
peer_field() {
  k "$1" --json peers 2>/dev/null |
    jq -r --arg id "$2" --arg f "$3" 'select(.node_id == $id) | .[$f] // empty' |
    head -n 1
}
has_peer() { [ -n "$(peer_field "$1" "$2" path)" ]; }

# path_in NODE PEER_ID PATH...: is the link's path one of PATH...?
path_in() {
  local p; p=$(peer_field "$1" "$2" path)
  shift 2
  local want
  for want in "$@"; do [ "$p" = "$want" ] && return 0; done
  return 1
}

# until_path SECONDS NODE PEER_ID PATH...: waits (bounded) until the link's
# path is one of PATH...; UNTIL_MS gets how long that took from the call
# (empty if it did not happen in time).
UNTIL_MS=""
until_path() {
  local limit=$1 t0; shift
  t0=$(now_ms)
  UNTIL_MS=""
  wait_for "$limit" path_in "$@" || return 1
  UNTIL_MS=$(($(now_ms) - t0))
}

# within MS LIMIT_MS: is the measured MS set and at most LIMIT_MS?
within() { [ -n "$1" ] && [ "$1" -le "$2" ]; }

# show_link NODE PEER_ID: one line for the report.
show_link() {
  echo "  link $1 -> $2: path=$(peer_field "$1" "$3" path)" \
    "addr=$(peer_field "$1" "$3" addr) rtt_ms=$(peer_field "$1" "$3" rtt_ms)"
}

# timed_join NODE CODE [SECONDS]: joins (giving up after SECONDS, default
# 60), prints the time taken; returns join's status.
JOIN_MS=""
timed_join() {
  local t0 rc
  t0=$(now_ms)
  k "$1" join "$2" --timeout "${3:-60}" >>"$LAB_RUN/$1.cli.log" 2>&1 && rc=0 || rc=$?
  JOIN_MS=$(($(now_ms) - t0))
  echo "  $1: join took $JOIN_MS ms (exit $rc)"
  return "$rc"
}

# init_nodes NAME...: an identity in each home.
init_nodes() {
  local n
  for n in "$@"; do k "$n" init --name "$n" >/dev/null || return 1; done
}

# befriend NODE FRIEND [ADDR]: NODE adds FRIEND to its relay friends
# (both nodes running: `kith id` asks the node).
befriend() {
  local id; id=$(node_id "$2")
  if [ -n "${3:-}" ]; then
    k "$1" friend add "$id" --addr "$3" --name "$2" >/dev/null
  else
    k "$1" friend add "$id" --name "$2" >/dev/null
  fi
}

# start_trio: the usual cast. pub (public segment,
# --relay) is the relay friend of alice (home 1) and bob (home 2), and they
# are its friends; everyone uses coturn for STUN. Sets ALICE, BOB, PUB ids.
start_trio() {
  init_nodes alice bob pub || return 1
  start_node pub pub --stun "$LAB_STUN" --relay || return 1
  start_node alice h1 --stun "$LAB_STUN" || return 1
  start_node bob h2 --stun "$LAB_STUN" || return 1
  trio_friends
}

# trio_friends: with alice, bob and pub running, pub and the two homes
# befriend each other; waits until both homes link to pub. Sets ALICE, BOB
# and PUB.
trio_friends() {
  ALICE=$(node_id alice); BOB=$(node_id bob); PUB=$(node_id pub)
  befriend pub alice && befriend pub bob &&
    befriend alice pub "$LAB_PUB_IP:7733" && befriend bob pub "$LAB_PUB_IP:7733" ||
    return 1
  # Steady state before anything is timed: both homes linked to their relay.
  check "alice links to her relay friend pub" wait_for 30 has_peer alice "$PUB"
  check "bob links to his relay friend pub" wait_for 30 has_peer bob "$PUB"
}

# group_and_join GROUP: alice creates GROUP and invites, bob joins by the
# code (timed: JOIN_MS). Sets GID.
GID=""
group_and_join() {
  GID=$(k alice --json group create "$1" | json_field group_id)
  local code
  code=$(k alice --json invite "$1" | json_field code)
  [ -n "$GID" ] && [ -n "$code" ] || return 1
  timed_join bob "$code"
}

# cone_symmetric SCENARIO NAT1: alice behind NAT1 (cone or fullcone), bob
# behind a symmetric NAT, pub the relay friend of both, no TURN. bob joins
# alice's group in at most 3 s (on the first path that works), messages
# flow both ways, and after ICE's first attempt (15 s) the path is
# reported. Behind a full cone the link must be direct by then; behind a
# port-restricted cone a direct path cannot exist (the headers of
# test_scenario7 and test_scenario10 say why) and relayed is accepted.
cone_symmetric() {
  local sc=$1 nat1=$2 g="lab$1"
  netlab_up "$nat1" symmetric
  start_trio || { fail "start the nodes and make friends"; exit 1; }
  check "bob joins alice's group by code" group_and_join "$g"
  local join_ms=$JOIN_MS
  check "the join took at most 3 s ($join_ms ms)" within "$join_ms" 3000
  k alice send "$g" "s$sc hello from alice" >/dev/null
  k bob send "$g" "s$sc hello from bob" >/dev/null
  check "bob sees alice's message" wait_for 20 log_has bob "$g" "s$sc hello from alice"
  check "alice sees bob's message" wait_for 20 log_has alice "$g" "s$sc hello from bob"
  check "bob has a link to alice" wait_for 10 has_peer bob "$ALICE"
  # ICE's first attempt ends within 15 s; a direct path is taken by then.
  local direct=(prflx srflx) more=""
  if [ "$nat1" = fullcone ]; then
    check "the link goes direct within 15 s" until_path 15 bob "$ALICE" "${direct[@]}"
    more="direct_after_ms=${UNTIL_MS:-none}"
  else
    sleep 15
    check "the link is direct (prflx/srflx) or on the relay friend" \
      path_in bob "$ALICE" "${direct[@]}" friend-relay
  fi
  local path; path=$(peer_field bob "$ALICE" path)
  # Each end names a direct path by its own view of the pair (one end's
  # prflx can be the other's srflx).
  case $path in
    prflx | srflx)
      echo "  direct: ICE found a path through both NATs"
      check "alice's end is direct too" path_in alice "$BOB" "${direct[@]}"
      ;;
    *)
      echo "  relayed: a $nat1 NAT <-> symmetric NAT has no direct path"
      check "both ends show the same path" path_in alice "$BOB" "$path"
      ;;
  esac
  show_link alice bob "$BOB"
  show_link bob alice "$ALICE"
  result "$sc" "$join_ms" "$path" "$more"
}

# result SCENARIO JOIN_MS PATH [MORE]: the figures of one scenario, one
# line (MORE: e.g. direct_after_ms=...).
result() { echo "RESULT scenario=$1 join_ms=${2:-none} path=${3:-none}${4:+ $4}"; }

finish() {
  echo "$PASSES passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}
