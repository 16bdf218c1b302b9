#!/usr/bin/env bash
# bench/partition.sh BIN_DIR [HISTORY] [ADDS] [NODES]: a partition heals
# (issue 9; docs/performance.md "A partition heals").
#
# kith-bench build-store writes NODES homes (default 4) whose group "bench"
# holds HISTORY messages (default 10000) of 100 bytes, each home
# remembering the signal addresses of the earlier nodes of its own half
# only. Real `kith node`s on loopback, started one after another, then
# link within their halves, and never across: nobody in one half knows an
# address in the other, and an introduction needs a common neighbour.
# Each half adds ADDS messages (default 2000), spread
# over its nodes, with `kith send bench - --lines`, and the script waits
# until each half agrees within itself. Then it heals the partition by
# telling node 0 the address of the first node of the other half (`kith
# friend add ID --addr 127.0.0.1:PORT`: the node links to a friend whose
# address it knows at its next tick) and measures the time until every
# node shows the same state_hash and holds every event. Every wait is
# bounded; the homes and logs are removed at the end (kept on failure).
BIN=${1:?usage: bench/partition.sh BIN_DIR [HISTORY] [ADDS] [NODES]}
HISTORY=${2:-10000}
ADDS=${3:-2000}
NODES=${4:-4}
TARGET_S=10          # issue 9: same state_hash everywhere in <= 10 s
START_LIMIT_S=120    # a node's control socket answers
LINK_LIMIT_S=60      # the nodes of a half are linked
HALF_LIMIT_S=600     # a half agrees within itself after the adds
HEAL_LIMIT_S=600     # the whole group agrees after the heal
HEAL_POLL_S=0.3      # between two rounds of questions to every node
HALF=$(((NODES + 1) / 2))
[ "$NODES" -ge 2 ] || { echo "bench/partition.sh: NODES must be 2 or more" >&2; exit 2; }
NAME=partition
. "$(dirname "$0")/lib.sh"
declare -a ID=()

k() { local i=$1; shift; "$BIN/kith" --home "$WORK/n$i" "$@"; }
info() { k "$1" --json group info bench | jq -r ".$2"; }

# wait_until LIMIT_S WHAT COMMAND...: retries every 0.1 s; fails (printed)
# after LIMIT_S seconds.
wait_until() {
  local limit=$1 what=$2 t0
  shift 2
  t0=$(now)
  until "$@" >/dev/null 2>&1; do
    if past "$t0" "$limit"; then
      echo "bench/partition.sh: $what not reached in $limit s" >&2
      return 1
    fi
    sleep 0.1
  done
}

# A base port with NODES free UDP ports after it.
pick_ports() {
  local base used
  used=$(ss -Huan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }')
  for _ in $(seq 100); do
    base=$((20000 + RANDOM % 40000))
    local free=1
    for i in $(seq 0 $((NODES - 1))); do
      if grep -qx "$((base + i))" <<<"$used"; then free=0; fi
    done
    [ "$free" = 1 ] && { echo "$base"; return 0; }
  done
  return 1
}

# agree FROM TO EVENTS: nodes FROM..TO-1 hold EVENTS events and one
# state_hash.
agree() {
  local from=$1 to=$2 want=$3 hashes="" n
  for i in $(seq "$from" $((to - 1))); do
    n=$(info "$i" events) || return 1
    [ "$n" = "$want" ] || return 1
    hashes+="$(info "$i" state_hash)"$'\n'
  done
  [ "$(sort -u <<<"$hashes" | grep -c .)" = 1 ]
}

has_peer() { [ -n "$(k "$1" --json peers)" ]; }

# Does node i have a link into the other half?
crosses() {
  local i=$1 j peers
  peers=$(k "$i" --json peers | jq -r .node_id)
  for j in $(seq 0 $((NODES - 1))); do
    if [ $((i < HALF)) != $((j < HALF)) ] && grep -qx "${ID[$j]}" <<<"$peers"; then
      return 0
    fi
  done
  return 1
}

# add I COUNT: node I posts COUNT messages over one control connection.
add() {
  seq 1 "$2" | sed "s/^/partitioned message from n$1, number /" |
    k "$1" send bench - --lines >/dev/null
}

BASE=$(pick_ports) || { echo "bench/partition.sh: no free ports" >&2; exit 1; }
echo "bench/partition.sh: $NODES nodes (halves of $HALF and $((NODES - HALF))), history $HISTORY, $ADDS messages added in each half, ports $BASE.."
t=$(now)
"$BIN/kith-bench" build-store --home "$WORK" --events "$HISTORY" \
  --nodes "$NODES" --port-base "$BASE" --halves --text-bytes 100 \
  --json >"$WORK/build.json"
for i in $(seq 0 $((NODES - 1))); do
  (exec "$BIN/kith" --home "$WORK/n$i" node --port $((BASE + i)) \
    --bind 127.0.0.1 >>"$WORK/n$i.log" 2>&1 </dev/null) &
  PID[$i]=$!
  wait_until "$START_LIMIT_S" "node n$i answering" k "$i" status
  ID[$i]=$(k "$i" --json id | jq -r .node_id)
