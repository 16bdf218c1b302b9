#!/usr/bin/env bash
# Scenario 7: cone NAT (home 1) <-> symmetric NAT (home 2), a relay friend
# pub on both sides, no TURN. bob joins alice's group in at most 3 s (on
# the first path that works). The link ends direct (prflx) where ICE can
# find one; in this lab it cannot, and the link stays on the relay friend
# (friend-relay), probing with backoff: alice's cone NAT filters by
# address and port (it lets in only replies from where alice sent), and
# bob's symmetric NAT gives each destination a new port, so the port bob's
# checks come from is one alice never sent to (her NAT drops them), and
# the port alice sends to (bob's server-reflexive one) is mapped for the
# STUN server only (bob's NAT drops those). docs/usage.md says the same.
# Usage: test_scenario7_cone_symmetric.sh path/to/kith
KITH=${1:-}
. "$(dirname "$0")/netlib.sh"
netlab_need_node_flags
netlab_up cone symmetric

start_trio || { fail "start the nodes and make friends"; exit 1; }
check "bob joins alice's group by code" group_and_join lab7
join_ms=$JOIN_MS
check "the join took at most 3 s ($join_ms ms)" within "$join_ms" 3000
k alice send lab7 "s7 hello from alice" >/dev/null
k bob send lab7 "s7 hello from bob" >/dev/null
check "bob sees alice's message" wait_for 20 log_has bob lab7 "s7 hello from alice"
check "alice sees bob's message" wait_for 20 log_has alice lab7 "s7 hello from bob"
check "bob has a link to alice" wait_for 10 has_peer bob "$ALICE"
# ICE's first attempt ends (fails) within 15 s; a direct path would have
# been taken by then.
sleep 15
path=$(peer_field bob "$ALICE" path)
check "the link is direct (prflx/srflx) or on the relay friend" \
  path_in bob "$ALICE" prflx srflx friend-relay
case $path in
  prflx | srflx) echo "  direct: ICE found a path through both NATs" ;;
  *) echo "  relayed: port-restricted cone <-> symmetric has no direct path" \
    "(see the header of this test)" ;;
esac
check "both ends show the same path" path_in alice "$BOB" "$path"
show_link alice bob "$BOB"
show_link bob alice "$ALICE"
result 7 "$join_ms" "$path"
finish
