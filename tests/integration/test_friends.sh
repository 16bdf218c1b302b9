#!/usr/bin/env bash
# Relay friends through the CLI: add, list, remove, bad input; a relay
# refuses a node that is not its friend and links once it is one.
KITH=$1
. "$(dirname "$0")/lib.sh"

k relay init --name relay >/dev/null
k amy init --name amy >/dev/null
start_node relay --relay
start_node amy
rid=$(k relay --json id | json_field node_id)
aid=$(k amy --json id | json_field node_id)
rport=$(k relay --json status | json_field port)

out=$(k amy --json friend add "$rid" --addr "127.0.0.1:$rport" --name hub)
check "amy adds the relay as a friend" test "$(json_field name <<<"$out")" = hub
check "friend list shows it" grep -q "$rid" <(k amy friend list)
check "  ... with its address" \
  test "$(k amy --json friend list | json_field addr)" = "127.0.0.1:$rport"

out=$(k amy friend add nonsense 2>&1) && rc=0 || rc=$?
check "a malformed node id is refused" test "$rc" -eq 1
out=$(k amy friend add "$rid" --addr "localhost" 2>&1) && rc=0 || rc=$?
check "an address without a port is refused" test "$rc" -eq 1
out=$(k amy friend remove "$aid" 2>&1) && rc=0 || rc=$?
check "removing a non-friend is refused" test "$rc" -eq 1
echo "  amy: $out"

relay_linked() { k amy --json peers | grep -q "$rid"; }
sleep 6
check "the relay does not link a stranger" bash -c "! $KITH --home $(home amy) --json peers | grep -q $rid"
check "  ... and says so in its log" grep -q "not a friend" "$WORK/relay.log"

k relay friend add "$aid" --name amy >/dev/null
check "once friends, amy links to the relay" wait_for 15 relay_linked
check "the relay lists amy" grep -q "$aid" <(k relay friend list)

k amy friend remove "$rid" >/dev/null
check "after remove, the list is empty" test -z "$(k amy --json friend list)"
finish