done
E0=$(info 0 events)
for i in $(seq 0 $((NODES - 1))); do
  if [ "$HALF" -gt 1 ] && [ $((NODES - HALF)) -gt 1 ]; then
    wait_until "$LINK_LIMIT_S" "node n$i linked in its half" has_peer "$i"
  fi
done
echo "  homes built in $(jq -r '.seconds * 10 | round / 10' "$WORK/build.json") s; nodes up and linked $(since "$t") s after the start; $E0 events each"

# Each half adds ADDS messages, spread over its nodes, all at once.
t=$(now)
pids=()
for i in $(seq 0 $((NODES - 1))); do
  if [ "$i" -lt "$HALF" ]; then lo=0 n=$HALF; else lo=$HALF n=$((NODES - HALF)); fi
  share=$((ADDS / n + (i - lo < ADDS % n ? 1 : 0)))
  add "$i" "$share" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
t_add=$(since "$t")
wait_until "$HALF_LIMIT_S" "half A agreeing" agree 0 "$HALF" $((E0 + ADDS))
wait_until "$HALF_LIMIT_S" "half B agreeing" agree "$HALF" "$NODES" $((E0 + ADDS))
t_halves=$(since "$t")
for i in $(seq 0 $((NODES - 1))); do
  if crosses "$i"; then
    echo "bench/partition.sh: node n$i linked across the partition" >&2
    exit 1
  fi
done
if [ "$(info 0 state_hash)" = "$(info "$HALF" state_hash)" ]; then
  echo "bench/partition.sh: the halves agree before the heal" >&2
  exit 1
fi
echo "  halves: adds sent in $t_add s, each half agreeing within itself after $t_halves s"
echo "  heal: node n0 is told the address of node n$HALF; every node should hold $((E0 + 2 * ADDS)) events"

# gossip_stats: one line per node of its gossip counters (kith-bench
# gossip-stats), to show where a slow heal stands: events held for
# parents, payloads received (of which duplicates), WANTs sent,
# overflows at the engine's bounds, verdicts "not now" (held events the
# group forgot, among others), reconciliation steps (from 10 s on: the
# target).
gossip_stats() {
  for i in $(seq 0 $((NODES - 1))); do
    "$BIN/kith-bench" gossip-stats --home "$WORK/n$i" | jq -r \
      '"      n'"$i"' gossip: held \(.held), payloads \(.payloads) (duplicates \(.duplicates)), wants sent \(.wants_sent), overflows \(.overflows), not now \(.later), reconciliation steps \(.recon_rounds)"' ||
      true
  done
}

# heal_wait T0 WANT: polls every node (each round asks each node with a
# kith command, about 10 ms each, then sleeps HEAL_POLL_S) until all hold
# WANT events and one state_hash, noting in DONE when each first held them
# all, and printing what each holds at REPORT_AT seconds; fails after
# HEAL_LIMIT_S.
REPORT_AT=(5 10 30 60 120 300 600)
declare -a DONE=()
heal_wait() {
  local t0=$1 want=$2 n all counts r=0
  while :; do
    all=1 counts=""
    for i in $(seq 0 $((NODES - 1))); do
      n=$(info "$i" events) || n="(no answer)"
      counts+=" n$i $n"
      if [ "$n" = "$want" ]; then
        [ -n "${DONE[$i]:-}" ] || DONE[$i]=$(since "$t0")
      else
        all=0
      fi
    done
    if [ "$all" = 1 ] && agree 0 "$NODES" "$want"; then return 0; fi
    while [ "$r" -lt ${#REPORT_AT[@]} ] && past "$t0" "${REPORT_AT[$r]}"; do
      echo "    after ${REPORT_AT[$r]} s, events held:$counts"
      [ "${REPORT_AT[$r]}" -lt "$TARGET_S" ] || gossip_stats
      r=$((r + 1))
    done
    if past "$t0" "$HEAL_LIMIT_S"; then
      echo "bench/partition.sh: the whole group not agreeing in $HEAL_LIMIT_S s (each should hold $want events)" >&2
      return 1
    fi
    sleep "$HEAL_POLL_S"
  done
}

# Heal: node 0 learns the address of the first node of the other half.
t=$(now)
k 0 friend add "${ID[$HALF]}" --addr "127.0.0.1:$((BASE + HALF))" \
  --name bridge >/dev/null
heal_wait "$t" $((E0 + 2 * ADDS))
t_heal=$(since "$t")
verdict=$(verdict "$t_heal" '<=' "$TARGET_S")
echo "  healed: every node shows one state_hash and $((E0 + 2 * ADDS)) events $t_heal s after the friend add"
for i in $(seq 0 $((NODES - 1))); do
  echo "    n$i ($([ "$i" -lt "$HALF" ] && echo "half A" || echo "half B")) held every event after ${DONE[$i]} s"
done
echo "target (issue 9, history 10^5, 10^4 added in each half): same state_hash everywhere in <= $TARGET_S s: $t_heal s: $verdict"
echo "  conditions: $(jq -r .conditions "$WORK/build.json"), load average $(cut -d' ' -f1-3 /proc/loadavg)"
OK=1
