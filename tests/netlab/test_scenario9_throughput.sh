#!/usr/bin/env bash
# Scenario 9: throughput. Cone NAT <-> cone NAT with a relay friend pub on
# both sides and 50 ms of netem delay on each home's uplink (where the
# kernel has sch_netem; without it the run says so and measures without
# delay). alice's group holds a 10 MB history (2,500 messages of 4,000
# bytes); bob joins and the run states the time and MB/s, with the path
# the link ended on. The join starts on the relay friend (paced under its
# 256 KiB/s) and moves to the direct path as soon as ICE has it.
# Usage: test_scenario9_throughput.sh path/to/kith
KITH=${1:-}
. "$(dirname "$0")/netlib.sh"
netlab_need_node_flags
netlab_up cone cone

delay="50ms"
for r in r1 r2; do
  if ! lab_exec "$r" tc qdisc add dev wan0 root netem delay "$delay" 2>/dev/null; then
    delay="none (this kernel has no sch_netem)"
    break
  fi
done
echo "  uplink delay: $delay"
start_trio || { fail "start the nodes and make friends"; exit 1; }
k alice group create lab9 >/dev/null
count=2500
awk -v n=$count 'BEGIN { s = sprintf("%3990s", ""); gsub(/ /, "x", s);
  for (i = 1; i <= n; i++) printf "%09d %s\n", i, s }' |
  k alice send lab9 - --lines >/dev/null
code=$(k alice --json invite lab9 | json_field code)
check "bob joins alice's group with a 10 MB history" timed_join bob "$code"
join_ms=$JOIN_MS
n=$(k bob --json log lab9 | jq -r 'select(.type == "message") | .text' | wc -l)
check "bob holds all $count messages" test "$n" -eq "$count"
mb=$((count * 4000))
echo "  history: $mb bytes of text in $join_ms ms:" \
  "$(awk -v b=$mb -v t="$join_ms" 'BEGIN { printf "%.2f MB/s", b / 1e6 / (t / 1000) }')"
check "the link ends direct (srflx/prflx)" wait_for 10 path_in bob "$ALICE" srflx prflx
show_link bob alice "$ALICE"
result 9 "$join_ms" "$(peer_field bob "$ALICE" path)" "history_bytes=$mb delay=${delay%% *}"
finish
