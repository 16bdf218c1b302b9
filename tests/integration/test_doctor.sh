#!/usr/bin/env bash
# kith doctor on loopback: a node with a relay friend gets a report with
# every key, the friend answers its STUN request (a relay answers its
# friends), a TURN server that does not exist is reported unreachable, and
# a node with nothing to ask exits 1. (The NAT kinds, and that a stranger
# at another address gets no STUN answer, are checked in the network lab:
# tests/netlab/test_doctor.sh and test_scenario6_relay_as_stun.sh; here
# every node shares 127.0.0.1, and a relay knows its friends by address.)
# Usage: test_doctor.sh path/to/kith
KITH=${1:?usage: $0 path/to/kith}
. "$(dirname "$0")/lib.sh"
not() { ! "$@"; }

for n in relay alice lonely; do k "$n" init --name "$n" >/dev/null; done
start_node relay --relay
start_node lonely
RELAY=$(k relay --json id | json_field node_id)
RPORT=$(k relay --json status | json_field port)
# a UDP port nothing listens on: the TURN server that is not there
DEAD=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'turn://u:secret-%s@127.0.0.1:%s\n' "$$" "$DEAD" >"$WORK/turn"
start_node alice --turn-file "$WORK/turn"
ALICE=$(k alice --json id | json_field node_id)
k relay friend add "$ALICE" --name alice >/dev/null
k alice friend add "$RELAY" --addr "127.0.0.1:$RPORT" --name relay >/dev/null

linked() { k alice --json peers | grep -q "$RELAY"; }
check "alice links to her relay friend" wait_for 20 linked
answered() { k alice --json doctor >"$WORK/report.json" 2>/dev/null; }
check "alice's doctor exits 0 once the relay answers" wait_for 20 answered
r=$(cat "$WORK/report.json")
jf() { jq -r "$1" <<<"$r"; }
check "the report has every key" \
  test "$(jf 'keys | sort | join(",")')" = "addresses,nat_mapping,relays,stun,turn,udp,verdict"
check "the relay friend answered: reachable, public address" \
  test "$(jf '.relays[0].reachable')-$(jf '.relays[0].public')" = "true-127.0.0.1:$(k alice --json status | json_field port)"
check "no NAT on loopback" test "$(jf .nat_mapping)" = none
check "UDP open" test "$(jf .udp)" = open
check "the missing TURN server is unreachable" \
  test "$(jf '.turn[0].reachable')-$(jf '.turn[0].credentials')" = "false-unknown"
check "the report names the TURN server, not its password" \
  not grep -q "secret-$$" <<<"$r"
check "human output has a verdict line" \
  bash -c "'$KITH' --home '$(home alice)' doctor | grep -q '^verdict'"

# Invite codes take the public addresses the relay friend reported (on
# loopback it is a local address, so it is left out: a 5-element code).
k alice group create g >/dev/null
code1=$(k alice --json invite g | json_field code)
code2=$(k alice --json invite g | json_field code)
check "invite codes are made after the answers (twice)" \
  test -n "$code1" -a -n "$code2"
check "alice still answers after that" k alice status

out=$(k lonely doctor 2>&1) && rc=0 || rc=$?
check "a node with nothing to ask exits 1" test "$rc" -eq 1
check "and says nothing outside answered" grep -q "nothing outside" <<<"$out"
finish
