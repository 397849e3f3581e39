"""jwk.py: public keys as JWKs for the tests' identity providers.

PyJWT 2.6's to_jwk writes an EC coordinate without its leading zero bytes
(about one key in 140), and cjose, as RFC 7518 6.2.1.2 asks, refuses a
coordinate that is not the curve's full length: a key set holding such a key
is refused, and a test that made one fails by chance. Here the coordinates
are always written at full length. Imported with PYTHONPATH=$P2P_TOP/tests
by /usr/bin/python3 (Debian's python3-jwt)."""
import base64
import json

import jwt
from cryptography.hazmat.primitives.asymmetric import ec


def _b64u(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(pub, **members):
    """The JWK of public key PUB (RSA or EC), with MEMBERS (kid, alg ...)."""
    if isinstance(pub, ec.EllipticCurvePublicKey):
        j = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(pub))
        size = (pub.curve.key_size + 7) // 8
        numbers = pub.public_numbers()
        j["x"] = _b64u(numbers.x.to_bytes(size, "big"))
        j["y"] = _b64u(numbers.y.to_bytes(size, "big"))
    else:
        j = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(pub))
    j.update(members)
    return j
