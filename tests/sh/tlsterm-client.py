# tlsterm-client.py MODE NAME ADDR PORT CAFILE [ARGS]: a TLS client for
# p2p-tlsterm's tests (run with /usr/bin/python3; not a test itself).
#
#   raw     send standard input as it is; print what comes back until the
#           proxy closes (or 5 s of silence)
#   pieces  as raw, but standard input is sent in pieces, split at each form
#           feed (\f), ARGS[0] seconds apart
#   keep    two requests on one connection, the second once the file ARGS[0]
#           exists; prints the certificate's SHA-256 and each status
#   cert    print the SHA-256 of the certificate served (and its key type)
#   ws      WebSocket: upgrade /ws, echo messages of 5 B, 200 B, 70 kB, 1 MB
#   idle    one request, then nothing: after how many seconds the proxy
#           closed the kept-alive connection
#   slow    send a head's first bytes, then nothing: print what comes back and
#           after how many seconds the proxy closed
#   unread  pipeline requests answered 421 and read nothing, for ARGS[0]
#           seconds, holding the connection
import base64, hashlib, os, socket, ssl, sys, time

mode, name, addr, port, ca = sys.argv[1:6]
args = sys.argv[6:]


def connect(sni=True):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = sni
    s = socket.create_connection((addr, int(port)), timeout=10)
    return ctx.wrap_socket(s, server_hostname=name if sni else None)


def fingerprint(s):
    return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def read_response(s):
    """One HTTP/1.1 response with Content-Length: (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("closed before a response")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        k, v = line.split(b":", 1)
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        rest += s.recv(65536)
    return int(lines[0].split()[1]), rest


if mode in ("raw", "pieces"):
    s = connect()
    if mode == "raw":
        s.sendall(sys.stdin.buffer.read())
    else:
        for i, piece in enumerate(sys.stdin.buffer.read().split(b"\f")):
            if i:
                time.sleep(float(args[0]))
            s.sendall(piece)
    s.settimeout(5)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, ConnectionResetError, ssl.SSLError):
        pass
    sys.stdout.buffer.write(out)
elif mode == "cert":
    s = connect(sni=name != "-")
    print(fingerprint(s))
elif mode == "keep":
    s = connect()
    req = ("GET /health HTTP/1.1\r\nHost: %s\r\n\r\n" % name).encode()
    s.sendall(req)
    st1, _ = read_response(s)
    print("cert", fingerprint(s))
    print("first", st1, flush=True)
    while not os.path.exists(args[0]):
        time.sleep(0.05)
    s.sendall(req)
    st2, _ = read_response(s)
    print("second", st2)
elif mode == "ws":
    s = connect()
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET " + os.environ.get("WS_PATH", "/ws") + " HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
               % (name, key, "".join(h + "\r\n" for h in args))).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, rest = data.split(b"\r\n\r\n", 1)
    want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
    if not head.startswith(b"HTTP/1.1 101") or want not in head:
        raise SystemExit("no upgrade: %r" % head)
    print("upgraded")

    def recv_exact(n):
        global rest
        while len(rest) < n:
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("closed")
            rest += chunk
        out, rest = rest[:n], rest[n:]
        return out

    for size in (5, 200, 70000, 1 << 20):
        msg = os.urandom(size)
        mask = os.urandom(4)
        hdr = bytes([0x82])
        if size < 126:
            hdr += bytes([0x80 | size])
        elif size < 65536:
            hdr += bytes([0x80 | 126]) + size.to_bytes(2, "big")
        else:
            hdr += bytes([0x80 | 127]) + size.to_bytes(8, "big")
        s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
        h = recv_exact(2)
        n = h[1] & 0x7F
        if n == 126:
            n = int.from_bytes(recv_exact(2), "big")
        elif n == 127:
            n = int.from_bytes(recv_exact(8), "big")
        got = recv_exact(n)
        print("echo", size, "ok" if got == msg else "DIFFERENT")
    s.sendall(b"\x88\x80" + os.urandom(4))
    print("closed", recv_exact(2) == b"\x88\x00")
elif mode == "idle":
    s = connect()
    s.sendall(("GET /health HTTP/1.1\r\nHost: %s\r\n\r\n" % name).encode())
    st, _ = read_response(s)
    start = time.time()
    s.settimeout(60)
    try:
        rest = s.recv(4096)
    except (ConnectionResetError, ssl.SSLError):
        rest = b""
    print("status %d, closed after %.1f s%s" % (st, time.time() - start, "" if not rest else " with data"))
elif mode == "slow":
    s = connect()
    start = time.time()
    s.sendall(("GET /health HTTP/1.1\r\nHost: %s\r\nX-Slow: " % name).encode())
    s.settimeout(60)
    out = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
    except (ConnectionResetError, ssl.SSLError):
        pass
    print("after %.1f s: %s" % (time.time() - start, out.split(b"\r\n")[0].decode()))
elif mode == "unread":
    # requests for a Host of no resource (answered 421 by the proxy itself),
    # pipelined for ARGS[0] seconds, and no byte of the answers read: the
    # proxy's buffers fill and stay full; the connection is held open
    ctx = ssl.create_default_context(cafile=ca)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(1)
    raw.connect((addr, int(port)))
    s = ctx.wrap_socket(raw, server_hostname=name)
    req = b"GET / HTTP/1.1\r\nHost: no-such.corp.test\r\n\r\n" * 64
    end, sent = time.time() + float(args[0]), 0
    while time.time() < end:
        try:
            s.sendall(req)
            sent += 64
        except OSError:
            break       # the proxy stopped reading (a timeout), or closed
    print("sent", sent, flush=True)
    time.sleep(max(0, end - time.time()))
