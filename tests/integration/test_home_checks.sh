#!/usr/bin/env bash
# The home is checked as ssh checks ~/.ssh (issue 10, problems 5 and 6): a
# home, key or database open to other users is refused with the chmod to
# run, and every way the home can fail to open gets one line naming its
# file and its cause.
KITH=$1
. "$(dirname "$0")/lib.sh"

# refused WHAT TEXT CMD...: the command exits 1 with one line holding TEXT.
refused() {
  local what=$1 text=$2 out rc
  shift 2
  out=$("$@" 2>&1 </dev/null) && rc=0 || rc=$?
  echo "  $what: $out"
  check "$what: exit 1" test "$rc" -eq 1
  check "$what: one line" test "$(wc -l <<<"$out")" -eq 1
  check "$what: says '$text'" grep -qF -- "$text" <<<"$out"
}
node() { k "$1" node --port 0 --bind 127.0.0.1; }

h=$(home nohome)
refused "a missing home" "the home $h does not exist; create an identity with: kith init --home $h" node nohome
refused "status on a missing home" "$h has no identity; create one with: kith init --home $h" k nohome status
mkdir -m 700 "$(home empty)"
refused "status on a home without identity" "has no identity; create one with: kith init" k empty status
refused "a node on a home without identity" "has no identity; create one with: kith init --home $(home empty)" node empty

k eve init --name eve >/dev/null
h=$(home eve)
chmod 755 "$h"
refused "a home others can read" "$h is open to other users (mode 0755); run: chmod 700 $h" node eve
chmod 700 "$h"
chmod 644 "$h/storage.key"
refused "a key others can read" "run: chmod 600 $h/storage.key" node eve
chmod 600 "$h/storage.key"
chmod 640 "$h/kith.db"
refused "a database others can read" "run: chmod 600 $h/kith.db" node eve
chmod 600 "$h/kith.db"
start_node eve
check "once fixed, the node runs" k eve id
stop_node eve

# Unreadable files and a read-only home: as root, permissions do not bind,
# so those run as the unprivileged user nobody, in a home of its own.
as_user=()
if [ "$(id -u)" = 0 ]; then
  if command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
    as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
  else
    echo "skipped: unreadable files and a read-only home (root, and no" \
      "setpriv or user nobody to drop to)"
    finish
    exit $?
  fi
fi
NB=$(mktemp -d /tmp/kith-home-checks.XXXXXX)
trap 'rc=$?; rm -rf "$NB"; (exit $rc); cleanup' EXIT
chmod 711 "$NB"
nb="$NB/home"
[ ${#as_user[@]} -gt 0 ] && chown nobody "$NB"
kn() { "${as_user[@]}" "$KITH" --home "$nb" "$@"; }
kn init --name nb >/dev/null
chmod 000 "$nb/storage.key"
refused "an unreadable key" "cannot read $nb/storage.key:" kn node --port 0 --bind 127.0.0.1
chmod 600 "$nb/storage.key"
chmod 000 "$nb/kith.db"
refused "an unreadable database" "cannot open $nb/kith.db:" kn node --port 0 --bind 127.0.0.1
chmod 600 "$nb/kith.db"
chmod 500 "$nb"
refused "a read-only home" "the home $nb is not writable" kn node --port 0 --bind 127.0.0.1
chmod 700 "$nb"
finish
