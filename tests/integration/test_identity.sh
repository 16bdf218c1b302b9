#!/usr/bin/env bash
# One identity online twice (issue 10, problem 4): a home copied and run
# beside the original. Both nodes say so in their logs, they stop knocking
# each other off the other members' links, the newer one keeps the links,
# and the group carries on, idle.
KITH=$1
. "$(dirname "$0")/lib.sh"

for n in ada bea cy; do k $n init --name $n >/dev/null; done
start_nodes ada bea cy
k ada group create twins >/dev/null
code=$(k ada --json invite twins --uses 2 | json_field code)
for n in bea cy; do
  check "$n joins" k $n join "$code" --timeout 30
done
cyid=$(k cy --json id | json_field node_id)

# The copy: the same home, started while the original runs.
stop_nodes TERM cy
cp -a "$(home cy)" "$(home cy2)"
start_nodes cy
sleep 2
start_nodes cy2

says_so() { grep -q "another node runs with this identity" "$WORK/$1.log"; }
check "the original says another node runs with its identity" \
  wait_for 30 says_so cy
check "the copy says so too" wait_for 30 says_so cy2
grep -h "another node runs with this identity" "$WORK/cy.log" "$WORK/cy2.log" |
  sed 's/^/  /'

flaps() { cat "$WORK/ada.log" "$WORK/bea.log" | grep -c "reconnected" || true; }
links_to_cy() { k "$1" --json peers | grep -c "$cyid" || true; }
# The newer one takes over each member's link once; then nothing moves.
settled() {
  [ "$(k cy --json peers | wc -l)" -eq 0 ] && peers_up cy2 2 &&
    [ "$(links_to_cy ada)" -eq 1 ] && [ "$(links_to_cy bea)" -eq 1 ]
}
check "the copy (the newer one) ends up with the links, the original none" \
  wait_for 30 settled
before=$(flaps)
cpu=$(cpu_percent 10 ada bea cy cy2)
after=$(flaps)
echo "  'reconnected' in the others' logs: $before, 10 s later $after"
check "they stop fighting: no link is knocked off any more" \
  test "$before" -eq "$after"
echo "  CPU over 10 s (% of a core): $(tr '\n' ' ' <<<"$cpu")"
check "every node is idle (< 5% of a core)" \
  awk '$2 >= 5 { bad = 1 } END { exit bad }' <<<"$cpu"
check "  ... and keeps them" settled

k ada send twins "for whoever is cy now" >/dev/null
check "the message reaches the node that kept the links" \
  wait_for 15 log_has cy2 twins "for whoever is cy now"
check "bea and the copy agree on the state" wait_for 15 same_state twins bea cy2
finish
