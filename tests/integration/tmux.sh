# kith integration tests: driving a terminal program under tmux. Source it
# after lib.sh. Each test runs its own tmux server (a private socket in the
# test's work directory), killed on exit; every wait is bounded.

command -v tmux >/dev/null || { echo "SKIP: tmux is not installed (make deps)"; exit 77; }

TMUX_SOCK="$WORK/tmux.sock"
unset TMUX # a test started from inside tmux still gets its own server

tm() { tmux -S "$TMUX_SOCK" -f /dev/null "$@"; }

tmux_cleanup() {
  tm kill-server 2>/dev/null || true
  cleanup
}
trap tmux_cleanup EXIT

# tmux_start COLUMNS ROWS COMMAND: a detached session "t" running COMMAND
# in a shell, in a UTF-8 locale with a common terminal type.
tmux_start() {
  local cols=$1 rows=$2; shift 2
  tm new-session -d -s t -x "$cols" -y "$rows" \
    env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=tmux-256color "$@"
  tm set-option -t t remain-on-exit on >/dev/null
}

screen() { tm capture-pane -p -t t; }
keys() { tm send-keys -t t "$@"; }
# type_line TEXT: types TEXT literally, then Enter.
type_line() { tm send-keys -t t -l -- "$1"; tm send-keys -t t Enter; }

# screen_has SECONDS TEXT: waits until the screen shows TEXT (grep -F).
screen_has() {
  local limit=$1 text=$2
  for _ in $(seq $((limit * 10))); do
    if screen | grep -qF -- "$text"; then return 0; fi
    sleep 0.1
  done
  echo "--- screen after $limit s without '$text':"; screen
  return 1
}

# screen_lacks SECONDS TEXT: waits until the screen no longer shows TEXT.
screen_lacks() {
  local limit=$1 text=$2
  for _ in $(seq $((limit * 10))); do
    if ! screen | grep -qF -- "$text"; then return 0; fi
    sleep 0.1
  done
  echo "--- screen after $limit s still with '$text':"; screen
  return 1
}
