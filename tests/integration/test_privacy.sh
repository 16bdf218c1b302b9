#!/usr/bin/env bash
# Smaller leaks (issue 8, item 12): group and member names never reach a
# node's log (docs/protocol.md 13.3), and the passphrase of a protected
# home does not stay in the node's memory once the storage key is derived.
KITH=$1
. "$(dirname "$0")/lib.sh"

# Names that cannot turn up by chance in ids (base32: a-z, 2-7) or logs.
names=(Alba-Nine9 Bruno-Eight8 Cleo-Zero0)
group=Circle-One1
topic=Topic-Two2
for i in 0 1 2; do k n$i init --name "${names[$i]}" >/dev/null; done
start_nodes n0 n1 n2
k n0 group create "$group" >/dev/null
code=$(k n0 --json invite "$group" --uses 2 | json_field code)
for n in n1 n2; do
  check "$n joins" quietly k $n join "$code" --timeout 30
done
k n1 send "$group" "hello" >/dev/null
k n0 role "$group" "${names[1]}" admin >/dev/null
k n1 topic "$group" "$topic" >/dev/null
k n0 kick "$group" "${names[2]}" >/dev/null
k n1 leave "$group" >/dev/null
check "the kick reached the kicked member" wait_for 15 \
  bash -c "! $KITH --home $(home n2) group members '$group' 2>/dev/null | grep -q 'Cleo-Zero0'"
stop_nodes INT n0 n1 n2
for text in "${names[@]}" "$group" "$topic"; do
  check "no log holds '$text'" bash -c "! grep -qF -- '$text' '$WORK'/n*.log"
done

# The passphrase. Reading another process's memory needs root (or a
# ptrace scope that allows it); the node id, which the node must hold,
# shows that the memory could be read at all. A sanitizer build keeps its
# heap in mappings of many gigabytes, too large to read here: then the
# check is skipped, with a line saying so.
MEM_REGION_MAX=$((1 << 30))
mem_has() { # mem_has PID TEXT: is TEXT anywhere in the process's memory?
  local range perms rest start end
  while read -r range perms rest; do
    [[ $perms == r* ]] || continue
    [[ $rest == *"[vvar]"* || $rest == *"[vsyscall]"* ]] && continue
    start=$((16#${range%-*}))
    end=$((16#${range#*-}))
    [ $((end - start)) -le "$MEM_REGION_MAX" ] || continue
    if dd if="/proc/$1/mem" bs=64K iflag=skip_bytes,count_bytes \
      skip="$start" count=$((end - start)) 2>/dev/null | grep -qaF -- "$2"; then
      return 0
    fi
  done <"/proc/$1/maps"
  return 1
}
huge_maps() { # does the process have readable mappings too large to read?
  local range perms rest
  while read -r range perms rest; do
    [[ $perms == r* ]] || continue
    [ $((16#${range#*-} - 16#${range%-*})) -le "$MEM_REGION_MAX" ] || return 0
  done <"/proc/$1/maps"
  return 1
}
pass="Passphrase-Xyzzy-77-QQ"
printf '%s\n' "$pass" >"$WORK/pass"
k pp init --name pp --passphrase-file "$WORK/pass" >/dev/null
start_node pp --passphrase-file "$WORK/pass"
ppid=$(k pp --json id | json_field node_id)
if huge_maps "${NODE_PID[pp]}"; then
  echo "skipped: the passphrase check (the node has mappings over 1 GiB," \
    "as a sanitizer build does; the plain build runs the check)"
elif ! mem_has "${NODE_PID[pp]}" "$ppid"; then
  echo "skipped: the node's memory cannot be read here (needs root or a" \
    "permissive ptrace scope), so the passphrase check cannot run"
else
  check "the running node does not hold the passphrase in memory" \
    bash -c "MEM_REGION_MAX=$MEM_REGION_MAX; $(declare -f mem_has); ! mem_has ${NODE_PID[pp]} '$pass'"
fi
check "the passphrase-protected node stops within 2 s" stop_nodes INT pp
finish
