#!/usr/bin/python3
# h2-stall.py HOST PORT SNI PATH [HEADER=VALUE...]: an HTTP/2 client that
# asks for PATH on one stream and never lets the response's body come: it
# announces a flow-control window of 0 and sends no WINDOW_UPDATE. It
# prints "status N" once the response's HEADERS frame came (HEADERS are not
# flow-controlled), then keeps the connection open until its standard input
# closes. Raw frames and HPACK literals (h2frames.py).
import socket, ssl, struct, sys

from h2frames import frame, literal

host, port, sni, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
extra = [a.split("=", 1) for a in sys.argv[5:]]


def read_exact(s, n):
    data = b""
    while len(data) < n:
        got = s.recv(n - len(data))
        if not got:
            sys.exit("h2-stall: the server closed the connection")
        data += got
    return data


ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2"])
s = ctx.wrap_socket(socket.create_connection((host, port), timeout=10), server_hostname=sni)
if s.selected_alpn_protocol() != "h2":
    sys.exit("h2-stall: h2 was not agreed")
SETTINGS_INITIAL_WINDOW_SIZE = 4
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +
          frame(4, 0, 0, struct.pack(">HI", SETTINGS_INITIAL_WINDOW_SIZE, 0)))
block = (literal(":method", "GET") + literal(":scheme", "https") + literal(":authority", sni) +
         literal(":path", path) + b"".join(literal(k.lower(), v) for k, v in extra))
s.sendall(frame(1, 0x5, 1, block))   # HEADERS, END_STREAM | END_HEADERS
while True:
    length, ftype, flags, stream = struct.unpack(">IBBI", b"\x00" + read_exact(s, 9))
    payload = read_exact(s, length)
    if ftype == 4 and not flags & 1:
        s.sendall(frame(4, 1, 0))    # SETTINGS ACK
    elif ftype == 7:
        sys.exit("h2-stall: GOAWAY")
    elif ftype == 1 and stream == 1:
        # the first field of a response is :status; nghttp2 sends the
        # common codes from the static table (index 8-14)
        b = payload[0]
        codes = {8: "200", 9: "204", 10: "206", 11: "304", 12: "400", 13: "404", 14: "500"}
        print("status", codes.get(b & 0x7f, "other") if b & 0x80 else "other", flush=True)
        break
s.settimeout(None)
sys.stdin.read()
s.close()
