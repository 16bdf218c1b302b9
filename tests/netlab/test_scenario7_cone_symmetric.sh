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
# STUN server only (bob's NAT drops those). docs/usage.md says the same;
# test_scenario10 is the same with a full-cone NAT in home 1, where ICE
# does find the direct path.
# Usage: test_scenario7_cone_symmetric.sh path/to/kith
KITH=${1:-}
. "$(dirname "$0")/netlib.sh"
netlab_need_node_flags
cone_symmetric 7 cone
finish
