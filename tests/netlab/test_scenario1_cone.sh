#!/usr/bin/env bash
# Scenario 1: cone NAT <-> cone NAT. A public relay node pub is the relay
# friend of alice (home 1) and bob (home 2). alice creates a group and
# invites; bob joins by the code; they chat. The alice-bob link must be
# direct through the NATs (srflx or prflx), not relayed.
# Usage: test_scenario1_cone.sh path/to/kith
KITH=${1:-}
. "$(dirname "$0")/netlib.sh"
netlab_need_node_flags
netlab_up cone cone

start_trio || { fail "start the nodes and make friends"; exit 1; }
check "bob joins alice's group by code" group_and_join lab1
join_ms=$JOIN_MS

k alice send lab1 "s1 hello from alice" >/dev/null
k bob send lab1 "s1 hello from bob" >/dev/null
check "bob sees alice's message" wait_for 20 log_has bob lab1 "s1 hello from alice"
check "alice sees bob's message" wait_for 20 log_has alice lab1 "s1 hello from bob"
check "one state_hash" wait_for 20 same_state lab1 alice bob

check "alice has a link to bob" wait_for 30 has_peer alice "$BOB"
check "bob has a link to alice" wait_for 30 has_peer bob "$ALICE"
# ICE may nominate a better pair a little after the first one: give it time
check "alice-bob link is direct (srflx/prflx)" \
  wait_for 15 path_in alice "$BOB" srflx prflx
check "bob-alice link is direct (srflx/prflx)" \
  wait_for 15 path_in bob "$ALICE" srflx prflx
show_link alice bob "$BOB"
show_link bob alice "$ALICE"
result 1 "$join_ms" "$(peer_field bob "$ALICE" path)"
finish
