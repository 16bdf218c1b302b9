#!/usr/bin/env bash
# The passphrase prompt of kith node, in a real terminal (tmux): typing is
# not echoed, and Ctrl-C at the prompt gives the terminal its echo back.
KITH=$1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tmux.sh"

printf 'a long passphrase\n' >"$WORK/pass"
k erin init --name erin --passphrase-file "$WORK/pass" >/dev/null

# A plain sh runs kith node, then records the terminal's echo setting (an
# interactive bash would restore the terminal itself after a job dies by a
# signal, and hide the bug). The trap keeps sh alive through Ctrl-C without
# making kith ignore it.
cat >"$WORK/run.sh" <<RUN
trap ':' INT
'$KITH' --home '$(home erin)' node --port 0 --bind 127.0.0.1
stty -a | tr ' ' '\n' | grep -x -- '-\?echo' >'$WORK/echo'
RUN
tmux_start 100 20 sh "$WORK/run.sh"
check "kith node asks for the passphrase" screen_has 15 "passphrase for"
tm send-keys -t t -l "secret typing"
sleep 0.3
check "  ... without echoing what is typed" \
  bash -c "! tmux -S '$TMUX_SOCK' capture-pane -p -t t | grep -q 'secret typing'"
keys C-c
check "Ctrl-C stops it (the script goes on)" wait_for 10 test -s "$WORK/echo"
check "  ... and the terminal echoes again" test "$(cat "$WORK/echo")" = echo

finish
