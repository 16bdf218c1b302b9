#!/usr/bin/env bash
# Fuzzes every libFuzzer target of a KITH_FUZZ build for SECONDS each,
# FUZZ_JOBS (default 2) at a time, each one process, starting from the
# committed seed corpus and the regression inputs of fixed findings
# (tests/fuzz/regressions/TARGET/).
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]     (TARGET: codec, ...)
#
# New inputs go to a scratch corpus, not into the tree. An input that
# crashes, leaks, hangs (> 10 s) or trips ASan/UBSan is kept in
# BUILD_DIR/fuzz-findings/ and printed as hex; the script then exits 1.
# A target with an open finding (an input in tests/fuzz/crashes/TARGET/
# that still fails) is not fuzzed: it would only find that again. It is
# listed as skipped with the input, until the finding is fixed.
# Prints the executions of each target, and a closing
# "N passed, N failed, N skipped".
set -euo pipefail

build=${1:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}
secs=${2:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
src=$(cd "$(dirname "$0")" && pwd)
findings=$build/fuzz-findings
mkdir -p "$findings"

# Largest input per target: room for every format it reads, no more.
max_len() {
  case $1 in
  group | event | store) echo 16384 ;;
  gossip | reconcile | session | codec | control) echo 8192 ;;
  *) echo 2048 ;;
  esac
}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for d in "$src"/corpus/*/; do targets+=("$(basename "$d")"); done
fi

# In memory where there is a tmpfs: fuzz_store's database lives there.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  scratch=$(mktemp -d -p /dev/shm kith-fuzz.XXXXXX)
else
  scratch=$(mktemp -d)
fi
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch # targets' own files (fuzz_store's database)
# The inputs of tests/fuzz/crashes/$1/ that still fail.
open_findings() {
  local f
  for f in "$src/crashes/$1"/*; do
    [ -f "$f" ] || continue
    "$build/bin/fuzz_$1" -runs=1 -timeout=10 -rss_limit_mb=2048 "$f" \
      >/dev/null 2>&1 || echo "$f"
  done
}

# Fuzzes target $1; its report goes to $scratch/$1.out, and
# $scratch/$1.rc holds ok, failed or skipped.
fuzz_one() {
  local t=$1 bin=$build/bin/fuzz_$1 out=$scratch/$1.out log=$scratch/$1.log
  local open rc=0 execs f
  open=$(open_findings "$t")
  if [ -n "$open" ]; then
    {
      printf 'fuzz %-10s SKIPPED: open findings (fix them to fuzz it again):\n' "$t"
      printf '  %s\n' $open
    } >"$out"
    echo skipped >"$scratch/$t.rc"
    return
  fi
  mkdir -p "$scratch/$t"
  local seeds=("$src/corpus/$t")
  [ -d "$src/regressions/$t" ] && seeds+=("$src/regressions/$t")
  "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$findings/$t-" \
    "$scratch/$t" "${seeds[@]}" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ "$rc" -eq 0 ]; then
    printf 'fuzz %-10s ok      %10s executions in %s s\n' "$t" "${execs:-?}" \
      "$secs" >"$out"
    echo ok >"$scratch/$t.rc"
    return
  fi
  {
    printf 'fuzz %-10s FAILED  (exit %s)\n' "$t" "$rc"
    grep -E 'ERROR|runtime error|SUMMARY|^    #[0-9]' "$log" | head -n 40 ||
      tail -n 40 "$log"
    for f in "$findings/$t-"*; do
      [ -f "$f" ] || continue
      echo "  input $f:"
      od -An -tx1 -v "$f" | head -n 20
    done
  } >"$out"
  echo failed >"$scratch/$t.rc"
}

for t in "${targets[@]}"; do
  [ -x "$build/bin/fuzz_$t" ] || {
    echo "run.sh: no $build/bin/fuzz_$t (build with -DKITH_FUZZ=ON)" >&2
    exit 2
  }
done
jobs_max=${FUZZ_JOBS:-2}
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs_max" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
wait

passed=0
failed=0
skipped=0
for t in "${targets[@]}"; do
  cat "$scratch/$t.out"
  case $(cat "$scratch/$t.rc") in
  ok) passed=$((passed + 1)) ;;
  failed) failed=$((failed + 1)) ;;
  *) skipped=$((skipped + 1)) ;;
  esac
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
