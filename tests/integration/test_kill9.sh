#!/usr/bin/env bash
# kill -9 under load (issue 10): a node is killed 20 times while it sends
# and receives. After each kill its database passes PRAGMA integrity_check,
# and after each restart it still holds every message it acknowledged; at
# the end every acknowledged message is on every node, with one state.
KITH=$1
. "$(dirname "$0")/lib.sh"

command -v sqlite3 >/dev/null || {
  fail "the sqlite3 program is missing (make deps installs it)"
  finish
  exit 1
}
for n in vic pa pb; do k $n init --name $n >/dev/null; done
start_nodes vic pa pb
k pa group create load >/dev/null
code=$(k pa --json invite load --uses 2 | json_field code)
for n in vic pb; do
  check "$n joins" quietly k $n join "$code" --timeout 30
done

# sender NODE TAG: sends until $WORK/stop-TAG exists, appending the id of
# every message the node acknowledged to $WORK/acked-NODE.
sender() {
  local n=$1 tag=$2 i=0 out
  while [ ! -e "$WORK/stop-$tag" ]; do
    i=$((i + 1))
    if out=$(k "$n" --json send load "$tag $i" 2>/dev/null); then
      json_field event_id <<<"$out" >>"$WORK/acked-$n"
    fi
  done
}
ids_of() { k "$1" --json log load | jq -r 'select(.type == "message") | .event_id' | sort -u; }
holds_all() { # holds_all NODE FILE...: NODE's log has every id in FILEs
  local n=$1; shift
  [ -z "$(comm -23 <(sort -u "$@") <(ids_of "$n"))" ]
}
: >"$WORK/acked-vic"
: >"$WORK/acked-pa"
sender pa pa &
pa_sender=$!

bad_db=0
lost=0
for round in $(seq 20); do
  sender vic "vic$round" &
  vic_sender=$!
  sleep_ms $((300 + RANDOM % 1200))
  kill9_node vic
  touch "$WORK/stop-vic$round"
  wait "$vic_sender" 2>/dev/null || true
  ic=$(sqlite3 "$(home vic)/kith.db" "PRAGMA integrity_check" 2>&1)
  [ "$ic" = ok ] || { bad_db=$((bad_db + 1)); echo "  round $round: integrity_check: $ic"; }
  start_nodes vic
  holds_all vic "$WORK/acked-vic" || { lost=$((lost + 1)); echo "  round $round: acknowledged messages missing after the restart"; }
done
touch "$WORK/stop-pa"
wait "$pa_sender" 2>/dev/null || true
echo "  acknowledged: $(wc -l <"$WORK/acked-vic") by the victim, $(wc -l <"$WORK/acked-pa") by pa"

check "integrity_check ok after each of the 20 kills" test "$bad_db" -eq 0
check "no acknowledged message lost by any of the 20 kills" test "$lost" -eq 0
for n in vic pa pb; do
  check "$n holds every acknowledged message" \
    wait_for 30 holds_all "$n" "$WORK/acked-vic" "$WORK/acked-pa"
done
check "one state on all three" wait_for 20 same_state load vic pa pb
check "SIGINT stops all three within 2 s" stop_nodes INT vic pa pb
echo "  slowest exit: $STOP_MS ms"
finish
