#!/usr/bin/env bash
# Every shell block of README.md and docs/usage.md works as written: the
# blocks run in order in one shell, in throwaway homes, on loopback.
#
# How the blocks are read:
# - only ```sh blocks run (```text and ```ini are not commands);
# - a comment line just before a block may say
#     <!-- doc-test: skip REASON -->   not run here, for the stated reason
#     <!-- doc-test: as NAME -->       run as another person: their own
#                                      home (made, with a running node, on
#                                      first use); blocks run as alice else
#     <!-- doc-test: needs METHOD -->  run only when the node has METHOD
# - `kith` is the kith under test; `kith node` starts in the background
#   (the docs run it in a terminal of its own) and, on this shared test
#   machine, on loopback and a free port unless the block names them.
KITH=$(realpath "$1")
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SCRIPT="$WORK/docs.sh"
RUN=0
SKIP=0

# The runner's prelude: the kith function and the people.
cat >"$SCRIPT" <<PRELUDE
set -euo pipefail
export HOME='$WORK/home' XDG_DATA_HOME='$WORK/home/.local/share'
unset KITH_HOME
mkdir -p "\$HOME"
cd "\$HOME"
kith() {
  local i=1 cmd="" args=("\$@")
  while [ \$i -le \$# ]; do
    case \${!i} in
    --home) i=\$((i + 2)) ;;
    --*) i=\$((i + 1)) ;;
    *) cmd=\${!i}; break ;;
    esac
  done
  if [ "\$cmd" != node ]; then '$KITH' "\$@"; return; fi
  [[ " \$* " == *" --port "* ]] || args+=(--port 0)
  [[ " \$* " == *" --bind "* ]] || args+=(--bind 127.0.0.1)
  '$KITH' "\${args[@]}" >>'$WORK/nodes.log' 2>&1 &
  local n
  for n in \$(seq 150); do
    '$KITH' "\${@:1:\$((i - 1))}" status >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the node did not start"; return 1
}
# as NAME [new]: NAME's home; "new": made, with a running node, if missing
as() {
  export KITH_HOME='$WORK/people/'\$1
  if [ "\${2:-}" = new ] && [ ! -e "\$KITH_HOME/storage.key" ]; then
    kith init --name "\$1" >/dev/null
    kith node
  fi
}
has_method() {
  local out
  out=\$('$KITH' "\$1" x x x 2>&1 || true)
  ! grep -q "unknown method" <<<"\$out"
}
PRELUDE

# add_blocks FILE: appends FILE's shell blocks to the script.
add_blocks() {
  local file=$1 no=0 in=0 directive="" last="" line
  while IFS= read -r line || [ -n "$line" ]; do
    no=$((no + 1))
    if [ $in = 0 ] && [ "$line" = '```sh' ]; then
      in=1
      directive=$(sed -n 's/^<!-- doc-test: \(.*\) -->$/\1/p' <<<"$last")
      case $directive in
      skip\ ?*) echo "skip: $file:$no: ${directive#skip }"; SKIP=$((SKIP + 1)); in=2 ;;
      skip*) fail "$file:$no: a skip without a reason"; in=2 ;;
      as\ *) printf 'echo "== %s:%s"\nas %s new\n' "$file" "$no" "${directive#as }" >>"$SCRIPT" ;;
      needs\ *) printf 'echo "== %s:%s"\nas alice\nif has_method %s; then\n' \
        "$file" "$no" "${directive#needs }" >>"$SCRIPT" ;;
      "") printf 'echo "== %s:%s"\nas alice\n' "$file" "$no" >>"$SCRIPT" ;;
      *) fail "$file:$no: unknown directive '$directive'"; in=2 ;;
      esac
      [ $in = 1 ] && RUN=$((RUN + 1))
    elif [ $in != 0 ] && [ "$line" = '```' ]; then
      [ $in = 1 ] && case $directive in needs\ *)
        printf 'else echo "skip: the node has no %s yet"; fi\n' "${directive#needs }" >>"$SCRIPT" ;;
      esac
      in=0
    elif [ $in = 1 ]; then
      printf '%s\n' "$line" >>"$SCRIPT"
    fi
    [ -n "$line" ] && last=$line
  done <"$file"
}

add_blocks "$ROOT/README.md"
add_blocks "$ROOT/docs/usage.md"
echo "running $RUN blocks, $SKIP skipped with a reason"

# Its own process group, so every node it started stops with it.
setsid bash "$SCRIPT" >"$WORK/docs.out" 2>&1 </dev/null &
pgid=$!
wait "$pgid" && rc=0 || rc=$?
kill -TERM -- "-$pgid" 2>/dev/null || true
sleep 0.5
kill -KILL -- "-$pgid" 2>/dev/null || true
if [ "$rc" -ne 0 ]; then
  echo "--- the docs' commands stopped with $rc; the last block run and what it said:"
  tail -n 25 "$WORK/docs.out"
fi
check "every shell block of README.md and docs/usage.md runs as written" test "$rc" -eq 0
check "  ... and the walk-through's message arrived" grep -q 'bob: hello' "$WORK/docs.out"
check "  ... and the script's 100 lines were posted" grep -q 'sent 100 messages' "$WORK/docs.out"
finish
