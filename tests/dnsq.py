"""tests/dnsq.py: a DNS client for the tests that kdig cannot be (stdlib only).

usage: python3 tests/dnsq.py SERVER PORT ACTION [ARG]...

  ask NAME [TYPE] [udp|tcp]   one query, exactly as spelt; prints a line
        "RCODE qname=AS-ECHOED an=N ns=N ar=N tc=0|1 ttl=MIN-TTL" (ttl of the
        answer, or of the SOA in the authority section when there is none)
  bad CASE [udp|tcp]          a malformed query (CASES below); prints "formerr",
        another rcode in lower case, "dropped" (no answer in 2 s) or "closed"
  pipeline N                  N queries for "vault" names written at once on
        one TCP connection; prints how many answers came back with the ids sent
  stall                       half a message on TCP, then nothing: prints the
        seconds until the server closed the connection ("open" after 20 s),
        checking on the way that a second client is answered meanwhile

It exits 0 when it printed its line, 111 when it could not ask at all.
"""
import socket
import struct
import sys
import time

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
TYPES = {"A": 1, "NS": 2, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "ANY": 255}


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode()
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def query(name, qtype="A", qid=0x5151, edns=None):
    head = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0)
    msg = head + encode_name(name) + struct.pack("!HH", TYPES.get(qtype.upper(), 1), 1)
    if edns:  # OPT: root owner, type 41, CLASS = payload size
        msg += b"\0" + struct.pack("!HHIH", 41, edns, 0, 0)
    return msg


# The malformed queries: each should get FORMERR or be dropped.
def bad_cases():
    q = query("vault.example.internal")
    head = q[:12]
    qd = q[12:]
    return {
        "short-header": q[:7],
        "no-question": head[:4] + struct.pack("!HHHH", 0, 0, 0, 0),
        "two-questions": head[:4] + struct.pack("!HHHH", 2, 0, 0, 0) + qd + qd,
        "count-beyond-end": head[:4] + struct.pack("!HHHH", 1, 3, 0, 0) + qd,
        "truncated-question": q[:-3],
        "trailing-garbage": q + b"\x07garbage",
        "compression-loop": head + b"\xc0\x0c" + struct.pack("!HH", 1, 1),
        "pointer-forward": head + b"\xc0\x20" + struct.pack("!HH", 1, 1) + b"\0" * 24,
        "label-64": head + b"\x40" + b"a" * 64 + b"\0" + struct.pack("!HH", 1, 1),
        "name-over-255": head + (b"\x3f" + b"a" * 63) * 4 + b"\x03abc\0" + struct.pack("!HH", 1, 1),
        "reserved-label-type": head + b"\x80abc\0" + struct.pack("!HH", 1, 1),
        "a-response": q[:2] + b"\x81\x00" + q[4:],
    }


def udp_exchange(addr, msg, timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(msg, addr)
        return s.recv(65535)
    except socket.timeout:
        return None
    finally:
        s.close()


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        part = s.recv(n - len(buf))
        if not part:
            return None
        buf += part
    return buf


def tcp_exchange(addr, msg, timeout=2.0):
    s = socket.create_connection(addr, timeout=timeout)
    try:
        s.sendall(struct.pack("!H", len(msg)) + msg)
        head = recv_exact(s, 2)
        if head is None:
            return "closed"
        return recv_exact(s, struct.unpack("!H", head)[0])
    except socket.timeout:
        return None
    finally:
        s.close()


def skip_name(msg, i):
    while True:
        n = msg[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += 1 + n


def parse(msg):
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    i, labels = 12, []
    for _ in range(qd):
        while msg[i]:
            labels.append(msg[i + 1:i + 1 + msg[i]].decode())
            i += 1 + msg[i]
        i += 5
    ttls = {"an": [], "ns": []}
    for section, count in (("an", an), ("ns", ns)):
        for _ in range(count):
            i = skip_name(msg, i)
            _, _, ttl, rdlen = struct.unpack("!HHIH", msg[i:i + 10])
            ttls[section].append(ttl)
            i += 10 + rdlen
    return {"id": qid, "rcode": RCODES.get(flags & 15, str(flags & 15)), "tc": (flags >> 9) & 1,
            "qname": ".".join(labels), "an": an, "ns": ns, "ar": ar,
            "ttl": min(ttls["an"] or ttls["ns"] or [-1])}


def ask(addr, name, qtype="A", proto="udp"):
    exchange = tcp_exchange if proto == "tcp" else udp_exchange
    reply = exchange(addr, query(name, qtype))
    if reply is None or reply == "closed":
        print("no-answer")
        return
    r = parse(reply)
    print("%s qname=%s an=%d ns=%d ar=%d tc=%d ttl=%d" % (r["rcode"], r["qname"], r["an"], r["ns"], r["ar"],
                                                        r["tc"], r["ttl"]))


def bad(addr, case, proto="udp"):
    msg = bad_cases()[case]
    reply = (tcp_exchange if proto == "tcp" else udp_exchange)(addr, msg)
    if reply is None:
        print("dropped")
    elif reply == "closed":
        print("closed")
    elif len(reply) < 12:
        print("short-reply")
    else:
        print(RCODES.get(reply[3] & 15, str(reply[3] & 15)).lower())


def pipeline(addr, n):
    s = socket.create_connection(addr, timeout=5)
    wire = b"".join(struct.pack("!H", len(m)) + m
                    for m in (query("vault.example.internal", qid=1000 + k) for k in range(n)))
    s.sendall(wire)
    ids = set()
    try:
        for _ in range(n):
            head = recv_exact(s, 2)
            if head is None:
                break
            ids.add(parse(recv_exact(s, struct.unpack("!H", head)[0]))["id"])
    except socket.timeout:
        pass
    s.close()
    print(len(ids & set(range(1000, 1000 + n))))


def stall(addr):
    msg = query("vault.example.internal")
    s = socket.create_connection(addr, timeout=20)
    s.sendall(struct.pack("!H", len(msg)) + msg[:len(msg) // 2])
    start = time.monotonic()
    # Meanwhile another client is served at once, over UDP and TCP.
    others = udp_exchange(addr, query("vault.example.internal")) is not None and \
        isinstance(tcp_exchange(addr, query("vault.example.internal")), bytes)
    # Trickle one more byte after a while: it must not restart the clock.
    time.sleep(3)
    s.sendall(msg[len(msg) // 2:len(msg) // 2 + 1])
    try:
        closed = s.recv(1) == b""
    except socket.timeout:
        closed = False
    except ConnectionResetError:
        closed = True
    took = time.monotonic() - start
    print(("%.1f" % took if closed else "open") + (" others-served" if others else " others-starved"))


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 100
    addr = (argv[1], int(argv[2]))
    action, args = argv[3], argv[4:]
    try:
        if action == "ask":
            ask(addr, args[0], *args[1:])
        elif action == "bad":
            bad(addr, *args)
        elif action == "pipeline":
            pipeline(addr, int(args[0]))
        elif action == "stall":
            stall(addr)
        elif action == "cases":
            print(" ".join(bad_cases()))
        else:
            sys.stderr.write(__doc__)
            return 100
    except OSError as e:
        sys.stderr.write("dnsq: %s\n" % e)
        return 111
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
