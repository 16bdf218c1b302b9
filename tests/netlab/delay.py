"""Delay for the network lab where the kernel has no sch_netem: holds every
packet of an NFQUEUE queue for a fixed time, then lets it go on (NF_ACCEPT),
in arrival order. Talks nfnetlink_queue over a raw netlink socket (no
library needed). Run it inside a namespace whose iptables send packets to
the queue, e.g. in a home router:
    iptables -t raw -A PREROUTING -i lan0 -j NFQUEUE --queue-num 0
(the raw table runs before conntrack, so NAT sees the packets after their
delay, as it would behind a slow uplink). Prints "ready" once bound.
Usage: delay.py QUEUE_NUM DELAY_MS"""
import collections
import select
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFQ = 3 << 8  # NFNL_SUBSYS_QUEUE
MSG_PACKET, MSG_VERDICT, MSG_CONFIG = NFQ | 0, NFQ | 1, NFQ | 2
CFG_CMD, CFG_PARAMS, CFG_QUEUE_MAXLEN = 1, 2, 3
CMD_BIND = 1
COPY_META = 1
PACKET_HDR, VERDICT_HDR = 1, 2
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
QUEUE_MAXLEN = 8192  # packets held at once (the default is 1024)

queue, delay = int(sys.argv[1]), int(sys.argv[2]) / 1000.0
sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
sock.bind((0, 0))
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
seq = 0


def attr(kind, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, kind) + payload + b"\0" * (-n % 4)


def send(kind, flags, attrs):
    global seq
    seq += 1
    body = struct.pack("!BBH", socket.AF_UNSPEC, 0, queue) + b"".join(attrs)
    sock.send(struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body)


def config(attrs):
    send(MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, attrs)
    msg = sock.recv(65536)
    err = struct.unpack_from("=i", msg, 16)[0]
    if struct.unpack_from("=H", msg, 4)[0] != NLMSG_ERROR or err != 0:
        sys.exit("delay.py: nfqueue config failed (errno %d)" % -err)


config([attr(CFG_CMD, struct.pack("!BBH", CMD_BIND, 0, 0))])
config([attr(CFG_PARAMS, struct.pack("!IB", 0, COPY_META)),
        attr(CFG_QUEUE_MAXLEN, struct.pack("!I", QUEUE_MAXLEN))])
print("ready", flush=True)


def packet_ids(buf):
    """The packet ids of the NFQNL_MSG_PACKET messages in one read."""
    off = 0
    while off + 16 <= len(buf):
        n, kind = struct.unpack_from("=IH", buf, off)
        if n < 16:
            return
        if kind == MSG_PACKET:
            a = off + 20
            while a + 4 <= off + n:
                alen, akind = struct.unpack_from("=HH", buf, a)
                if alen < 4:
                    break
                if akind & 0x7FFF == PACKET_HDR:
                    yield struct.unpack_from("!I", buf, a + 4)[0]
                a += (alen + 3) & ~3
        off += (n + 3) & ~3


held = collections.deque()  # (due, packet id), in arrival order
while True:
    now = time.monotonic()
    while held and held[0][0] <= now:
        send(MSG_VERDICT, NLM_F_REQUEST,
             [attr(VERDICT_HDR, struct.pack("!II", NF_ACCEPT, held.popleft()[1]))])
    wait = max(0.0, held[0][0] - now) if held else None
    if select.select([sock], [], [], wait)[0]:
        arrived = time.monotonic()
        for pid in packet_ids(sock.recv(1 << 20)):
            held.append((arrived + delay, pid))
