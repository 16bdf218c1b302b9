#!/usr/bin/env bash
# Removal is final with real nodes (issue 8, attack 2): a kicked member's
# own invite codes stop working, and no code admits the kicked member
# again, whichever member it reaches.
KITH=$1
. "$(dirname "$0")/lib.sh"

for n in ann ben cat dan eve; do
  k $n init --name $n >/dev/null
  start_node $n
done
k ann group create fans >/dev/null
code=$(k ann --json invite fans --uses 5 | json_field code)
check "ben joins" k ben join "$code" --timeout 30
check "cat joins" k cat join "$code" --timeout 30
bens_code=$(k ben --json invite fans --uses 5 | json_field code)
check "dan joins with ben's code" k dan join "$bens_code" --timeout 30
# a second code of ann's, made before the kick, with uses left
spare=$(k ann --json invite fans --uses 5 | json_field code)
check "ben is known to cat" wait_for 15 bash -c \
  "$KITH --home $(home cat) group members fans | grep -q ben"

check "ann kicks ben" k ann kick fans ben
kicked() { ! k "$1" group members fans | grep -q ' ben '; }
for n in cat dan; do
  check "$n sees the kick" wait_for 15 kicked $n
done

out=$(k eve join "$bens_code" --timeout 20 2>&1) && rc=0 || rc=$?
check "ben's own code no longer admits anyone" test "$rc" -ne 0
echo "  eve: $out"
check "the refusal says why" grep -q "revoked" <<<"$out"

out=$(k ben join "$spare" --timeout 20 2>&1) && rc=0 || rc=$?
check "the kicked member cannot rejoin with another member's code" \
  test "$rc" -ne 0
echo "  ben: $out"
check "the refusal says ben is banned" grep -q "banned" <<<"$out"
check "ben is still not a member anywhere" kicked ann
check "the others agree on the state" wait_for 15 same_state fans ann cat dan

k ann send fans "after the kick" >/dev/null
check "cat reads what is sent after the kick" \
  wait_for 15 log_has cat fans "after the kick"
sleep 1
check "ben does not" bash -c "! $KITH --home $(home ben) log fans 2>/dev/null |
  grep -q 'after the kick'"
finish
