#!/usr/bin/env bash
# Scenario 1: cone NAT <-> cone NAT. A public relay node pub is the relay
# friend of alice (home 1) and bob (home 2). alice creates a group and
# invites; bob joins by the code; they chat. The join takes at most 2 s
# (it may start on the relay friend: every way is tried at once), and the
# alice-bob link is direct through the NATs (srflx or prflx) within 10 s of
# the join, not relayed (docs/protocol.md 9.4).
# Usage: test_scenario1_cone.sh path/to/kith
KITH=${1:-}
. "$(dirname "$0")/netlib.sh"
netlab_need_node_flags
netlab_up cone cone

start_trio || { fail "start the nodes and make friends"; exit 1; }
check "bob joins alice's group by code" group_and_join lab1
join_ms=$JOIN_MS
check "the join took at most 2 s ($join_ms ms)" within "$join_ms" 2000
check "bob's link to alice is direct (srflx/prflx) within 10 s of the join" \
  until_path 10 bob "$ALICE" srflx prflx
direct_ms=$UNTIL_MS

k alice send lab1 "s1 hello from alice" >/dev/null
k bob send lab1 "s1 hello from bob" >/dev/null
check "bob sees alice's message" wait_for 20 log_has bob lab1 "s1 hello from alice"
check "alice sees bob's message" wait_for 20 log_has alice lab1 "s1 hello from bob"
check "one state_hash" wait_for 20 same_state lab1 alice bob

check "alice has a link to bob" wait_for 30 has_peer alice "$BOB"
check "alice-bob link is direct (srflx/prflx)" \
  wait_for 10 path_in alice "$BOB" srflx prflx
show_link alice bob "$BOB"
show_link bob alice "$ALICE"
result 1 "$join_ms" "$(peer_field bob "$ALICE" path)" "direct_after_ms=${direct_ms:-none}"
finish
