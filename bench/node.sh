#!/usr/bin/env bash
# bench/node.sh BIN_DIR [EVENTS] [TEXT_BYTES]: a real `kith node` on a big
# home and on an empty one (issue 9; docs/performance.md "A node on a big
# group").
#
# kith-bench build-store writes two homes through the engine: one whose
# group "bench" holds EVENTS messages (default 100000) of TEXT_BYTES bytes
# (default 1024), one whose group holds nothing but its create event.
# kith-bench node then measures a real node on each: start-up until the
# control socket answers, memory (VmRSS, VmHWM) idle and after the logs
# and sends, `log -n 50` and `send`. The homes live in a temporary
# directory under $TMPDIR, removed at the end (kept, with the node logs,
# when something fails).
BIN=${1:?usage: bench/node.sh BIN_DIR [EVENTS] [TEXT_BYTES]}
EVENTS=${2:-100000}
TEXT=${3:-1024}
NAME=node
. "$(dirname "$0")/lib.sh"

# Targets of issue 9.
IDLE_EMPTY_KB=$((10 * 1024))
RSS_BIG_KB=$((40 * 1024))
STARTUP_S=0.5
SEND_MS=1
LOG_MS=50

measure() { # measure NAME: kith-bench node on $WORK/NAME, JSON to NAME.json
  "$BIN/kith-bench" node --kith "$BIN/kith" --home "$WORK/$1" \
    --node-log "$WORK/$1.log" --json >"$WORK/$1.json"
}

field() { jq -r ".$2" "$WORK/$1.json"; }

echo "bench/node.sh: building a home of $EVENTS messages of $TEXT bytes"
"$BIN/kith-bench" build-store --home "$WORK/empty" --events 0
"$BIN/kith-bench" build-store --home "$WORK/big" --events "$EVENTS" \
  --text-bytes "$TEXT"
measure empty
measure big

e_rss=$(field empty rss_idle_kb)
b_rss=$(field big rss_idle_kb)
b_rss_log=$(field big rss_after_log_kb)
b_hwm=$(field big hwm_after_send_kb)
b_start=$(field big startup_s)
b_send=$(field big send_ms_p50)
b_log=$(field big log_cli_ms_p50)
b_max=$((b_rss > b_rss_log ? b_rss : b_rss_log))

printf 'node on an empty group: start-up %.3f s, RSS idle %d kB (peak %d kB), send %.3f ms median\n' \
  "$(field empty startup_s)" "$e_rss" "$(field empty hwm_idle_kb)" \
  "$(field empty send_ms_p50)"
printf 'node on %s events (%s MB store): start-up %.3f s (min %.3f, max %.3f; a kith process alone %.3f s)\n' \
  "$(field big events)" "$(($(field big db_bytes) / 1000000))" "$b_start" \
  "$(field big startup_min_s)" "$(field big startup_max_s)" "$(field big exec_s)"
printf '  RSS idle %d kB (peak %d kB), after log -n 50 %d kB, after %d sends %d kB (peak %d kB)\n' \
  "$b_rss" "$(field big hwm_idle_kb)" "$b_rss_log" "$(field big sends)" \
  "$(field big rss_after_send_kb)" "$b_hwm"
printf '  log -n 50: node %.2f ms median (p99 %.2f), kith log -n 50 %.1f ms median (max %.1f)\n' \
  "$(field big log_rpc_ms_p50)" "$(field big log_rpc_ms_p99)" "$b_log" \
  "$(field big log_cli_ms_max)"
printf '  send: %.3f ms median, %.3f ms p99, %.3f ms max (one control connection)\n' \
  "$b_send" "$(field big send_ms_p99)" "$(field big send_ms_max)"
echo "targets (issue 9; the size ones are for 10^6 events):"
printf '  RSS idle, one empty group <= 10 MB: %d kB: %s\n' "$e_rss" \
  "$(verdict "$e_rss" '<=' "$IDLE_EMPTY_KB")"
printf '  RSS with %d events <= 40 MB: %d kB: %s\n' "$EVENTS" "$b_max" \
  "$(verdict "$b_max" '<=' "$RSS_BIG_KB")"
printf '  start-up <= 0.5 s: %.3f s: %s\n' "$b_start" \
  "$(verdict "$b_start" '<=' "$STARTUP_S")"
printf '  send <= 1 ms median: %.3f ms: %s\n' "$b_send" \
  "$(verdict "$b_send" '<=' "$SEND_MS")"
printf '  kith log -n 50 <= 50 ms: %.1f ms: %s\n' "$b_log" \
  "$(verdict "$b_log" '<=' "$LOG_MS")"
echo "  conditions: $(field big conditions)"
OK=1
