#!/usr/bin/env bash
# Scenario 3: symmetric NAT <-> symmetric NAT with coturn as TURN server and
# no relay friend. pub (public, not a relay) creates the group and invites
# alice and bob; they meet through pub as a common neighbour
# (introduction), and their own link has to go through TURN: path relay.
# Usage: test_scenario3_symmetric_turn.sh path/to/kith
KITH=${1:-}
. "$(dirname "$0")/netlib.sh"
netlab_need_node_flags
netlab_up symmetric symmetric

init_nodes alice bob pub || { fail "init"; exit 1; }
for n in pub:pub alice:h1 bob:h2; do
  start_node "${n%%:*}" "${n##*:}" --stun "$LAB_STUN" --turn "$LAB_TURN_URL" ||
    { fail "start ${n%%:*}"; exit 1; }
done
ALICE=$(node_id alice); BOB=$(node_id bob); PUB=$(node_id pub)

GID=$(k pub --json group create lab3 | json_field group_id)
code=$(k pub --json invite lab3 --uses 2 | json_field code)
check "alice joins pub's group" timed_join alice "$code"
join_alice=$JOIN_MS
check "bob joins pub's group" timed_join bob "$code"
join_bob=$JOIN_MS

check "alice gets a link to bob through an introduction" wait_for 45 has_peer alice "$BOB"
check "bob has a link to alice" wait_for 10 has_peer bob "$ALICE"
check "alice-bob link is relay (TURN)" wait_for 10 path_in alice "$BOB" relay
check "bob-alice link is relay (TURN)" wait_for 10 path_in bob "$ALICE" relay
show_link alice bob "$BOB"
show_link bob alice "$ALICE"

k alice send lab3 "s3 from alice" >/dev/null
k bob send lab3 "s3 from bob" >/dev/null
check "bob sees alice's message" wait_for 15 log_has bob lab3 "s3 from alice"
check "alice sees bob's message" wait_for 15 log_has alice lab3 "s3 from bob"
check "pub sees both" wait_for 15 log_has pub lab3 "s3 from bob"
check "coturn allocated TURN relays" grep -q "ALLOCATE processed, success" "$LAB_RUN/turn.log"
result 3 "alice:$join_alice,bob:$join_bob" "$(peer_field alice "$BOB" path)"
finish
