# bench/lib.sh: what the benchmark scripts share. Source it after setting
# NAME (the script's name, for messages); it makes WORK, a temporary
# directory under $TMPDIR, and removes it at exit once the script has set
# OK=1 (and KEEP_WORK is not 1). Otherwise it shows the end of every log in
# it and keeps it. Processes whose ids are in PID are stopped at exit.
set -euo pipefail

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kith-bench-$NAME.XXXXXX")
OK=0
declare -a PID=()

bench_cleanup() {
  for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$OK" = 1 ] && [ "${KEEP_WORK:-0}" != 1 ]; then
    rm -rf "$WORK"
    return
  fi
  if [ "$OK" != 1 ]; then
    for f in "$WORK"/*.log; do
      [ -f "$f" ] && { echo "--- last lines of $f"; tail -n 20 "$f"; }
    done
    echo "bench/$NAME.sh: failed" >&2
  fi
  echo "bench/$NAME.sh: work directory kept: $WORK" >&2
}
trap bench_cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# past T0 LIMIT_S: have more than LIMIT_S seconds passed since T0?
past() { awk -v a="$1" -v b="$(now)" -v l="$2" 'BEGIN { exit !(b - a > l) }'; }

# verdict FIGURE OP TARGET: "met" or "NOT met"
verdict() {
  if awk -v a="$1" -v b="$3" "BEGIN { exit !(a $2 b) }"; then
    echo met
  else
    echo NOT met
  fi
}
