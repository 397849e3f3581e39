#!/usr/bin/python3
# h2-window.py HOST PORT SNI PREFIX N: an HTTP/2 client that, on one
# connection, sends N requests "POST PREFIX/I" each with a 60000-byte body
# in the same write as its HEADERS (so the body arrives while the proxy
# still waits for p2p-authz), waits for each response, and keeps to
# the flow-control windows the server gives. Body bytes of a request that
# is answered without them must be given back to the connection's window:
# otherwise about 17 such requests use up its 1 MiB and the next body cannot
# be sent. Prints "ok N" when all were sent and answered, or
# "stalled at I" when the window stayed shut for 5 s. Raw frames and HPACK
# literals (h2frames.py).
import socket, ssl, struct, sys, time

from h2frames import frame, literal

host, port, sni, prefix, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
BODY = b"x" * 60000


ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2"])
s = ctx.wrap_socket(socket.create_connection((host, port), timeout=10), server_hostname=sni)
if s.selected_alpn_protocol() != "h2":
    sys.exit("h2-window: h2 was not agreed")
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))
pending = b""
conn_window, stream_initial = 65535, 65535
statuses = {}


def read_frame(deadline):
    global pending
    while len(pending) < 9 or len(pending) < 9 + struct.unpack(">I", b"\x00" + pending[:3])[0]:
        left = deadline - time.time()
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            got = s.recv(65536)
        except (socket.timeout, TimeoutError):
            return None
        if not got:
            sys.exit("h2-window: the server closed the connection")
        pending += got
    length, ftype, flags, stream = struct.unpack(">IBBI", b"\x00" + pending[:9])
    payload, pending = pending[9:9 + length], pending[9 + length:]
    return ftype, flags, stream & 0x7fffffff, payload


def handle(f):
    global conn_window, stream_initial
    ftype, flags, stream, payload = f
    if ftype == 4 and not flags & 1:
        for i in range(0, len(payload), 6):
            ident, value = struct.unpack(">HI", payload[i:i + 6])
            if ident == 4:
                stream_initial = value
        s.sendall(frame(4, 1, 0))
    elif ftype == 8 and stream == 0:
        conn_window += struct.unpack(">I", payload)[0] & 0x7fffffff
    elif ftype == 7:
        sys.exit("h2-window: GOAWAY")
    elif ftype == 1:
        statuses[stream] = True    # its response came (whatever its status)

for i in range(1, count + 1):
    sid = 2 * i - 1
    deadline = time.time() + 5
    while conn_window < len(BODY) or stream_initial < len(BODY):
        f = read_frame(deadline)
        if f is None:
            print("stalled at", i, flush=True)
            sys.exit(1)
        handle(f)
    block = (literal(":method", "POST") + literal(":scheme", "https") + literal(":authority", sni) +
             literal(":path", "%s/%d" % (prefix, i)) + literal("content-length", str(len(BODY))))
    data = b"".join(frame(0, 0x1 if k + 16384 >= len(BODY) else 0, sid, BODY[k:k + 16384])
                    for k in range(0, len(BODY), 16384))   # DATA of at most the frame size, END_STREAM
    s.sendall(frame(1, 0x4, sid, block) + data)             # with the HEADERS, in one write
    conn_window -= len(BODY)
    while sid not in statuses:
        f = read_frame(time.time() + 10)
        if f is None:
            sys.exit("h2-window: no response to request %d" % i)
        handle(f)
print("ok", count, flush=True)
s.close()
