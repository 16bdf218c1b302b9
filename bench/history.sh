#!/usr/bin/env bash
# A newcomer's history over a real link: two `kith node` processes on
# 127.0.0.1; "old" creates a group and posts MESSAGES messages of
# TEXT_BYTES bytes each (kith send --lines), then "new" joins by an invite
# code and `kith join` is timed from the CLI (offer, ICE, session,
# admission, reconciliation and the event stream, ingest and store: join
# returns once admitted and synced). Prints the time, the rate in
# events/s (every event of the group) and MB/s (of message text), and
# checks that the newcomer holds every message. Compare events/s with
# `kith-bench ingest --text-bytes TEXT_BYTES` (the node's ingest rate on
# one core, the same message size). The CPU time each node used during the
# join says whether the newcomer was busy all along (ingest-bound) or
# waited; the newcomer's log line "join of" gives its timeline (link up,
# first and last event of the history, from the request) and its main
# thread's CPU time, of which handling the sessions' frames (the ingest)
# and store commits.
# Usage: bench/history.sh path/to/kith [MESSAGES [TEXT_BYTES]]
set -euo pipefail

KITH=${1:?usage: $0 path/to/kith [MESSAGES [TEXT_BYTES]]}
COUNT=${2:-4500}
TEXT=${3:-4000}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kith-history.XXXXXX")
declare -A PID=()

cleanup() {
  local n
  for n in "${!PID[@]}"; do kill -TERM "${PID[$n]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap "exit 143" TERM INT

k() { local n=$1; shift; "$KITH" --home "$WORK/$n" "$@"; }
now_ms() { date +%s%3N; }
# cpu_ms NAME [TASK]: CPU time (user + system) a node has used, ms: all
# threads, or its main thread with TASK=main.
cpu_ms() {
  local f="/proc/${PID[$1]}/stat"
  [ "${2:-}" = main ] && f="/proc/${PID[$1]}/task/${PID[$1]}/stat"
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print int(($12 + $13) * 1000 / hz) }' "$f"
}

start() { # start NAME: a node on loopback; waits (at most 15 s) for it
  (exec "$KITH" --home "$WORK/$1" node --port 0 --bind 127.0.0.1 \
    >>"$WORK/$1.log" 2>&1 </dev/null) &
  PID[$1]=$!
  for _ in $(seq 150); do
    k "$1" status >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "node $1 did not start:"; tail -n 20 "$WORK/$1.log"
  return 1
}

for n in old new; do k $n init --name $n >/dev/null; done
start old
start new
k old group create hist >/dev/null
t0=$(now_ms)
awk -v n="$COUNT" -v b="$TEXT" 'BEGIN {
  s = sprintf("%" (b - 10) "s", ""); gsub(/ /, "x", s)
  for (i = 1; i <= n; i++) printf "%09d %s\n", i, s }' |
  k old send hist - --lines >/dev/null
echo "history: $COUNT messages of $TEXT bytes posted in $(($(now_ms) - t0)) ms"
events=$(k old --json group info hist | jq -r .events)
code=$(k old --json invite hist | jq -r .code)
t0=$(now_ms)
c_new=$(cpu_ms new) c_old=$(cpu_ms old) m_new=$(cpu_ms new main) m_old=$(cpu_ms old main)
rc=0
k new join "$code" --timeout 300 >"$WORK/join.out" 2>&1 || rc=$?
ms=$(($(now_ms) - t0))
c_new=$(($(cpu_ms new) - c_new)) c_old=$(($(cpu_ms old) - c_old))
m_new=$(($(cpu_ms new main) - m_new)) m_old=$(($(cpu_ms old main) - m_old))
got=$(k new --json log hist | jq -r 'select(.type == "message") | .text' | wc -l)
held=$(k new --json log hist | jq -r 'select(.type == "message") | .text' |
  sort -u | wc -l)
bytes=$((COUNT * TEXT))
awk -v ms="$ms" -v ev="$events" -v b="$bytes" -v c="$COUNT" -v t="$TEXT" \
  -v got="$got" -v held="$held" -v rc="$rc" 'BEGIN {
  printf "join: %d ms (exit %d); %d events, %d messages of %d bytes (%.1f MB of text)\n",
    ms, rc, ev, c, t, b / 1e6
  printf "rate: %.0f events/s, %.2f MB/s of text\n", ev / (ms / 1000), b / 1e6 / (ms / 1000)
  printf "newcomer holds %d messages (%d distinct) of %d\n", got, held, c }'
echo "CPU during the join: newcomer $c_new ms (main thread $m_new ms)," \
  "admitter $c_old ms (main thread $m_old ms), of $ms ms; all threads," \
  "the crypto worker's included"
grep "join of" "$WORK/new.log" | tail -n 1 | sed 's/.*: join of [^:]*: /newcomer: /' || true

grep -c "limit exceeded" "$WORK/new.log" |
  sed 's/^/newcomer log lines "limit exceeded": /' || true
[ "$rc" -eq 0 ] && [ "$got" -eq "$COUNT" ] && [ "$held" -eq "$COUNT" ]
