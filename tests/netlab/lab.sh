# shellcheck shell=bash
# kith network lab: Linux network namespaces with NAT routers and coturn.
# Source it from bash; it defines lab_require, lab_up, lab_down, lab_exec
# and a few helpers. Nothing here touches the host's own network: every
# address and interface lives inside namespaces this file creates, named
# with a per-run prefix so two runs never collide.
#
#                    +------------ ns "inet": bridge br0 100.64.0.1/24 ------------+
#                    |                 (no forwarding: only a switch)              |
#   ns turn  pub0 100.64.0.2 (+.4)   ns pub pub0 100.64.0.3   ns r1 wan0 .11   ns r2 wan0 .12
#   coturn STUN/TURN udp 3478        public relay node        NAT              NAT
#                                                             lan0 192.168.1.1 lan0 192.168.2.1
#                                                             ns h1 lan0 .1.2  ns h2 lan0 .2.2
#
# Interfaces are named pub0/wan0/lan0 (never veth*): libnice skips veth*.
# NAT per router: "cone" = MASQUERADE (port-preserving, endpoint-independent
# mapping, address+port-dependent filtering: a port-restricted cone),
# "symmetric" = MASQUERADE --random-fully (a new random port per
# destination), "fullcone" = MASQUERADE plus every unsolicited UDP packet
# to the router forwarded to the home's host on the same port
# (endpoint-independent mapping and filtering: a full-cone NAT, as many
# home routers are for UDP; the port is preserved, so the forward lands on
# the socket that owns the mapping). Routers forward lan->wan and only
# established replies back
# and drop unsolicited packets to themselves, so a home is reachable from
# outside only through its NAT mappings, and the two homes cannot reach
# each other's private addresses. No latency or loss is emulated unless a
# test asks for it (lab_delay: the kernel here has no sch_netem), so
# round-trip times in the lab are ~0.

LAB_TURN_IP=100.64.0.2
LAB_TURN_ALT_IP=100.64.0.4 # second address: coturn does RFC 5780 with two
LAB_PUB_IP=100.64.0.3
LAB_GW_IP=100.64.0.1
LAB_R1_WAN=100.64.0.11
LAB_R2_WAN=100.64.0.12
LAB_H1_IP=192.168.1.2
LAB_H2_IP=192.168.2.2
LAB_STUN="$LAB_TURN_IP:3478"
LAB_TURN_URL="turn://kith:labpass@$LAB_TURN_IP:3478"
LAB_ROLES="inet turn pub r1 h1 r2 h2"
LAB_MAX_STALE=50 # at most this many leftover namespaces reaped per run

LAB_PREFIX=""
LAB_RUN=""
LAB_IS_UP=0

lab_skip() { echo "SKIP: $*"; exit 77; }

# lab_require: exit 77 (skipped) with a reason unless root and all tools.
lab_require() {
  [ "$(id -u)" = 0 ] || lab_skip "network lab needs root (network namespaces, iptables)"
  local t
  for t in ip iptables turnserver turnutils_stunclient turnutils_natdiscovery \
    jq timeout; do
    command -v "$t" >/dev/null 2>&1 ||
      lab_skip "network lab needs '$t' (make deps installs iproute2 iptables coturn jq)"
  done
  local probe="klprobe$$"
  ip netns add "$probe" 2>/dev/null ||
    lab_skip "cannot create network namespaces here (ip netns add failed)"
  if ! ip netns exec "$probe" iptables -t nat -A POSTROUTING -o lo \
    -j MASQUERADE --random-fully 2>/dev/null; then
    ip netns del "$probe"
    lab_skip "iptables NAT (MASQUERADE --random-fully) unavailable in a namespace"
  fi
  ip netns del "$probe"
}

lab_ns() { echo "$LAB_PREFIX-$1"; } # lab_ns ROLE: the namespace's full name

# lab_exec ROLE CMD...: run CMD inside the namespace of ROLE (inet, turn,
# pub, r1, h1, r2, h2).
lab_exec() {
  local role=$1; shift
  ip netns exec "$(lab_ns "$role")" "$@"
}

# Reap namespaces left by earlier runs whose script died without cleaning
# up (SIGKILL): their names carry the owner's pid.
lab_reap_stale() {
  local ns pid n=0
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^kl[0-9]+x[0-9a-f]+-' || true); do
    n=$((n + 1)); [ "$n" -le "$LAB_MAX_STALE" ] || break
    pid=${ns#kl}; pid=${pid%%x*}
    if ! kill -0 "$pid" 2>/dev/null; then
      lab_kill_ns "$ns"
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
}

# Processes keep a namespace alive after `ip netns del`: end those running
# inside it (all were started by this lab), by pid, TERM then KILL.
lab_kill_ns() {
  local ns=$1 pids=()
  mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null)
  [ "${#pids[@]}" -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 20); do
    mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null)
    [ "${#pids[@]}" -gt 0 ] || return 0
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
}

