#!/usr/bin/env bash
# One sync path: a newcomer gets a group's history through the gossip
# engine's reconciliation, even when it is longer than what the engine
# caches (1,024 events) or holds while parents are missing: kith join
# returns once admitted and synced, with the whole history there.
KITH=$1
. "$(dirname "$0")/lib.sh"

for n in old new; do k $n init --name $n >/dev/null; done
start_nodes old new
k old group create long >/dev/null
count=1100
for i in $(seq $count); do k old send long "history $i" >/dev/null; done
code=$(k old --json invite long | json_field code)
t0=$(now_ms)
check "the newcomer joins" k new join "$code" --timeout 60
echo "  join with $count messages of history: $(($(now_ms) - t0)) ms"
texts() { k "$1" --json log long | jq -r 'select(.type == "message") | .text'; }
check "right after the join it holds the whole history" \
  test "$(texts new | wc -l)" -eq "$count"
check "  ... in order" test "$(texts new | tail -1)" = "history $count"
check "both show one state" same_state long old new
finish
