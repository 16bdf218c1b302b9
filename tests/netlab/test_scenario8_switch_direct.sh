#!/usr/bin/env bash
# Scenario 8: switch to direct. Cone NAT <-> cone NAT with a relay friend
# pub on both sides, but a firewall rule on each router drops the traffic
# between the two homes' public addresses, so ICE finds nothing direct and
# bob joins through the relay friend (friend-relay). While bob sends
# numbered messages in a loop, the rule is lifted: the link's next probe
# (docs/protocol.md 9.4) finds the direct path and the link moves to it
# on the same session (MOVE). Every message arrives exactly once, and the
# link is never re-made.
# Usage: test_scenario8_switch_direct.sh path/to/kith
KITH=${1:-}
. "$(dirname "$0")/netlib.sh"
netlab_need_node_flags
netlab_up cone cone

block() { # block -I|-D: the routers drop (or no longer drop) home <-> home
  lab_exec r1 iptables "$1" FORWARD -o wan0 -d "$LAB_R2_WAN" -j DROP &&
    lab_exec r2 iptables "$1" FORWARD -o wan0 -d "$LAB_R1_WAN" -j DROP
}
block -I || { fail "firewall rules"; exit 1; }
start_trio || { fail "start the nodes and make friends"; exit 1; }
check "bob joins alice's group through the relay friend" group_and_join lab8
join_ms=$JOIN_MS
check "the join took at most 3 s ($join_ms ms)" within "$join_ms" 3000
check "the link is on the relay friend" path_in bob "$ALICE" friend-relay

sent=0
send_some() { # send_some N: bob sends the next N numbered messages
  local i
  for i in $(seq "$1"); do
    sent=$((sent + 1))
    k bob send lab8 "s8 n$sent" >/dev/null || echo "  send $sent failed"
  done
}
send_some 20
block -D || fail "lift the firewall rules"
echo "  firewall lifted at $(date +%T.%3N)"
t0=$(now_ms)
moved=""
while [ $(($(now_ms) - t0)) -lt 90000 ]; do # the probe backoff: under 90 s
  send_some 5
  if path_in bob "$ALICE" srflx prflx; then moved=$(($(now_ms) - t0)); break; fi
done
check "the path moves to direct (srflx/prflx) once the rule is lifted" test -n "$moved"
send_some 20
echo "  bob sent $sent messages; direct after ${moved:-never} ms"
got() { k alice --json log lab8 | jq -r 'select(.type == "message") | .text' | grep '^s8 n'; }
all_once() { test "$(got | sort -u | wc -l)" -eq "$sent" && test "$(got | wc -l)" -eq "$sent"; }
check "alice has every message exactly once" wait_for 20 all_once
check "the link was never re-made" \
  test "$(grep -c "link to ${ALICE:0:8} up" "$LAB_RUN/bob.log")" -eq 1
check "it moved on the same session" \
  grep -q "link to ${ALICE:0:8} moves from friend-relay to" "$LAB_RUN/bob.log"
show_link bob alice "$ALICE"
result 8 "$join_ms" "$(peer_field bob "$ALICE" path)" "direct_after_lift_ms=${moved:-none}"
finish
