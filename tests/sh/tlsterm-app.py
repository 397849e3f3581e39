# tlsterm-app.py NAME PORT [--tls CERT KEY]: the upstream application of
# p2p-tlsterm's tests (run with /usr/bin/python3; not a test itself).
#
#   GET  /...            JSON: app NAME, method, path, the request's headers
#   POST|PUT /sha256     streams the body in (Content-Length or chunked) and
#                        answers its SHA-256 and length
#   GET  /bytes/N        N bytes of a known pattern (chunked; ?cl=1: with
#                        Content-Length), sent as fast as the client reads
#   GET  /slow/S         waits S seconds before answering
#   GET  /ws             WebSocket (RFC 6455) echo of every message
#   POST /early          answers 413 at once without reading the body
#   GET  .../flaky       answers the first request of a connection; closes
#                        the connection without a word at any later one
import base64, hashlib, json, socketserver, ssl, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = sys.argv[1]
PORT = int(sys.argv[2])
BLOCK = bytes((i * 7 + 3) % 251 for i in range(65536))


def pattern(n):
    """The bytes of /bytes/N, by blocks, so that a test can hash them too."""
    while n > 0:
        k = min(n, len(BLOCK))
        yield BLOCK[:k]
        n -= k


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True   # headers and body go in two writes

    def log_message(self, fmt, *args):
        pass

    def body_chunks(self):
        te = self.headers.get("Transfer-Encoding", "")
        if te.lower() == "chunked":
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    data = self.rfile.read(min(left, 65536))
                    if not data:
                        return
                    left -= len(data)
                    yield data
                self.rfile.readline(8)
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                data = self.rfile.read(min(left, 65536))
                if not data:
                    return
                left -= len(data)
                yield data

    def send_json(self, obj, status=200):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def describe(self):
        return {"app": NAME, "method": self.command, "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()]}

    def do_GET(self):
        self.served = getattr(self, "served", 0) + 1
        if "/flaky" in self.path and self.served > 1:
            self.close_connection = True
            return
        if self.path.startswith("/bytes/"):
            spec = self.path[7:]
            n = int(spec.split("?")[0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if "cl=1" in spec:
                self.send_header("Content-Length", str(n))
                self.end_headers()
                for b in pattern(n):
                    self.wfile.write(b)
            else:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for b in pattern(n):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
                self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.startswith("/slow/"):
            time.sleep(float(self.path[6:]))
        if self.path == "/ws":
            return self.websocket()
        for _ in self.body_chunks():
            pass
        self.send_json(self.describe())

    do_HEAD = do_GET
    do_DELETE = do_GET

    def do_POST(self):
        if self.path == "/early":
            self.send_response(413)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            return
        if self.path.startswith("/sha256"):
            h, n = hashlib.sha256(), 0
            for data in self.body_chunks():
                h.update(data)
                n += len(data)
            return self.send_json({"app": NAME, "sha256": h.hexdigest(), "length": n})
        info = self.describe()
        info["body"] = b"".join(self.body_chunks()).decode("latin-1")
        self.send_json(info)

    do_PUT = do_POST

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        if self.headers.get("Upgrade", "").lower() != "websocket" or not key:
            return self.send_json({"error": "not a websocket request"}, 400)
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept.decode())
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            op, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = int.from_bytes(self.rfile.read(2), "big")
            elif n == 127:
                n = int.from_bytes(self.rfile.read(8), "big")
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
            if op == 8:
                self.wfile.write(b"\x88\x00")
                return
            out = bytes([0x80 | op])
            if len(data) < 126:
                out += bytes([len(data)])
            elif len(data) < 65536:
                out += bytes([126]) + len(data).to_bytes(2, "big")
            else:
                out += bytes([127]) + len(data).to_bytes(8, "big")
            self.wfile.write(out + data)
            self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024        # a proxy opens many connections at once


srv = Server(("127.0.0.1", PORT), Handler)
if len(sys.argv) > 3 and sys.argv[3] == "--tls":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
