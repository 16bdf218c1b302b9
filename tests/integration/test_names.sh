#!/usr/bin/env bash
# Names are not identities (issue 8, item 10): a member who calls itself
# by the owner's name is told apart wherever names are shown, the owner is
# marked, and every command that takes a member takes an id prefix.
KITH=$1
. "$(dirname "$0")/lib.sh"

k alice init --name creator >/dev/null
k mallory init --name creator >/dev/null
k bob init --name bob >/dev/null
for n in alice mallory bob; do start_node $n; done
k alice group create fans >/dev/null
code=$(k alice invite fans --uses 2)
k mallory join "$code" >/dev/null 2>&1
k bob join "$code" >/dev/null 2>&1
alice_id=$(k alice --json id | json_field node_id)
mallory_id=$(k mallory --json id | json_field node_id)
k alice send fans "welcome, I am the creator" >/dev/null
k mallory send fans "I am the creator, send me your keys" >/dev/null
wait_for 15 log_has bob fans "send me your keys"

log=$(k bob log fans)
echo "$log"
check "the owner's lines carry its id suffix and [owner]" \
  grep -qF "creator#${alice_id:0:8} [owner]: welcome" <<<"$log"
check "the impostor's lines carry another suffix and no role" \
  grep -qF "creator#${mallory_id:0:8}: I am the creator" <<<"$log"
check "  ... so no line shows the bare shared name" \
  bash -c "! grep -q ' creator: ' <<<'$log'"
check "a unique name stays bare" \
  bash -c "k() { '$KITH' --home '$(home alice)' \"\$@\"; }; k send fans hi >/dev/null; '$KITH' --home '$(home bob)' log fans | grep -q 'creator#'"
k bob send fans "hi all" >/dev/null
wait_for 10 log_has alice fans "hi all"
check "  ... (bob)" bash -c "'$KITH' --home '$(home alice)' log fans | grep -qF ' bob: hi all'"

follow_out="$WORK/follow"
( exec "$KITH" --home "$(home bob)" log fans -n 0 --follow >"$follow_out" ) &
fpid=$!
sleep 1
k mallory send fans "second try" >/dev/null
check "log --follow tells them apart too" \
  wait_for 10 grep -qF "creator#${mallory_id:0:8}: second try" "$follow_out"
check "  ... and -n 0 printed none of the history" \
  bash -c "! grep -q welcome '$follow_out'"
kill "$fpid" 2>/dev/null || true; wait "$fpid" 2>/dev/null || true

out=$(k alice kick fans creator 2>&1) && rc=0 || rc=$?
check "a shared name is refused as ambiguous" \
  bash -c "[ $rc -eq 1 ] && grep -q 'matches several members' <<<'$out'"
check "  ... saying to give more of the id" grep -q "node id" <<<"$out"
check "kick takes an id prefix" k alice kick fans "${mallory_id:0:10}"
check "  ... and the impostor is gone" \
  bash -c "! '$KITH' --home '$(home alice)' group members fans | grep -q '$mallory_id'"
check "role takes an id prefix" k alice role fans "$(k bob --json id | json_field node_id | cut -c1-6)" admin
check "group members shows full ids, names and roles" \
  bash -c "'$KITH' --home '$(home alice)' group members fans | grep -q 'bob  *admin'"
out=$(k alice role fans bob admin 2>&1) && rc=0 || rc=$?
check "setting a role again says it is already so" \
  bash -c "[ $rc -eq 1 ] && grep -q 'bob is already admin' <<<'$out'"
finish
