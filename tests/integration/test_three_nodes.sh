#!/usr/bin/env bash
# Three real nodes on loopback, driven only through the CLI: create, invite
# (2 uses), two joins, chat, a spent and a mistyped code, one state hash,
# then a node stops, misses two messages, restarts and catches up.
KITH=$1
. "$(dirname "$0")/lib.sh"

for n in alice bob carol dave; do
  k $n init --name $n >/dev/null
done
for n in alice bob carol dave; do start_node $n; done

gid=$(k alice --json group create friends | json_field group_id)
check "group created" test ${#gid} -eq 52
code=$(k alice --json invite friends --uses 2 | json_field code)
check "invite code printed" test "${code:0:5}" = "kith:"

t0=$(now_ms)
check "bob joins by code" k bob join "$code" --timeout 30
t1=$(now_ms)
check "carol joins by code" k carol join "$code" --timeout 30
t2=$(now_ms)
echo "join times: bob $((t1 - t0)) ms, carol $((t2 - t1)) ms"

out=$(k dave join "$code" --timeout 30 2>&1) && rc=0 || rc=$?
check "a third join with the spent code fails" test "$rc" -eq 1
check "  ... saying the code is used up" grep -q "used up" <<<"$out"
echo "  dave: $out"

bad="${code:0:20}$( [ "${code:20:1}" = a ] && echo b || echo a )${code:21}"
out=$(k dave join "$bad" --timeout 10 2>&1) && rc=0 || rc=$?
check "a mistyped code fails" test "$rc" -eq 1
check "  ... saying it is mistyped" grep -q "mistyped" <<<"$out"
echo "  dave: $out"

k alice send friends "hello from alice" >/dev/null
k bob send friends "hello from bob" >/dev/null
k carol send friends "hello from carol" >/dev/null
for n in alice bob carol; do
  for who in alice bob carol; do
    check "$n sees the message of $who" \
      wait_for 15 log_has $n friends "hello from $who"
  done
done

check "one state_hash on all three" wait_for 15 same_state friends alice bob carol
for n in alice bob carol; do
  echo "  $n: $(k $n --json group info friends)"
done

stop_node carol
k alice send friends "while carol was away 1" >/dev/null
k bob send friends "while carol was away 2" >/dev/null
start_node carol
check "carol catches up after a restart (1)" \
  wait_for 30 log_has carol friends "while carol was away 1"
check "carol catches up after a restart (2)" \
  wait_for 30 log_has carol friends "while carol was away 2"
check "state_hash agrees again" wait_for 15 same_state friends alice bob carol

# Any online member can admit: the code names other members too.
code2=$(k alice --json invite friends | json_field code)
stop_node alice
t0=$(now_ms)
check "with the inviter offline, another member admits dave" \
  k dave join "$code2" --timeout 30
echo "join time with the inviter offline: $(( $(now_ms) - t0 )) ms"
k dave send friends "dave got in" >/dev/null
check "bob sees dave's message" wait_for 15 log_has bob friends "dave got in"
start_node alice
check "alice catches up with dave's admission" \
  wait_for 30 log_has alice friends "dave got in"

# Bad input.
out=$(k alice send friends "" 2>&1) && rc=0 || rc=$?
check "an empty message is refused" test "$rc" -eq 1
big=$(head -c 70000 /dev/zero | tr '\0' x)
out=$(k alice send friends "$big" 2>&1) && rc=0 || rc=$?
check "a 64 KiB+ message is refused" test "$rc" -eq 1
out=$(k alice send nosuchgroup hi 2>&1) && rc=0 || rc=$?
check "an unknown group is refused" test "$rc" -eq 1
check "  ... with one line" test "$(wc -l <<<"$out")" -eq 1
out=$(k alice node --port 0 --bind 127.0.0.1 2>&1) && rc=0 || rc=$?
check "a second node on the same home is refused" test "$rc" -eq 1
check "  ... saying one runs" grep -q "already running" <<<"$out"
k dave init --name x >/dev/null 2>&1 && rc=0 || rc=$?
check "init refuses a home with an identity" test "$rc" -eq 1
stop_node dave
out=$(k dave status 2>&1) && rc=0 || rc=$?
check "no node running: exit 3" test "$rc" -eq 3
check "  ... saying to start kith node" grep -q "kith node" <<<"$out"

# No message text or name in clear anywhere in the data directories.
check "no plaintext in any data directory" \
  bash -c "! grep -r -a -l -e 'hello from' -e 'while carol was away' '$WORK/alice' '$WORK/bob' '$WORK/carol'"
check "data directory is mode 0700" test "$(stat -c %a "$(home alice)")" = 700

finish
