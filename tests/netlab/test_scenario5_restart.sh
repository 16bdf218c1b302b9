#!/usr/bin/env bash
# Scenario 5: bob, behind NAT, is restarted. He comes back into his group
# by himself, from the addresses he remembers, without a new invite, and
# catches up with what he missed.
# Usage: test_scenario5_restart.sh path/to/kith
KITH=${1:-}
. "$(dirname "$0")/netlib.sh"
netlab_need_node_flags
netlab_up cone cone
BACK_S=60

start_trio || { fail "start the nodes and make friends"; exit 1; }
check "bob joins alice's group" group_and_join lab5
join_ms=$JOIN_MS
k alice send lab5 "s5 before the restart" >/dev/null
check "bob sees the message" wait_for 20 log_has bob lab5 "s5 before the restart"
check "alice-bob link up" wait_for 30 has_peer alice "$BOB"

check "bob stops" stop_node bob
k alice send lab5 "s5 while bob was away" >/dev/null
t0=$(now_ms)
check "bob starts again (same home, no new invite)" restart_node bob
in_group() { k bob --json group list | grep -q "$GID"; }
check "bob is still in the group" in_group
check "bob catches up with what he missed" \
  wait_for $BACK_S log_has bob lab5 "s5 while bob was away"
t_back=$(($(now_ms) - t0))
k bob send lab5 "s5 bob is back" >/dev/null
check "alice sees bob's message after his restart" \
  wait_for 15 log_has alice lab5 "s5 bob is back"
check "alice-bob link back" wait_for 10 has_peer bob "$ALICE"
echo "  bob back in the group $t_back ms after his restart"
show_link bob alice "$ALICE"
result 5 "$join_ms" "$(peer_field bob "$ALICE" path)" "back_ms=$t_back"
finish
