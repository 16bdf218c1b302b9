#!/usr/bin/env bash
# make demo: three local nodes make a group, two join by invite code, all
# three chat, and each shows what it sees. Everything stays on 127.0.0.1.
set -euo pipefail
KITH=${1:-build/bin/kith}
KITH=$(realpath "$KITH")
DEMO=$(mktemp -d /tmp/kith-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DEMO"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { # run NAME ARGS...: shows and runs a kith command as that user
  local n=$1; shift
  printf '\033[2m%s$ kith %s\033[0m\n' "$n" "$*" >&2
  "$KITH" --home "$DEMO/$n" "$@"
}

say "Three people each set up a node"
for n in alice bob carol; do
  run $n init --name $n
  "$KITH" --home "$DEMO/$n" node --port 0 --bind 127.0.0.1 \
    2>"$DEMO/$n.log" &
  pids+=($!)
done
for n in alice bob carol; do
  for _ in $(seq 100); do
    "$KITH" --home "$DEMO/$n" status >/dev/null 2>&1 && break
    sleep 0.1
  done
done
run alice status

say "Alice makes a group and an invite code for two people"
run alice group create friends
code=$(run alice --json invite friends --uses 2 | sed 's/.*"code" *: *"\([^"]*\)".*/\1/')
echo "$code"

say "Bob and Carol join with the code"
run bob join "$code"
run carol join "$code"

say "Everyone says hello"
run alice send friends "Hi both, welcome to kith!"
run bob send friends "Hello from Bob's machine."
run carol send friends "Carol here. No server in sight."
sleep 1

for n in alice bob carol; do
  say "What $n sees"
  run $n log friends
done

say "Each node derived the same group state"
for n in alice bob carol; do
  run $n group info friends | grep -E 'members|events|state_hash'
done

say "Carol's view of the members"
run carol group members friends

# A creator's group needs the node side of announce mode and reactions.
probe=$("$KITH" --home "$DEMO/alice" react friends x x 2>&1 || true)
if ! grep -q "unknown method" <<<"$probe"; then
  say "Alice runs a fan club in announcement mode"
  run alice group create fans --announce
  fcode=$(run alice --json invite fans --uses 2 | sed 's/.*"code" *: *"\([^"]*\)".*/\1/')
  run bob join "$fcode"
  run carol join "$fcode"
  ev=$(run alice --json send fans "New album out on Friday!" |
    sed 's/.*"event_id" *: *"\([^"]*\)".*/\1/')
  run bob send fans "first!" || true
  run bob react fans "$ev" 🎉
  run carol react fans "$ev" 🎉
  run alice send fans "Signed copies for the first 100" --reply-to "$ev"
  sleep 1
  run carol log fans
fi

if command -v tmux >/dev/null; then
  say "Alice's kith chat, captured from tmux"
  sock="$DEMO/tmux.sock"
  tmux -S "$sock" -f /dev/null new-session -d -s demo -x 92 -y 16 \
    env LANG=C.UTF-8 TERM=tmux-256color "$KITH" --home "$DEMO/alice" chat friends
  for _ in $(seq 50); do
    tmux -S "$sock" capture-pane -p -t demo | grep -q "Carol here" && break
    sleep 0.1
  done
  tmux -S "$sock" capture-pane -p -t demo
  tmux -S "$sock" kill-server
fi
say "Done: the nodes stop and the demo's data directories are removed"
