# h2frames.py: raw HTTP/2 frames (RFC 9113) and HPACK literals without
# indexing (RFC 7541 section 6.2.2) for the tests' own HTTP/2 clients
# (h2-stall.py, h2-window.py), as python3-h2 is not a dependency. Not a
# test itself.
import struct


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value
