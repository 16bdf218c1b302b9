#!/usr/bin/env bash
# No third-party STUN: no --stun anywhere, only a public relay friend pub
# that alice (home 1) and bob (home 2, both cone NATs) have added. pub
# answers its friends' STUN binding requests on its signal port, so their
# ICE agents learn server-reflexive candidates from it, and the alice-bob
# link still ends direct (srflx or prflx). alice's invite code carries her
# public address as pub sees it.
# Usage: test_scenario6_relay_as_stun.sh path/to/kith
KITH=${1:-}
. "$(dirname "$0")/netlib.sh"
netlab_need_node_flags
netlab_up cone cone

init_nodes alice bob pub || { fail "init"; exit 1; }
start_node pub pub --relay && start_node alice h1 && start_node bob h2 ||
  { fail "start the nodes"; exit 1; }
trio_friends || { fail "make friends"; exit 1; }

relay_sees() { # relay_sees NODE: pub answers NODE's STUN with its router
  [ "$(k "$1" --json doctor | jq -r '.relays[0].public | split(":")[0]')" = "$2" ]
}
check "pub answers alice's STUN: her router's address" \
  wait_for 30 relay_sees alice "$LAB_R1_WAN"
check "pub answers bob's STUN: his router's address" \
  wait_for 30 relay_sees bob "$LAB_R2_WAN"
stranger_answered() { # a STUN request from the TURN host (not a friend)
  lab_exec turn timeout 3 turnutils_stunclient -p 7733 "$LAB_PUB_IP" 2>&1 |
    grep -q "UDP reflexive addr"
}
check "pub does not answer a stranger's STUN request" not stranger_answered

GID=$(k alice --json group create lab6 | json_field group_id)
# the public address is learned once pub answered (above): invite now
code=$(k alice --json invite lab6 | json_field code)
check "alice's invite code is an 8-element one (it has a public address)" \
  test "$(echo "${code#kith:}" | tr -- '-_' '+/' | base64 -d 2>/dev/null |
    head -c 1 | od -An -tx1 | tr -d ' ')" = 98
check "bob joins alice's group by code" timed_join bob "$code"
join_ms=$JOIN_MS
k alice send lab6 "s6 hello" >/dev/null
check "bob sees alice's message" wait_for 20 log_has bob lab6 "s6 hello"
check "alice has a link to bob" wait_for 30 has_peer alice "$BOB"
check "alice-bob link is direct (srflx/prflx)" \
  wait_for 15 path_in alice "$BOB" srflx prflx
check "bob-alice link is direct (srflx/prflx)" \
  wait_for 15 path_in bob "$ALICE" srflx prflx
show_link alice bob "$BOB"
show_link bob alice "$ALICE"
result 6 "$join_ms" "$(peer_field bob "$ALICE" path)"
finish
