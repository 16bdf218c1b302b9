#!/usr/bin/env bash
# Scenario 10: scenario 7 with a full-cone NAT in home 1 (endpoint-
# independent filtering, as many home routers have for UDP) and the
# symmetric NAT in home 2, a relay friend pub on both sides, no TURN. bob
# joins in at most 3 s, on the first path that works, and the link must go
# direct within ICE's first attempt (15 s): bob's checks to alice's
# server-reflexive address come from a port his NAT chose for alice (no
# one could predict it), alice's NAT lets them in from anywhere, so alice
# learns that port as a peer-reflexive candidate and her checks back to it
# are replies to bob's flow, which his NAT lets in.
# Usage: test_scenario10_fullcone_symmetric.sh path/to/kith
KITH=${1:-}
. "$(dirname "$0")/netlib.sh"
netlab_need_node_flags
cone_symmetric 10 fullcone
finish
