#!/bin/sh
# tests/bench/authz-check.sh: what a p2p-authz check costs, in a scratch
# directory, loopback only. Tokens are signed with python3-jwt (RS256 with a
# 2048-bit key, ES256 on P-256); assertions (ES256) are signed on allow.
#
#   cached     the same token again: answered from the decision cache
#   uncached   p2p-authz -c 0: every check verifies the signature and
#              signs an assertion
# For each, the round trip over authz.sock with one check in flight (what a
# proxy waits for) and with 32 in flight (checks per second), and the time
# inside the daemon (its status: cached_us, uncached_us).
#
# p2p-authz has no peer to compare with here. Figures on stdout; exit 1
# when a reply is wrong.   BENCH_CHECKS (20000)
set -u
: "${P2P_TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${P2P_BUILD:=$P2P_TOP/build}"
PATH="$P2P_BUILD/bin:$PATH"
checks=${BENCH_CHECKS:-20000}
driver=$P2P_BUILD/bench/authz-check

say() { echo "authz-check.sh: $*" >&2; }
die() { say "$*"; exit 1; }
for f in "$P2P_BUILD/bin/p2p-authz" "$P2P_BUILD/bin/p2p" "$driver"; do
	[ -x "$f" ] || die "$f is not built (make bench builds it)"
done
/usr/bin/python3 -c 'import jwt, cryptography' 2>/dev/null ||
	die "needs Debian's python3-jwt and python3-cryptography"

dir=$(mktemp -d "${TMPDIR:-/tmp}/p2p-bench.XXXXXX") || exit 1
pid=
cleanup() {
	if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PYTHONPATH="$P2P_TOP/tests" /usr/bin/python3 - "$dir" <<'PY' || die "python3-jwt failed"
import json, sys, time, jwt
from cryptography.hazmat.primitives.asymmetric import rsa, ec
d = sys.argv[1]
r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
e = ec.generate_private_key(ec.SECP256R1())
from jwk import public_jwk
json.dump({"keys": [public_jwk(r.public_key(), kid="r"), public_jwk(e.public_key(), kid="e")]},
          open(d + "/jwks.json", "w"))
c = {"iss": "https://idp.test", "aud": "p2p", "sub": "alice", "groups": ["eng"],
     "exp": int(time.time()) + 3600}
open(d + "/rs256", "w").write(jwt.encode(c, r, algorithm="RS256", headers={"kid": "r"}))
open(d + "/es256", "w").write(jwt.encode(c, e, algorithm="ES256", headers={"kid": "e"}))
PY
cat >"$dir/policy.json" <<EOF
{ "providers": { "idp": { "issuer": "https://idp.test", "audience": "p2p", "jwks_file": "$dir/jwks.json" } },
  "resources": { "apps": { "provider": "idp", "routes": [ { "prefix": "/", "allow": { "groups": ["eng"] } } ] } } }
EOF

start() { # extra options
	rm -f "$dir/ready" && mkfifo "$dir/ready" || die "mkfifo"
	p2p-authz -d 3 -r "$dir/run" -m "$dir/run/none.sock" -k "$dir/key.pem" "$@" \
		-f "$dir/policy.json" 3>"$dir/ready" 2>>"$dir/log" &
	pid=$!
	timeout 20 sh -c 'read -r _ <"$1"' sh "$dir/ready" || die "p2p-authz did not start: $(cat "$dir/log")"
}
stop() { kill -TERM "$pid"; wait "$pid"; pid=; }
field() { printf "%.1f" "$(p2p -r "$dir/run" ipc authz '{"op":"status"}' | jq -r ".cache.$1")"; }
run() { # LABEL ALG WINDOW COUNT
	_out=$("$driver" -n "$4" -w "$3" "$dir/run/authz.sock" "$dir/$2" /x) || die "$1: $_out"
	echo "authz-check: $1: $(echo "$_out" | sed 's/.*us_per_check=\([0-9.]*\).*/\1/') us per check round trip," \
		"$(echo "$_out" | awk -F'[= ]' '{ printf "%.0f", $2 / $4 }') checks/s"
}

for alg in rs256 es256; do
	start
	run "$alg cached, 1 in flight" "$alg" 1 "$checks"
	run "$alg cached, 32 in flight" "$alg" 32 "$checks"
	echo "authz-check: $alg cached: $(field cached_us) us per check inside p2p-authz"
	stop
	start -c 0
	run "$alg uncached (verify + sign), 1 in flight" "$alg" 1 $((checks / 4))
	run "$alg uncached (verify + sign), 32 in flight" "$alg" 32 $((checks / 4))
	echo "authz-check: $alg uncached: $(field uncached_us) us per check inside p2p-authz" \
		"(signature verified, assertion signed)"
	stop
done
