#!/usr/bin/env bash
# Twelve real nodes in one group: the gossip overlay keeps at most 8 links
# per node for the group, yet a message from any node reaches all twelve.
KITH=$1
. "$(dirname "$0")/lib.sh"

nodes=(n01 n02 n03 n04 n05 n06 n07 n08 n09 n10 n11 n12)
for n in "${nodes[@]}"; do k $n init --name $n >/dev/null; start_node $n; done
k n01 group create dozen >/dev/null
code=$(k n01 --json invite dozen --uses 11 | json_field code)
for n in "${nodes[@]:1}"; do
  k $n join "$code" --timeout 30 >/dev/null 2>&1 || fail "$n joins"
done
check "all twelve are members on n01" \
  wait_for 15 test "$(k n01 --json group info dozen | json_field members)" -eq 12

for n in n01 n05 n12; do k $n send dozen "hello from $n" >/dev/null; done
for n in "${nodes[@]}"; do
  for from in n01 n05 n12; do
    check "$n gets the message of $from" wait_for 20 log_has $n dozen "hello from $from"
  done
done
check "one state on all twelve" wait_for 20 same_state dozen "${nodes[@]}"

max_links=0
for n in "${nodes[@]}"; do
  l=$(k $n --json group info dozen | json_field links)
  [ "$l" -gt "$max_links" ] && max_links=$l
done
echo "  most overlay links for the group on one node: $max_links"
check "no node has more than 8 overlay links for the group" test "$max_links" -le 8
check "the overlay is not empty" test "$max_links" -ge 1
# Links left over from the joins (all through n01) are dropped once idle.
peers_ok() {
  for n in "${nodes[@]}"; do
    [ "$(k $n --json peers | wc -l)" -le 8 ] || return 1
  done
}
check "after the joins settle, no node holds more than 8 links" wait_for 30 peers_ok
echo "  links per node: $(for n in "${nodes[@]}"; do k $n --json peers | wc -l; done | tr '\n' ' ')"
finish
