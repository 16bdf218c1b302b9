#!/usr/bin/env bash
# A home protected by a passphrase: the node needs it, a wrong one is
# refused with one line, and the storage key is not on disk in the clear.
KITH=$1
. "$(dirname "$0")/lib.sh"

printf 'a long passphrase\n' >"$WORK/pass"
printf 'not it\n' >"$WORK/wrong"
k erin init --name erin --passphrase-file "$WORK/pass" >/dev/null
check "the key file is not a bare key" \
  test "$(stat -c %s "$(home erin)/storage.key")" -ne 32

out=$(k erin node --port 0 --bind 127.0.0.1 </dev/null 2>&1) && rc=0 || rc=$?
check "a node without the passphrase and no terminal stops" test "$rc" -eq 1
check "  ... saying to give --passphrase-file" grep -q -- "--passphrase-file" <<<"$out"
check "  ... in one line" test "$(wc -l <<<"$out")" -eq 1

out=$(k erin node --port 0 --bind 127.0.0.1 --passphrase-file "$WORK/wrong" \
  </dev/null 2>&1) && rc=0 || rc=$?
check "a wrong passphrase is refused" test "$rc" -eq 1
check "  ... saying so" grep -q "wrong passphrase" <<<"$out"

start_node erin --passphrase-file "$WORK/pass"
check "the right passphrase opens the home" \
  test "$(k erin --json id | json_field name)" = erin
k erin group create secret >/dev/null
k erin send secret "sealed at rest" >/dev/null
stop_node erin
check "no message text on disk" \
  bash -c "! grep -r -a -q 'sealed at rest' '$(home erin)'"
start_node erin --passphrase-file "$WORK/pass"
check "history readable again after a restart" \
  log_has erin secret "sealed at rest"

# A log longer than one control-socket message comes in pages.
head -c 60000 /dev/zero | tr '\0' y >"$WORK/long"
for _ in 1 2 3 4 5 6; do k erin send secret - <"$WORK/long" >/dev/null; done
msgs() { k erin --json log secret "$@" | jq -c 'select(.type == "message")'; }
check "a 360 KB log is read whole" test "$(msgs | wc -l)" -eq 7
check "  ... and -n 3 gives the last three" \
  test "$(k erin --json log secret -n 3 | wc -l)" -eq 3
check "  ... in order, oldest first" \
  test "$(msgs | head -1 | json_field text)" = "sealed at rest"

finish
