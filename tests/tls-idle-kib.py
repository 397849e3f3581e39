"""tests/tls-idle-kib.py: what an idle kept-alive TLS connection costs a
server, for a test and a bench (stdlib only).

usage: python3 tests/tls-idle-kib.py PID ADDR PORT NAME N [CAFILE]

Opens N TLS connections to ADDR:PORT (SNI NAME, HTTP/1.1 by ALPN; the
certificate checked against CAFILE, or not checked without it), sends one
"GET /health" on each and reads its response head, then leaves them idle
and prints how much the resident memory of process PID grew per
connection, in KiB with one decimal.
"""
import socket
import ssl
import sys
import time


def rss(pid):
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS for process %s" % pid)


def main():
    if len(sys.argv) not in (6, 7):
        raise SystemExit("usage: tls-idle-kib.py PID ADDR PORT NAME N [CAFILE]")
    pid, addr, port, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    if len(sys.argv) == 7:
        ctx = ssl.create_default_context(cafile=sys.argv[6])
    else:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    time.sleep(0.3)
    base, conns = rss(pid), []
    request = ("GET /health HTTP/1.1\r\nHost: %s\r\n\r\n" % name).encode()
    for _ in range(n):
        s = ctx.wrap_socket(socket.create_connection((addr, port)), server_hostname=name)
        s.sendall(request)
        conns.append(s)
    for s in conns:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                raise SystemExit("a connection closed before its response")
            head += chunk
    time.sleep(0.5)
    print("%.1f" % ((rss(pid) - base) / n))


main()
