#!/usr/bin/env bash
# kith doctor reports each NAT kind of the lab correctly. Home 1 is behind
# a cone NAT (MASQUERADE: endpoint-independent mapping), home 2 behind a
# symmetric one (--random-fully: endpoint-dependent), the relay friend pub
# has a public address (no NAT). Everyone has coturn as STUN server and pub
# as relay friend, so each home is seen from two vantage points at
# different addresses. Also: TURN credentials accepted (alice) and refused
# (bob, a wrong password in --turn-file), and UDP blocked at home 1's
# router (exit 1).
# Usage: test_doctor.sh path/to/kith
KITH=${1:-}
. "$(dirname "$0")/netlib.sh"
netlab_need_node_flags
"$KITH" doctor --help >/dev/null 2>&1 || lab_skip "this kith has no 'doctor' command"
netlab_up cone symmetric

printf 'turn://kith:not-the-password@%s:3478\n' "$LAB_TURN_IP" >"$LAB_RUN/bad-turn"
chmod 600 "$LAB_RUN/bad-turn"
init_nodes alice bob pub || { fail "init"; exit 1; }
start_node pub pub --stun "$LAB_STUN" --relay &&
  start_node alice h1 --stun "$LAB_STUN" --turn "$LAB_TURN_URL" &&
  start_node bob h2 --stun "$LAB_STUN" --turn-file "$LAB_RUN/bad-turn" ||
  { fail "start the nodes"; exit 1; }
trio_friends || { fail "make friends"; exit 1; }

# doctor NODE: runs kith doctor; the JSON report in REPORT, the exit code
# in DOCTOR_RC (no subshell, so both survive).
REPORT=""
DOCTOR_RC=0
doctor() {
  k "$1" --json doctor >"$LAB_RUN/report.json" 2>>"$LAB_RUN/$1.cli.log" &&
    DOCTOR_RC=0 || DOCTOR_RC=$?
  REPORT=$(cat "$LAB_RUN/report.json")
  echo "$REPORT" >>"$LAB_RUN/doctor.json"
}
jf() { jq -r "$1" <<<"$2"; }
relay_public() { jf '.relays[0].public' "$1"; }

doctor alice; a=$REPORT; a0=$a
echo "  alice: $(jf '.verdict.summary' "$a")"
check "alice: exit 0" test "$DOCTOR_RC" -eq 0
check "alice: UDP open" test "$(jf .udp "$a")" = open
check "alice: cone NAT is endpoint-independent" \
  test "$(jf .nat_mapping "$a")" = endpoint-independent
check "alice: coturn reachable, sees her router ($(jf '.stun[0].public' "$a"))" \
  test "$(jf '.stun[0].public | split(":")[0]' "$a")" = "$LAB_R1_WAN"
check "alice: her relay friend answers STUN too, with the same mapping" \
  test "$(relay_public "$a")" = "$(jf '.stun[0].public' "$a")"
check "alice: relay friend linked, with a round trip" \
  test "$(jf '.relays[0].linked and .relays[0].reachable and (.relays[0].rtt_ms != null)' "$a")" = true
check "alice: TURN reachable and the credentials accepted" \
  test "$(jf '.turn[0].reachable and .turn[0].credentials == "accepted"' "$a")" = true
check "alice: the report does not echo the TURN password" \
  not grep -q labpass <<<"$a"
check "alice: her local address is listed" \
  grep -q "$LAB_H1_IP:7733" <<<"$(jf '.addresses[]' "$a")"

doctor bob; b=$REPORT
echo "  bob: $(jf '.verdict.summary' "$b")"
check "bob: exit 0" test "$DOCTOR_RC" -eq 0
check "bob: symmetric NAT is endpoint-dependent" \
  test "$(jf .nat_mapping "$b")" = endpoint-dependent
check "bob: both servers see his router's address" \
  test "$(jf '[.stun[0].public, .relays[0].public] | map(split(":")[0]) | unique | .[0]' "$b")" = "$LAB_R2_WAN"
check "bob: TURN reachable, the wrong password refused" \
  test "$(jf '.turn[0].reachable and .turn[0].credentials == "rejected"' "$b")" = true

doctor pub; p=$REPORT
echo "  pub: $(jf '.verdict.summary' "$p")"
check "pub: exit 0, no NAT" \
  test "$DOCTOR_RC-$(jf .nat_mapping "$p")" = "0-none"

# Home 1's router drops all UDP from the home: nothing outside answers.
lab_exec r1 iptables -I FORWARD 1 -i lan0 -p udp -j DROP
doctor alice; a=$REPORT
check "alice, UDP blocked: exit 1" test "$DOCTOR_RC" -eq 1
check "alice, UDP blocked: reported as blocked" test "$(jf .udp "$a")" = blocked
check "alice, UDP blocked: not reachable" test "$(jf .verdict.reachable "$a")" = false
lab_exec r1 iptables -D FORWARD -i lan0 -p udp -j DROP

doctor alice
check "alice, UDP back: exit 0 and endpoint-independent again" \
  test "$DOCTOR_RC-$(jf .nat_mapping "$REPORT")" = "0-endpoint-independent"
result doctor "" "alice=$(jf .nat_mapping "$a0") bob=$(jf .nat_mapping "$b") pub=$(jf .nat_mapping "$p")"
finish
