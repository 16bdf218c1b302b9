#!/usr/bin/env bash
# Disk full (issue 10, problem 3): a node whose home is on a small tmpfs
# sends until the disk fills. Every send that failed says "disk full" (exit
# 1) and is logged; every send that answered ok is in the sender's log,
# reaches the peer and survives a restart; nothing that failed is sent;
# once space is freed the node carries on.
KITH=$1
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
  echo "skipped: this test mounts a small tmpfs, which needs root"
  exit 77
fi
DISK="$WORK/disk"
mkdir -m 700 "$DISK"
if ! mount -t tmpfs -o size=3m,mode=0700 kith-test-full "$DISK" 2>"$WORK/mount.err"; then
  echo "skipped: cannot mount a tmpfs: $(cat "$WORK/mount.err")"
  exit 77
fi
unmount_disk() {
  local rc=$?
  for name in "${!NODE_PID[@]}"; do kill -KILL "${NODE_PID[$name]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  umount "$DISK" 2>/dev/null || umount -l "$DISK" 2>/dev/null || true
  (exit $rc)
  cleanup
}
trap unmount_disk EXIT

# The sender's home lives on the tmpfs.
home() { if [ "$1" = fill ]; then echo "$DISK/fill"; else echo "$WORK/$1"; fi; }
k fill init --name fill >/dev/null
k peer init --name peer >/dev/null
start_nodes fill peer
k fill group create disk >/dev/null
code=$(k fill --json invite disk | json_field code)
check "the peer joins" quietly k peer join "$code" --timeout 30

# Leave about 200 KiB free, then send 4 KiB messages until sends fail.
avail=$(df --output=avail -B1 "$DISK" | tail -1)
head -c $((avail - 200 * 1024)) /dev/zero >"$DISK/filler" 2>/dev/null || true
text=$(head -c 4000 /dev/zero | tr '\0' m)
: >"$WORK/acked"
fails=0
for i in $(seq 300); do
  if out=$(k fill --json send disk "$i $text" 2>"$WORK/err"); then
    json_field event_id <<<"$out" >>"$WORK/acked"
  else
    rc=$?
    fails=$((fails + 1))
    [ "$fails" -eq 1 ] && { echo "  first failure at send $i (exit $rc): $(cat "$WORK/err")"; first_rc=$rc; cp "$WORK/err" "$WORK/first.err"; }
    [ "$fails" -ge 5 ] && break
  fi
done
acked=$(wc -l <"$WORK/acked")
echo "  $acked sends answered ok, $fails failed"
check "the disk filled up (some sends failed)" test "$fails" -ge 1
check "  ... after some succeeded" test "$acked" -ge 1
check "  ... exit 1" test "${first_rc:-0}" -eq 1
check "  ... saying 'kith: error: disk full: ...'" grep -q "^kith: error: disk full: " "$WORK/first.err"
check "the node logs the failed writes" grep -q "disk full" "$WORK/fill.log"

ids_of() { k "$1" --json log disk | jq -r 'select(.type == "message") | .event_id' | sort; }
has_all_acked() { [ -z "$(comm -23 <(sort "$WORK/acked") <(ids_of "$1"))" ]; }
check "every acknowledged message is in the sender's log" has_all_acked fill
check "every acknowledged message reaches the peer" wait_for 20 has_all_acked peer
check "nothing that failed was sent" \
  test -z "$(comm -13 <(sort "$WORK/acked") <(ids_of peer))"

rm -f "$DISK/filler"
send_again() { k fill --json send disk "space again $1" | json_field event_id >>"$WORK/acked"; }
for i in 1 2 3; do
  check "with space again, send $i works" send_again $i
done
check "  ... and reaches the peer" wait_for 20 log_has peer disk "space again 3"
check "the peer and the sender agree" wait_for 20 same_state disk fill peer

check "the sender stops within 2 s of SIGINT" stop_nodes INT fill
echo "  exit: $STOP_MS ms"
start_nodes fill
check "after a restart, every acknowledged message is still there" has_all_acked fill
check "SIGINT stops both within 2 s" stop_nodes INT fill peer
finish
