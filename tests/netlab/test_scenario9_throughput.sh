#!/usr/bin/env bash
# Scenario 9: throughput. Cone NAT <-> cone NAT with a relay friend pub on
# both sides. bob joins two groups of alice's, and the run states the time
# and MB/s of each history, with the path the link ended on:
# - a 10 MB history (2,500 messages of 4,000 bytes) with no delay;
# - then, with 50 ms of delay on each home's uplink (lab_delay: every
#   packet leaving a home is held 50 ms in its router, so alice <-> bob
#   has a 100 ms round trip and each home <-> pub 50 ms), another 10 MB
#   history (about 20 s, 0.5 MB/s, in the runs recorded in
#   docs/performance.md, Paths through NATs; bounded at 240 s).
# After each, bob's gossip counters for the group: copies received (ids
# asked again while their answers were on the way) show as duplicates.
# Each join starts on the relay friend (paced under its 256 KiB/s) and
# moves to the direct path as soon as ICE has it.
# Usage: test_scenario9_throughput.sh path/to/kith
KITH=${1:-}
. "$(dirname "$0")/netlib.sh"
netlab_need_node_flags
netlab_up cone cone

# gossip_counts NODE GROUP: the node's gossip counters for the group
# (kith-bench gossip-stats): payloads received and how many were copies
# of events it had (re-sent answers), WANTs sent, reconciliation steps.
gossip_counts() {
  local gid; gid=$(k "$1" --json group info "$2" | json_field group_id)
  "$(dirname "$KITH")/kith-bench" gossip-stats --home "$(home "$1")" |
    jq -r --arg g "$gid" 'select(.group_id == $g) |
      "  \(.payloads) payloads (\(.duplicates) duplicates), " +
      "\(.wants_sent) ids asked (WANT), " +
      "\(.recon_rounds) reconciliation steps"' ||
    echo "  (no gossip counters: kith-bench is not beside $KITH)"
}

# history GROUP COUNT SECONDS DELAY_MS: alice's GROUP gets COUNT messages
# of 4,000 bytes, bob joins (giving up after SECONDS) and must hold them
# all; one RESULT line.
history() {
  local g=$1 count=$2 mb=$(($2 * 4000))
  k alice group create "$g" >/dev/null
  awk -v n="$count" 'BEGIN { s = sprintf("%3990s", ""); gsub(/ /, "x", s);
    for (i = 1; i <= n; i++) printf "%09d %s\n", i, s }' |
    k alice send "$g" - --lines >/dev/null
  local code; code=$(k alice --json invite "$g" | json_field code)
  check "bob joins $g with a $((mb / 1000000)) MB history (delay $4 ms)" \
    timed_join bob "$code" "$3"
  local join_ms=$JOIN_MS n
  n=$(k bob --json log "$g" | jq -r 'select(.type == "message") | .text' | wc -l)
  check "bob holds all $count messages of $g" test "$n" -eq "$count"
  echo "  history: $mb bytes of text in $join_ms ms:" \
    "$(awk -v b=$mb -v t="$join_ms" 'BEGIN { printf "%.2f MB/s", b / 1e6 / (t / 1000) }')"
  gossip_counts bob "$g"
  check "the link ends direct (srflx/prflx)" wait_for 10 path_in bob "$ALICE" srflx prflx
  show_link bob alice "$ALICE"
  result 9 "$join_ms" "$(peer_field bob "$ALICE" path)" "history_bytes=$mb delay_ms=$4"
}

start_trio || { fail "start the nodes and make friends"; exit 1; }
history lab9 2500 60 0
delay_ms=50
for r in r1 r2; do
  lab_delay "$r" "$delay_ms" || { fail "delay $r's uplink"; exit 1; }
done
echo "  uplink delay: ${delay_ms} ms on each home's uplink from now on"
history lab9d 2500 240 "$delay_ms"
finish
