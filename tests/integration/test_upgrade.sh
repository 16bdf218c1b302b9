#!/usr/bin/env bash
# A home written by kith at commit 12e2c4d (store schema 2: every event
# replayed at start-up, texts in their own table) opens with this kith:
# the store is upgraded in place, the groups come back with their
# messages, notices, members and roles, the nodes agree, and they carry on
# (tests/vectors/homes-12e2c4d, made by make.sh there).
KITH=$1
. "$(dirname "$0")/lib.sh"
FIX=$(cd "$(dirname "$0")/../vectors/homes-12e2c4d" && pwd)

for n in ann bob cat; do
  mkdir -m 700 "$(home $n)"
  install -m 600 "$FIX/$n/kith.db" "$FIX/$n/storage.key" "$(home $n)/"
done
# Each node on the port it had, which the others' stores remember: the
# one the other two homes know and its own does not.
ports() { sqlite3 "$FIX/$1/kith.db" 'SELECT port FROM peers' | sort -u; }
old_port() {
  local others=() n
  for n in ann bob cat; do [ "$n" = "$1" ] || others+=("$n"); done
  comm -23 <(sort -u <(ports "${others[0]}") <(ports "${others[1]}")) <(ports "$1") | head -1
}
# The old port may be taken meanwhile (it lies in the range the system
# hands out to other sockets): then any port; this node still dials the
# others, and they learn its new address first hand (ADDRS).
start_old() {
  start_node "$1" --port "$(old_port "$1")" ||
    { echo "  ($1's old port is taken: starting it on another)"; start_node "$1"; }
}
for n in ann bob cat; do start_old "$n"; done

messages() { k "$1" --json log "$2" | jq -r 'select(.type == "message") | .text'; }
notices() { k "$1" --json log "$2" | jq -r 'select(.type == "notice") | .text'; }
club="hello from ann
hi ann, bob here
cat says hi
now I am admin
after the kick: only ann and bob read this"
check "ann's club keeps its five messages, in order" test "$(messages ann club)" = "$club"
check "  ... and so does bob's" test "$(messages bob club)" = "$club"
check "the topic is a notice now, not a message" \
  grep -q "the club of three" <<<"$(notices ann club)"
check "  ... and the group shows it" \
  test "$(k ann --json group info club | json_field topic)" = "the club of three"
check "the kick is a notice" grep -q "cat was removed by ann" <<<"$(notices ann club)"
check "the pair keeps its messages" \
  test "$(messages bob pair)" = "$(printf 'a pair of two\nyes')"
roles() { k "$1" --json group members club | jq -r '.name + " " + .role' | sort; }
check "members and roles as they were" test "$(roles bob)" = "$(printf 'ann owner\nbob admin')"
check "cat, kicked, keeps what it read before the kick" \
  test "$(messages cat club)" = "$(head -4 <<<"$club")"
check "  ... and its log says it was removed" \
  grep -q "cat was removed by ann" <<<"$(notices cat club)"
check "ann and bob agree on club" wait_for 20 same_state club ann bob
check "  ... and on pair" wait_for 20 same_state pair ann bob
check "bob posts after the upgrade" k bob send club "first post of the new kith"
check "  ... and ann reads it" wait_for 20 log_has ann club "first post of the new kith"
sleep 1
check "  ... cat does not" test "$(messages cat club | grep -c 'first post' || true)" -eq 0
stop_nodes INT ann bob
for n in ann bob; do start_old "$n"; done
check "after a second start (nothing left to convert) all is there" \
  test "$(messages ann club | wc -l)" -eq 6
check "  ... and they agree" wait_for 20 same_state club ann bob
finish
