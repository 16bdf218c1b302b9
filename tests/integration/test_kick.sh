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
check "ben sees cat's message" wait_for 15 grep -q "cat was here" <(k ben log club)

out=$(k ben kick club cat 2>&1) && rc=0 || rc=$?
check "a plain member cannot kick" test "$rc" -eq 1
echo "  ben: $out"
check "ann makes ben an admin" k ann role club ben admin
check "ben's role shows on ann" \
  wait_for 10 grep -q '"role":"admin"' <(k ann --json group members club | grep '"name":"ben"')
out=$(k ben kick club ann 2>&1) && rc=0 || rc=$?
check "an admin cannot kick the owner" test "$rc" -eq 1
echo "  ben: $out"

check "ann kicks cat" k ann kick club cat
k ann send club "after cat left" >/dev/null
check "ben reads the message sent after the kick" \
  wait_for 15 grep -q "after cat left" <(k ben log club)
check "dan reads it too" wait_for 15 grep -q "after cat left" <(k dan log club)
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
hashes() {
  for n in ann ben dan; do k $n --json group info club | json_field state_hash; done | sort -u | wc -l
}
check "ann, ben and dan agree on the state" wait_for 15 test "$(hashes)" -eq 1
epoch=$(k ann --json group info club | json_field epoch)
check "the kick started a new epoch" test "$epoch" -ge 1

check "ben sets the topic" k ben topic club "board games on friday"
check "the topic reaches dan" \
  wait_for 10 test "$(k dan --json group info club | json_field topic)" = "board games on friday"
check "dan leaves" k dan leave club
k ann send club "after dan left" >/dev/null
check "ben reads what came after dan left" \
  wait_for 15 grep -q "after dan left" <(k ben log club)
sleep 1
check "dan does not" bash -c "! $KITH --home $(home dan) log club | grep -q 'after dan left'"

check "no plaintext in any data directory" \
  bash -c "! grep -r -a -l -e 'after cat left' -e 'cat was here' -e 'board games' '$WORK'/{ann,ben,cat,dan}"
finish
