#!/usr/bin/env bash
# Simultaneous restarts (issue 10, problem 1): six nodes in one group; three
# of them stop at once (SIGINT) and come back at once on new ports, five
# times over, while the others keep sending. Each time, within 10 s: all
# links are back, every message is on every node with one state_hash, and
# over the next 10 s no node uses more than 5% of a core.
KITH=$1
. "$(dirname "$0")/lib.sh"

nodes=(r1 r2 r3 r4 r5 r6)
for n in "${nodes[@]}"; do k $n init --name $n >/dev/null; done
start_nodes "${nodes[@]}"
k r1 group create wake >/dev/null
code=$(k r1 --json invite wake --uses 5 | json_field code)
for n in "${nodes[@]:1}"; do
  k $n join "$code" --timeout 30 >/dev/null 2>&1 || fail "$n joins"
done

# Every node is linked to the five others, and the group is whole.
all_linked() {
  for n in "${nodes[@]}"; do peers_up $n 5 || return 1; done
}
# Every node holds all `want` messages tagged with `tag`.
all_have() {
  local tag=$1 want=$2 n
  for n in "${nodes[@]}"; do
    [ "$(count_in_log $n wake "$tag")" -eq "$want" ] || return 1
  done
}
recovered() { all_linked && all_have "$1" "$2" && same_state wake "${nodes[@]}"; }
# Each node's count of address changes and of ADDRS frames sent.
addr_counters() {
  for n in "$@"; do
    k $n --json status | jq -r '"\(.addr_changes)/\(.addrs_sent)"'
  done | tr '\n' ' '
}

check "the six are linked before the first restart" wait_for 30 all_linked

rounds=("r1 r2 r3" "r4 r5 r6" "r2 r4 r6" "r1 r3 r5" "r1 r4 r5")
for round in 1 2 3 4 5; do
  read -r -a down <<<"${rounds[$((round - 1))]}"
  up=()
  for n in "${nodes[@]}"; do
    [[ " ${down[*]} " == *" $n "* ]] || up+=("$n")
  done
  check "round $round: ${down[*]} stop within 2 s of SIGINT" \
    stop_nodes INT "${down[@]}"
  echo "  slowest exit: $STOP_MS ms"
  for n in "${up[@]}"; do k $n send wake "round $round while away, from $n" >/dev/null; done
  start_nodes "${down[@]}"
  t0=$(now_ms)
  for n in "${down[@]}"; do k $n send wake "round $round back, from $n" >/dev/null; done
  check "round $round: links, messages and state back within 10 s" \
    wait_for 10 recovered "round $round " 6
  echo "  recovery: $(($(now_ms) - t0)) ms"
  for n in "${nodes[@]}"; do
    echo "  $n: $(k $n --json peers | wc -l) links, $(count_in_log $n wake "round $round ") of 6"
  done
  addrs_before=$(addr_counters "${nodes[@]}")
  cpu=$(cpu_percent 10 "${nodes[@]}")
  echo "  CPU over the next 10 s (% of a core): $(tr '\n' ' ' <<<"$cpu")"
  check "round $round: every node idle (< 5% of a core)" \
    awk '$2 >= 5 { bad = 1 } END { exit bad }' <<<"$cpu"
  addrs_after=$(addr_counters "${nodes[@]}")
  echo "  address changes and ADDRS frames so far: $addrs_after"
  check "round $round: no address stored or announced while idle" \
    test "$addrs_before" = "$addrs_after"
done

check "SIGINT stops every node within 2 s" stop_nodes INT "${nodes[@]}"
echo "  slowest exit: $STOP_MS ms"
finish
