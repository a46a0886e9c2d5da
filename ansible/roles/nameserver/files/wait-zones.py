#!/usr/bin/env python3
"""Succeeds once named on 127.0.0.1#PORT answers the SOA of every zone in
SERIALS (lines "<zone> <serial>", written by install-zones.sh) with that
serial. A reload loads zones in the background, and a fresh named answers
SERVFAIL until they are loaded.

Usage: wait-zones.py PORT SERIALS

The queries go out over one UDP socket, a window of them in flight: dig -f
asks one zone at a time, which took 30 s for 100,000 zones. Only the
standard library is used; Ansible needs Python on every managed host.
"""

import socket
import struct
import sys
import time

# Queries in flight: their replies must fit the socket's receive buffer
# (about 1 KiB each as the kernel counts them, in 208 KiB by default), or
# some are dropped and wait out TIMEOUT.
WINDOW = 64
TIMEOUT = 1.0  # seconds before a query is sent again
TRIES = 3
RUN_LIMIT = 60.0  # seconds one run may take; the role runs it again


def query(qid, name):
    """A SOA query for name, recursion off, with an EDNS0 OPT of 4096."""
    msg = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 1)
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        msg += bytes([len(raw)]) + raw
    msg += b"\0" + struct.pack(">HH", 6, 1)
    return msg + b"\0" + struct.pack(">HHIH", 41, 4096, 0, 0)


def read_name(msg, off):
    """The name at off, lower case with no trailing dot, and the offset
    after it in msg (a compression pointer ends it)."""
    labels, end, hops = [], None, 0
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            hops += 1
            if hops > 64:
                raise ValueError("compression loop")
            continue
        if n == 0:
            return ".".join(labels).lower(), (off + 1 if end is None else end)
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


def answer(msg):
    """The ID, question name and SOA serial of a reply (serial None when
    it is not a NOERROR answer holding the SOA of the name asked)."""
    qid, flags, qd, an = struct.unpack(">HHHH", msg[:8])
    if qd != 1:
        return qid, None, None
    qname, off = read_name(msg, 12)
    off += 4
    if flags & 0x000F:
        return qid, qname, None
    for _ in range(an):
        owner, off = read_name(msg, off)
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        if rtype == 6 and owner == qname:
            _, p = read_name(msg, off)
            _, p = read_name(msg, p)
            return qid, qname, struct.unpack(">I", msg[p:p + 4])[0]
        off += rdlen
    return qid, qname, None


def serials_served(port, zones):
    """Asks for the SOA of every zone; returns the serial each answered
    with, by index (None for no answer or an error)."""
    got = [None] * len(zones)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(0.1)
    pending = {}  # qid -> [index, deadline, tries]
    nxt, deadline = 0, time.monotonic() + RUN_LIMIT
    while (nxt < len(zones) or pending) and time.monotonic() < deadline:
        while nxt < len(zones) and len(pending) < WINDOW:
            qid = nxt & 0xFFFF
            try:
                sock.send(query(qid, zones[nxt][0]))
            except OSError:
                pass  # named not listening yet: counted unanswered
            pending[qid] = [nxt, time.monotonic() + TIMEOUT, 1]
            nxt += 1
        try:
            qid, qname, serial = answer(sock.recv(65535))
        except (OSError, ValueError, IndexError, struct.error):
            now = time.monotonic()
            for qid, p in list(pending.items()):
                if p[1] > now:
                    continue
                if p[2] >= TRIES:
                    del pending[qid]
                    continue
                p[1], p[2] = now + TIMEOUT, p[2] + 1
                try:
                    sock.send(query(qid, zones[p[0]][0]))
                except OSError:
                    pass
            continue
        p = pending.get(qid)
        if p is None or qname != zones[p[0]][0].rstrip(".").lower():
            continue  # late, or not ours
        del pending[qid]
        got[p[0]] = serial
    return got


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    zones = []
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) == 2:
                zones.append((fields[0], int(fields[1])))
    got = serials_served(port, zones)
    missing = [(z, s) for (z, s), g in zip(zones, got) if g != s]
    if missing:
        listed = "".join(" %s (serial %d)" % m for m in missing[:5])
        sys.stderr.write("named on port %d does not yet serve %d of %d zones at their installed serial:%s\n"
                         % (port, len(missing), len(zones), listed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
