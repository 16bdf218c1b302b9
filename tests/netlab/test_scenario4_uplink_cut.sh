#!/usr/bin/env bash
# Scenario 4: home 1's uplink is cut for 20 s and restored. The nodes
# reconnect by themselves and the messages sent meanwhile, on both sides,
# arrive (bounded wait).
# Usage: test_scenario4_uplink_cut.sh path/to/kith
KITH=${1:-}
. "$(dirname "$0")/netlib.sh"
netlab_need_node_flags
netlab_up cone cone
CUT_S=20
RECONNECT_S=60

start_trio || { fail "start the nodes and make friends"; exit 1; }
check "bob joins alice's group" group_and_join lab4
join_ms=$JOIN_MS
k alice send lab4 "s4 before the cut" >/dev/null
check "bob sees the message before the cut" wait_for 20 log_has bob lab4 "s4 before the cut"
check "alice-bob link up" wait_for 30 has_peer alice "$BOB"
path_before=$(peer_field alice "$BOB" path)
show_link alice bob "$BOB"

echo "  cutting home 1's uplink for $CUT_S s"
lab_uplink r1 down
sleep 2
k bob send lab4 "s4 bob during the cut" >/dev/null
k alice send lab4 "s4 alice during the cut" >/dev/null ||
  echo "  (alice's send during the cut was refused)"
sleep $((CUT_S - 2))
lab_uplink r1 up
t0=$(now_ms)
echo "  uplink restored"

# One budget for the whole recovery: a node that does not reconnect fails
# once, not once per check.
recovered() { log_has alice lab4 "s4 bob during the cut" && log_has bob lab4 "s4 alice during the cut"; }
check "both sides get the messages sent during the cut" wait_for $RECONNECT_S recovered
t_catchup=$(($(now_ms) - t0))
if log_has alice lab4 "s4 bob during the cut"; then pass "  alice has bob's"; else fail "  alice has bob's"; fi
if log_has bob lab4 "s4 alice during the cut"; then pass "  bob has alice's"; else fail "  bob has alice's"; fi
echo "  after the restore: caught up in $t_catchup ms"
check "alice-bob link back" wait_for 10 has_peer alice "$BOB"
t_link=$(($(now_ms) - t0))
k alice send lab4 "s4 after the cut" >/dev/null
check "a message after the cut arrives" wait_for 10 log_has bob lab4 "s4 after the cut"
check "one state_hash" wait_for 10 same_state lab4 alice bob
show_link alice bob "$BOB"
result 4 "$join_ms" "$(peer_field alice "$BOB" path)" \
  "path_before=$path_before catchup_ms=$t_catchup link_ms=$t_link"
finish