# lab_link NS_A IF_A NS_B IF_B: a veth pair with one end in each namespace
# (created directly there, so nothing appears in the host namespace).
lab_link() {
  ip link add "$2" netns "$(lab_ns "$1")" type veth peer name "$4" netns "$(lab_ns "$3")"
  lab_exec "$1" ip link set "$2" up
  lab_exec "$3" ip link set "$4" up
}

lab_addr() { lab_exec "$1" ip addr add "$3" dev "$2"; }

lab_make_namespaces() {
  local r
  for r in $LAB_ROLES; do
    ip netns add "$(lab_ns "$r")"
    lab_exec "$r" ip link set lo up
  done
  lab_exec inet ip link add br0 type bridge
  lab_exec inet ip link set br0 up
  lab_addr inet br0 "$LAB_GW_IP/24"
  lab_exec inet sysctl -qw net.ipv4.ip_forward=0
}

lab_make_public() {
  local r
  for r in turn pub r1 r2; do
    local ifname=pub0
    case $r in r1 | r2) ifname=wan0 ;; esac
    lab_link inet "p-$r" "$r" "$ifname"
    lab_exec inet ip link set "p-$r" master br0
  done
  lab_addr turn pub0 "$LAB_TURN_IP/24"
  lab_addr turn pub0 "$LAB_TURN_ALT_IP/24"
  lab_addr pub pub0 "$LAB_PUB_IP/24"
  lab_addr r1 wan0 "$LAB_R1_WAN/24"
  lab_addr r2 wan0 "$LAB_R2_WAN/24"
  for r in turn pub r1 r2; do
    lab_exec "$r" ip route add default via "$LAB_GW_IP"
  done
}

# lab_make_home N NAT: router rN and host hN on 192.168.N.0/24.
lab_make_home() {
  local n=$1 nat=$2 r="r$1" h="h$1"
  lab_link "$r" lan0 "$h" lan0
  lab_addr "$r" lan0 "192.168.$n.1/24"
  lab_addr "$h" lan0 "192.168.$n.2/24"
  lab_exec "$h" ip route add default via "192.168.$n.1"
  lab_exec "$r" sysctl -qw net.ipv4.ip_forward=1
  lab_exec "$r" iptables -t nat -A POSTROUTING -o wan0 -j MASQUERADE || return 1
  lab_set_nat "$r" "$nat" || return 1
  lab_exec "$r" iptables -P FORWARD DROP
  lab_exec "$r" iptables -A FORWARD -i lan0 -o wan0 -j ACCEPT
  lab_exec "$r" iptables -A FORWARD -i wan0 -o lan0 \
    -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  if [ "$nat" = fullcone ]; then
    lab_exec "$r" iptables -t nat -A PREROUTING -i wan0 -p udp \
      -j DNAT --to-destination "192.168.$n.2" || return 1
    lab_exec "$r" iptables -A FORWARD -i wan0 -o lan0 -p udp \
      -m conntrack --ctstate DNAT -j ACCEPT
  fi
  # Unsolicited packets to the router itself are dropped, as home routers
  # do. This matters for hole punching: a peer's early check to a mapped
  # port would otherwise leave a conntrack entry for (peer -> router:port)
  # that clashes with the outgoing check, and MASQUERADE would then give
  # the outgoing flow another port: an endpoint-dependent mapping. A packet
  # dropped here never confirms its conntrack entry, so no clash.
  lab_exec "$r" iptables -A INPUT -i wan0 -m conntrack --ctstate NEW,INVALID -j DROP
}

# lab_set_nat ROUTER cone|fullcone|symmetric: (re)sets the NAT mapping of
# a router. New flows get the new behaviour; existing mappings stay until
# they expire. The filtering of a full cone is set by lab_make_home only.
lab_set_nat() {
  local rnd=()
  case $2 in
    cone | fullcone) ;;
    symmetric) rnd=(--random-fully) ;;
    *) echo "lab: NAT type must be cone, fullcone or symmetric, not '$2'" >&2; return 2 ;;
  esac
  lab_exec "$1" iptables -t nat -R POSTROUTING 1 -o wan0 -j MASQUERADE "${rnd[@]}"
}

