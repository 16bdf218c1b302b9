#!/usr/bin/env bash
# TURN passwords stay out of `ps` and out of logs: --turn-file and
# KITH_TURN are accepted, a password on the command line gets a warning,
# and no error message or log line ever repeats a TURN URL.
# Usage: test_turn_secrets.sh path/to/kith
KITH=${1:?usage: $0 path/to/kith}
. "$(dirname "$0")/lib.sh"
not() { ! "$@"; }

k t init --name t >/dev/null
secret="s3cr3t-pw-$$"
url="turn://kith:$secret@127.0.0.1:3478"
printf '# TURN servers\n%s\n\n' "$url" >"$WORK/turn.txt"
chmod 600 "$WORK/turn.txt"

check "a node starts with --turn-file" start_node t --turn-file "$WORK/turn.txt"
check "the TURN password is not on the node's command line" \
  bash -c "! tr '\0' ' ' </proc/${NODE_PID[t]}/cmdline | grep -q -- '$secret'"
stop_node t
check "no warning for --turn-file" not grep -q "warning" "$WORK/t.log"

export KITH_TURN="$url"
check "a node starts with KITH_TURN" start_node t
stop_node t
unset KITH_TURN

start_node t --turn "$url"
stop_node t
check "a password given with --turn gets a warning" \
  grep -q "warning: a TURN password given with --turn is visible" "$WORK/t.log"

bad="turn://kith:$secret@not-numeric:3478"
out=$(KITH_TURN="$bad" k t node --port 0 --bind 127.0.0.1 2>&1) && rc=0 || rc=$?
check "a bad TURN URL is a usage error (exit 2)" test "$rc" -eq 2
check "the error names the server, not its URL" \
  bash -c "grep -q 'TURN server 1' <<<\"\$1\" && ! grep -q -- '$secret' <<<\"\$1\"" _ "$out"
out=$(k t node --port 0 --turn-file "$WORK/missing.txt" 2>&1) && rc=0 || rc=$?
check "a missing --turn-file is an error (exit 1)" test "$rc" -eq 1
check "no log line holds the TURN password" not grep -q -- "$secret" "$WORK/t.log"
finish
