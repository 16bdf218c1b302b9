#!/usr/bin/env bash
# Removal that locks the removed member out: a, b, c in a group; a kicks c
# and posts; b reads it, c does not; a and b agree on the state. Also roles,
# topic and leave through the CLI.
KITH=$1
. "$(dirname "$0")/lib.sh"

for n in ann ben cat dan; do k $n init --name $n >/dev/null; start_node $n; done
k ann group create club >/dev/null
code=$(k ann --json invite club --uses 3 | json_field code)
for n in ben cat dan; do
  check "$n joins" k $n join "$code" --timeout 30
done
k cat send club "cat was here" >/dev/null
check "ben sees cat's message" wait_for 15 log_has ben club "cat was here"

out=$(k ben kick club cat 2>&1) && rc=0 || rc=$?
check "a plain member cannot kick" test "$rc" -eq 1
echo "  ben: $out"
check "ann makes ben an admin" k ann role club ben admin
role_is() { # role_is NODE MEMBER ROLE, as NODE sees it now
  test "$(k "$1" --json group members club |
    jq -r --arg n "$2" 'select(.name == $n) | .role')" = "$3"
}
check "ben's role shows on ann" wait_for 10 role_is ann ben admin
out=$(k ben kick club ann 2>&1) && rc=0 || rc=$?
check "an admin cannot kick the owner" test "$rc" -eq 1
echo "  ben: $out"

check "ann kicks cat" k ann kick club cat
k ann send club "after cat left" >/dev/null
check "ben reads the message sent after the kick" \
  wait_for 15 log_has ben club "after cat left"
check "dan reads it too" wait_for 15 log_has dan club "after cat left"
sleep 2
catlog=$(k cat log club)
check "cat does not" bash -c "! grep -q 'after cat left' <<<\"\$1\"" _ "$catlog"
check "cat still reads the history from before" grep -q "cat was here" <<<"$catlog"
out=$(k cat send club "still here?" 2>&1) && rc=0 || rc=$?
check "cat can no longer post" test "$rc" -eq 1
echo "  cat: $out"
for n in ann ben dan; do
  check "$n no longer lists cat" \
    wait_for 10 bash -c "! $KITH --home $(home $n) group members club | grep -q ' cat '"
done
check "ann, ben and dan agree on the state" wait_for 15 same_state club ann ben dan
epoch=$(k ann --json group info club | json_field epoch)
check "the kick started a new epoch" test "$epoch" -ge 1

check "ben sets the topic" k ben topic club "board games on friday"
topic_is() { test "$(k "$1" --json group info club | json_field topic)" = "$2"; }
check "the topic reaches dan" wait_for 10 topic_is dan "board games on friday"
epoch_before=$(k ann --json group info club | json_field epoch)
check "dan leaves" k dan leave club
# A message sent after ann has seen the leave (and the rekey that follows
# it) is sealed to the new epoch.
epoch_after() { test "$(k ann --json group info club | json_field epoch)" -gt "$epoch_before"; }
check "ann sees the leave and a rekey follows" wait_for 15 epoch_after
echo "  ann's epoch: $epoch_before before, $(k ann --json group info club | json_field epoch) after"
k ann send club "after dan left" >/dev/null
check "ben reads what came after dan left" \
  wait_for 15 log_has ben club "after dan left"
sleep 1
check "dan does not" bash -c "! $KITH --home $(home dan) log club | grep -q 'after dan left'"

check "no plaintext in any data directory" \
  bash -c "! grep -r -a -l -e 'after cat left' -e 'cat was here' -e 'board games' '$WORK'/{ann,ben,cat,dan}"
finish
