"""UDP hole punch probe for the network lab: bind PORT, send to PEER:PORT
every 0.1 s for at most SECONDS, exit 0 once a datagram from PEER arrived
and ours was answered, else 1. Used by test_lab_smoke.sh only."""
import socket
import sys
import time

port, peer, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", port))
s.settimeout(0.1)
got = False
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    s.sendto(b"ack" if got else b"syn", (peer, port))
    try:
        data, src = s.recvfrom(64)
    except socket.timeout:
        continue
    if src[0] == peer:
        if data == b"ack":
            s.sendto(b"ack", (peer, port))
            sys.exit(0)
        got = True
sys.exit(1)
