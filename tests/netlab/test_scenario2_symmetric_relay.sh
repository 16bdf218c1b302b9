#!/usr/bin/env bash
# Scenario 2: symmetric NAT <-> symmetric NAT, no TURN: ICE finds no path,
# so joining and chatting go through the friend relay pub (friend-relay),
# and the join takes at most 3 s (the relay friend carries it at once).
# pub never holds group data: no group, no group id, name or message text
# anywhere in its data directory.
# Usage: test_scenario2_symmetric_relay.sh path/to/kith
KITH=${1:-}
. "$(dirname "$0")/netlib.sh"
netlab_need_node_flags
netlab_up symmetric symmetric

group=s2-secret-circle
text="s2 whispered words"
start_trio || { fail "start the nodes and make friends"; exit 1; }
check "bob joins alice's group by code (through the relay)" group_and_join "$group"
join_ms=$JOIN_MS
check "the join took at most 3 s ($join_ms ms)" within "$join_ms" 3000

k alice send "$group" "$text from alice" >/dev/null
k bob send "$group" "$text from bob" >/dev/null
check "bob sees alice's message" wait_for 30 log_has bob "$group" "$text from alice"
check "alice sees bob's message" wait_for 30 log_has alice "$group" "$text from bob"

check "alice has a link to bob" wait_for 30 has_peer alice "$BOB"
check "bob has a link to alice" wait_for 30 has_peer bob "$ALICE"
check "alice-bob link is friend-relay" path_in alice "$BOB" friend-relay
check "bob-alice link is friend-relay" path_in bob "$ALICE" friend-relay
show_link alice bob "$BOB"
show_link bob alice "$ALICE"

groups=$(k pub --json group list 2>&1)
check "the relay is in no group" test -z "$groups"
[ -z "$groups" ] || echo "  pub group list: $groups"
no_group_data() {
  ! grep -r -a -q -F -e "$group" -e "$text" -e "$GID" "$(home pub)"
}
check "the relay's data directory holds no group id, name or text" no_group_data
result 2 "$join_ms" "$(peer_field bob "$ALICE" path)"
finish
