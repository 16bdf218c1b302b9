#!/usr/bin/env bash
# kith log --follow (issue 10, problem 7): prints what arrives, and when
# the node goes away it ends with exit 3 and "the node stopped".
KITH=$1
. "$(dirname "$0")/lib.sh"

k fay init --name fay >/dev/null
start_node fay
k fay group create notes >/dev/null
k fay send notes "before" >/dev/null
k fay log notes --follow >"$WORK/follow.out" 2>"$WORK/follow.err" &
follower=$!
check "the log is printed" wait_for 10 grep -q "before" "$WORK/follow.out"
k fay send notes "while following" >/dev/null
check "new messages follow" wait_for 10 grep -q "while following" "$WORK/follow.out"
check "the node stops within 2 s of SIGINT" stop_nodes INT fay
check "the follower ends too" wait_for 5 proc_gone "$follower"
wait "$follower" && rc=0 || rc=$?
check "  ... with exit 3" test "$rc" -eq 3
check "  ... saying the node stopped" \
  grep -qx "kith: error: the node stopped" "$WORK/follow.err"
finish