lab_start_turn() {
  lab_exec turn turnserver -n -v --no-cli --no-tls --no-dtls \
    -L "$LAB_TURN_IP" -L "$LAB_TURN_ALT_IP" -E "$LAB_TURN_IP" \
    --listening-port 3478 --min-port 49152 --max-port 49999 \
    --lt-cred-mech --user kith:labpass --realm kith.lab --fingerprint \
    --db "$LAB_RUN/turndb" --log-file "$LAB_RUN/turn.log" --simple-log \
    --no-stdout-log --pidfile "$LAB_RUN/turn.pid" \
    >"$LAB_RUN/turn.out" 2>&1 </dev/null &
  LAB_TURN_PID=$!
  for _ in $(seq 50); do # at most ~10 s
    [ "$(lab_stun pub)" != "" ] && return 0
    sleep 0.2
  done
  echo "lab_up: coturn did not answer STUN; its log:" >&2
  tail -n 30 "$LAB_RUN/turn.log" "$LAB_RUN/turn.out" >&2 2>/dev/null || true
  return 1
}

# lab_up NAT1 NAT2: build the lab (each NAT cone, fullcone or symmetric) and start
# coturn. Sets LAB_RUN, a fresh directory for logs and node homes.
lab_up() {
  local nat1=${1:-cone} nat2=${2:-cone}
  lab_reap_stale
  LAB_PREFIX="kl$$x$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
  LAB_RUN=$(mktemp -d /tmp/kith-netlab.XXXXXX)
  chmod 755 "$LAB_RUN"
  LAB_IS_UP=1
  echo "lab: $LAB_PREFIX-* (home 1 $nat1 NAT, home 2 $nat2 NAT), run dir $LAB_RUN"
  lab_make_namespaces &&
    lab_make_public &&
    lab_make_home 1 "$nat1" &&
    lab_make_home 2 "$nat2" &&
    lab_start_turn
}

# lab_down: end every process inside the lab's namespaces and delete them.
# Safe to call twice and from a trap.
lab_down() {
  [ "$LAB_IS_UP" = 1 ] || return 0
  LAB_IS_UP=0
  local r
  for r in $LAB_ROLES; do lab_kill_ns "$(lab_ns "$r")"; done
  for r in $LAB_ROLES; do ip netns del "$(lab_ns "$r")" 2>/dev/null || true; done
}

# lab_uplink ROUTER up|down: cut or restore a home's uplink (wan0). Taking
# the link down drops the router's default route and (MASQUERADE's device
# notifier) its NAT mappings, as a real outage would; up restores the route.
lab_uplink() {
  lab_exec "$1" ip link set wan0 "$2" || return 1
  if [ "$2" = up ]; then
    lab_exec "$1" ip route replace default via "$LAB_GW_IP" dev wan0
  fi
}

# lab_delay ROUTER MS: delay every packet leaving the home through ROUTER
# (lan0 -> wan0) by MS milliseconds, as netem on the uplink would. This
# kernel has no sch_netem, so tests/netlab/delay.py holds the packets in
# an NFQUEUE queue; the raw table queues them before conntrack, so the NAT
# sees them after the delay. The process lives in the router's namespace
# (lab_down ends it). Fails if the queue cannot be bound.
lab_delay() {
  local out="$LAB_RUN/delay-$1.out"
  lab_exec "$1" python3 "$(dirname "${BASH_SOURCE[0]}")/delay.py" 0 "$2" \
    >"$out" 2>&1 </dev/null &
  for _ in $(seq 50); do # at most ~5 s
    if grep -q '^ready' "$out" 2>/dev/null; then
      lab_exec "$1" iptables -t raw -A PREROUTING -i lan0 -j NFQUEUE --queue-num 0
      return
    fi
    sleep 0.1
  done
  echo "lab_delay: delay.py did not bind its queue in $1:" >&2
  cat "$out" >&2
  return 1
}

# lab_stun ROLE [SECONDS]: the mapped "IP:PORT" coturn sees for one STUN
# binding request from ROLE (empty if none within SECONDS, default 5). natdiscovery -m exits by itself, where
# turnutils_stunclient waits on against an RFC 5780 server.
lab_stun() {
  lab_exec "$1" timeout "${2:-5}" turnutils_natdiscovery -m "$LAB_TURN_IP" 2>/dev/null |
    sed -n 's/.*UDP reflexive addr: *\([0-9.]*:[0-9]*\).*/\1/p' | head -n 1
}

# lab_mapping ROLE: "independent" or "dependent" NAT mapping behaviour as
# coturn's RFC 5780 discovery sees it from ROLE (empty if undetermined).
lab_mapping() {
  local out
  out=$(lab_exec "$1" timeout 10 turnutils_natdiscovery -m "$LAB_TURN_IP" 2>/dev/null)
  case $out in
    *"Endpoint Independent Mapping"*) echo independent ;;
    *"Dependent Mapping"*) echo dependent ;;
  esac
}

# lab_reach ROLE IP: can ROLE open a path to IP? A TCP connect to the
# discard port: refused (RST) or accepted means reachable; a timeout or
# unreachable means not. Bounded by 2 s.
lab_reach() {
  local err
  err=$(lab_exec "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$2/9" 2>&1) && return 0
  grep -q "refused" <<<"$err"
}
