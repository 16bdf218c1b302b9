#!/usr/bin/env bash
# Churn soak (issue 10): twelve nodes in one group for about two minutes.
# While every node sends, nodes stop and start at random: by SIGINT or
# SIGTERM (each must exit within 2 s), by kill -9, one or two at a time,
# always coming back on a new port. At the end every message any node
# acknowledged is on every node, they show one state_hash, and every node
# is idle.
KITH=$1
. "$(dirname "$0")/lib.sh"

SOAK_S=${KITH_SOAK_S:-120}
nodes=(c01 c02 c03 c04 c05 c06 c07 c08 c09 c10 c11 c12)
for n in "${nodes[@]}"; do k $n init --name $n >/dev/null; done
start_nodes "${nodes[@]}"
k c01 group create soak >/dev/null
code=$(k c01 --json invite soak --uses 11 | json_field code)
for n in "${nodes[@]:1}"; do
  quietly k $n join "$code" --timeout 60 || fail "$n joins"
done

# sender NODE: sends about every second until $WORK/stop exists, keeping
# the ids its node acknowledged (a node that is down answers nothing).
sender() {
  local n=$1 i=0 out
  : >"$WORK/acked-$n"
  while [ ! -e "$WORK/stop" ]; do
    i=$((i + 1))
    if out=$(k "$n" --json send soak "$n $i" 2>/dev/null); then
      json_field event_id <<<"$out" >>"$WORK/acked-$n"
    fi
    sleep_ms $((700 + RANDOM % 600))
  done
}
senders=()
for n in "${nodes[@]}"; do
  sender $n &
  senders+=($!)
done

# The churn: every 2-4 s one or two nodes go down (clean stop or kill -9)
# and come back 1-3 s later on a new port.
slow_stops=0
stops=0
kills=0
end=$(($(now_ms) + SOAK_S * 1000))
while [ "$(now_ms)" -lt "$end" ]; do
  sleep "$((RANDOM % 3 + 2))"
  down=("${nodes[$((RANDOM % 12))]}")
  [ $((RANDOM % 3)) -eq 0 ] && down+=("${nodes[$((RANDOM % 12))]}")
  [ "${#down[@]}" -eq 2 ] && [ "${down[0]}" = "${down[1]}" ] && down=("${down[0]}")
  case $((RANDOM % 3)) in
  0)
    for n in "${down[@]}"; do kill9_node $n; done
    kills=$((kills + ${#down[@]}))
    ;;
  1)
    stop_nodes INT "${down[@]}" || slow_stops=$((slow_stops + 1))
    stops=$((stops + ${#down[@]}))
    ;;
  *)
    stop_nodes TERM "${down[@]}" || slow_stops=$((slow_stops + 1))
    stops=$((stops + ${#down[@]}))
    ;;
  esac
  sleep "$((RANDOM % 3 + 1))"
  start_nodes "${down[@]}" || fail "${down[*]} restart"
done
touch "$WORK/stop"
for pid in "${senders[@]}"; do wait "$pid" 2>/dev/null || true; done
echo "  churn: $stops clean stops, $kills kill -9, over $SOAK_S s"
check "every clean stop took at most 2 s" test "$slow_stops" -eq 0
cat "$WORK"/acked-* | sort -u >"$WORK/acked"
echo "  messages acknowledged: $(wc -l <"$WORK/acked")"

ids_of() { k "$1" --json log soak | jq -r 'select(.type == "message") | .event_id' | sort -u; }
all_delivered() {
  local n
  for n in "${nodes[@]}"; do
    [ -z "$(comm -23 "$WORK/acked" <(ids_of $n))" ] || return 1
  done
}
t0=$(now_ms)
check "every acknowledged message is on every node" wait_for 60 all_delivered
echo "  delivered everywhere $(($(now_ms) - t0)) ms after the churn ended"
check "one state_hash on all twelve" wait_for 30 same_state soak "${nodes[@]}"
missing=0
for n in "${nodes[@]}"; do
  missing=$((missing + $(comm -23 "$WORK/acked" <(ids_of $n) | wc -l)))
done
echo "  acknowledged messages missing, summed over the nodes: $missing"
cpu=$(cpu_percent 10 "${nodes[@]}")
echo "  CPU over 10 s (% of a core): $(tr '\n' ' ' <<<"$cpu")"
check "every node is idle (< 5% of a core)" \
  awk '$2 >= 5 { bad = 1 } END { exit bad }' <<<"$cpu"
check "SIGINT stops all twelve within 2 s" stop_nodes INT "${nodes[@]}"
echo "  slowest exit: $STOP_MS ms"
finish
