#!/usr/bin/env bash
# Paths (docs/protocol.md 9.4) on one machine: with a relay friend on both
# sides, a join's link starts on the relay friend (the first path that
# works) and moves to the direct path as soon as ICE has it, on the same
# session: the history that flows meanwhile arrives whole, in order and
# once, and the link is never re-made. kith peers says since when the path
# is in use.
KITH=$1
. "$(dirname "$0")/lib.sh"

for n in pub alice bob; do k $n init --name $n >/dev/null; done
start_node pub --relay
start_node alice
start_node bob
pid=$(k pub --json id | json_field node_id)
aid=$(k alice --json id | json_field node_id)
bid=$(k bob --json id | json_field node_id)
pport=$(k pub --json status | json_field port)
k pub friend add "$aid" --name alice >/dev/null
k pub friend add "$bid" --name bob >/dev/null
k alice friend add "$pid" --addr "127.0.0.1:$pport" --name pub >/dev/null
k bob friend add "$pid" --addr "127.0.0.1:$pport" --name pub >/dev/null
linked() { k "$1" --json peers | grep -q "$2"; }
check "alice links to her relay friend" wait_for 20 linked alice "$pid"
check "bob links to his relay friend" wait_for 20 linked bob "$pid"

k alice group create paths >/dev/null
count=1500 # 1.5 MB: the move happens while the history flows
pad=$(printf '%0990d' 0)
seq 1 $count | sed "s/^/history line $pad /" |
  k alice send paths - --lines >/dev/null
code=$(k alice --json invite paths | json_field code)
t0=$(now_ms)
check "bob joins" k bob join "$code" --timeout 60
echo "  join: $(($(now_ms) - t0)) ms"

path_of() { k "$1" --json peers | jq -r --arg id "$2" 'select(.node_id == $id) | .path'; }
is_host() { test "$(path_of "$1" "$2")" = host; }
check "bob's link to alice ends direct (host)" wait_for 10 is_host bob "$aid"
check "alice's link to bob ends direct (host)" wait_for 10 is_host alice "$bid"
check "the link started on the relay friend and moved" \
  grep -q "link to ${aid:0:8} moves from friend-relay to host" "$WORK/bob.log"
check "  ... on both sides" \
  grep -q "link to ${bid:0:8} moves from friend-relay to host" "$WORK/alice.log"
check "  ... without re-making the link" \
  test "$(grep -c "link to ${aid:0:8} up" "$WORK/bob.log")" -eq 1
texts() { k "$1" --json log paths | jq -r 'select(.type == "message") | .text'; }
check "bob holds the whole history, once" \
  diff <(texts bob | sort) <(seq 1 $count | sed "s/^/history line $pad /" | sort)
check "  ... in alice's order" diff <(texts bob) <(texts alice)
for i in $(seq 20); do k bob send paths "after the move $i" >/dev/null; done
check "alice gets bob's messages over the direct path" \
  wait_for 15 log_has alice paths "after the move 20"
check "one state" wait_for 10 same_state paths alice bob
since=$(k bob --json peers | jq -r --arg id "$aid" 'select(.node_id == $id) | .path_s')
check "kith peers says for how long the path is in use" test -n "$since"
echo "  bob -> alice: $(path_of bob "$aid") for $since s"
finish
