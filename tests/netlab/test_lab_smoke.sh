#!/usr/bin/env bash
# The network lab itself, without kith: build it with one cone and one
# symmetric NAT, then check that coturn answers STUN and TURN, that each
# home sees its router's public address, that the NAT types are what they
# claim (RFC 5780 mapping discovery), that homes reach the public segment
# but not each other, that an uplink cut and restore works, and that the
# teardown leaves nothing behind. Usage: test_lab_smoke.sh [KITH] (unused).
KITH=${1:-}
. "$(dirname "$0")/netlib.sh"

netlab_up cone symmetric
prefix=$LAB_PREFIX

m=$(lab_stun pub)
check "coturn answers STUN on the public segment ($m)" test "${m%:*}" = "$LAB_PUB_IP"

m1=$(lab_stun h1)
check "home 1 is seen as its router's public address ($m1)" \
  test "${m1%:*}" = "$LAB_R1_WAN"
m2=$(lab_stun h2)
check "home 2 is seen as its router's public address ($m2)" \
  test "${m2%:*}" = "$LAB_R2_WAN"

map1=$(lab_mapping h1)
check "home 1 NAT is endpoint-independent (cone): $map1" test "$map1" = independent
map2=$(lab_mapping h2)
check "home 2 NAT is address/port-dependent (symmetric): $map2" test "$map2" = dependent

# Two requests from the symmetric home: each gets a mapping on the router.
a=$(lab_stun h2); b=$(lab_stun h2)
check "symmetric home gets mappings for two requests ($a, $b)" \
  test -n "$a" -a -n "$b" -a "${a%:*}" = "$LAB_R2_WAN" -a "${b%:*}" = "$LAB_R2_WAN"

check "home 1 reaches the public node" lab_reach h1 "$LAB_PUB_IP"
check "home 2 reaches coturn" lab_reach h2 "$LAB_TURN_IP"
check "home 1 does not reach home 2's private address" not lab_reach h1 "$LAB_H2_IP"
check "home 2 does not reach home 1's private address" not lab_reach h2 "$LAB_H1_IP"
check "the public node does not reach into home 1" not lab_reach pub "$LAB_H1_IP"
# Even a host that routes home 1's private range to router 1 gets nothing
# through: the router forwards inwards only replies (conntrack).
lab_exec pub ip route add 192.168.1.0/24 via "$LAB_R1_WAN"
check "router 1 forwards nothing unsolicited into home 1" not lab_reach pub "$LAB_H1_IP"
lab_exec pub ip route del 192.168.1.0/24 via "$LAB_R1_WAN"

# Hole punching between the homes (UDP, same port on both sides), one
# side 0.5 s ahead: its first datagrams reach the other router before that
# one has a mapping. With two cone NATs this must work, which it does only
# if the router drops them without keeping state (see lab.sh, INPUT); with
# a symmetric NAT on one side it must not. Needs python3, else skipped.
punch() { # punch PORT: 0 if both homes got through to each other
  local py rc1 rc2 p1
  py=$(command -v python3) || return 2
  lab_exec h1 timeout 10 "$py" "$NETLAB_DIR/punch.py" "$1" "$LAB_R2_WAN" 4 &
  p1=$!
  sleep 0.5
  lab_exec h2 timeout 10 "$py" "$NETLAB_DIR/punch.py" "$1" "$LAB_R1_WAN" 4 && rc2=0 || rc2=$?
  wait "$p1" && rc1=0 || rc1=$?
  [ "$rc1" = 0 ] && [ "$rc2" = 0 ]
}
if command -v python3 >/dev/null; then
  check "no hole punching between cone and symmetric NAT" not punch 40000
  lab_set_nat r2 cone
  check "hole punching between two cone NATs, one side early" punch 40002
  lab_set_nat r2 symmetric
else
  echo "  (no python3: hole-punching checks skipped)"
fi

turn_ok() { # a TURN allocation with the lab's credentials, data relayed
  lab_exec "$1" timeout 20 turnutils_uclient -y -c -n 2 -m 1 -z 5 \
    -u kith -w "$2" "$LAB_TURN_IP" 2>&1 | grep -q "tot_recv_msgs=[1-9]"
}
check "TURN allocation and relaying from home 1 (kith/labpass)" turn_ok h1 labpass
check "TURN allocation from the symmetric home 2" turn_ok h2 labpass
check "TURN refuses a wrong password" not turn_ok h2 wrongpass

lab_uplink r1 down
check "uplink of home 1 cut: no STUN answer" test -z "$(lab_stun h1 2)"
check "home 2 unaffected by the cut" test -n "$(lab_stun h2 3)"
lab_uplink r1 up
m1b=$(lab_stun h1)
check "uplink of home 1 restored: STUN answers again ($m1b)" \
  test "${m1b%:*}" = "$LAB_R1_WAN"

no_veth() {
  local r
  for r in $LAB_ROLES; do
    lab_exec "$r" ip -o link | grep -q ' veth' && return 1
  done
  return 0
}
check "no interface is named veth* (libnice skips those)" no_veth
check "coturn logged a successful allocation" \
  grep -q "ALLOCATE processed, success" "$LAB_RUN/turn.log"
check "coturn logged the wrong password" grep -q "credentials are incorrect" "$LAB_RUN/turn.log"

# Teardown leaves nothing: no namespace, no process of the lab.
turn_pid=$(cat "$LAB_RUN/turn.pid" 2>/dev/null || echo "")
lab_down
gone() { ! ip netns list | grep -q "^$prefix-"; }
check "teardown removed every namespace" gone
check "teardown ended coturn ($turn_pid)" \
  test -n "$turn_pid" -a ! -e "/proc/$turn_pid"

finish
