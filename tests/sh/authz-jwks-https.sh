#!/bin/sh
# p2p-authz fetching a provider's key set over HTTPS: the first fetch (a
# check waits for it rather than failing), key rotation found through an
# unknown kid, the rate limit on such fetches, Cache-Control max-age, the
# stale set kept while the provider is down, 503 only for a provider never
# reached, and a server certificate from an authority not trusted.
#
#   test ── p2p ipc authz ──> T/run/authz.sock ── p2p-authz -C T/ca.pem
#                                                    │ libcurl, in its loop
#                                                    v
#        /usr/bin/python3 http.server + ssl on 127.0.0.1:PORT (cert of T/ca.pem)
#          /jwks.json from T/www, Cache-Control from T/max-age, a delay from
#          T/delay, every request logged in T/requests
. "$(dirname "$0")/../lib.sh"

T=$(scratch)
apid='' bpid='' spid=''
cleanup() {
	for p in $apid $bpid $spid; do kill -KILL "$p" 2>/dev/null; done
	if [ "$_failures" -gt 0 ] && [ -s "$T/log" ]; then sed 's/^/# log: /' "$T/log"; fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

if ! /usr/bin/python3 -c 'import jwt, cryptography, ssl' 2>/dev/null; then
	skip "authz-jwks-https: needs Debian's python3-jwt and python3-cryptography"
	exit 0
fi
for tool in jq openssl; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		skip "authz-jwks-https: needs $tool"
		exit 0
	fi
done

R=$T/run LOG=$T/log
mkdir -p "$T/www" "$T/tok"

# ---- a test authority and the server's certificate ----
printf 'subjectAltName=IP:127.0.0.1\n' >"$T/san.cnf"
mkcert() { # DIR NAME: a CA in DIR/NAME-ca.pem and a server cert signed by it
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=p2p test $2 CA" -keyout "$1/$2-ca.key" -out "$1/$2-ca.pem" &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
		-keyout "$1/$2.key" -out "$1/$2.csr" &&
	openssl x509 -req -in "$1/$2.csr" -CA "$1/$2-ca.pem" -CAkey "$1/$2-ca.key" \
		-CAcreateserial -days 2 -extfile "$T/san.cnf" -out "$1/$2.pem"
} 2>/dev/null
check "openssl makes a test CA and a server certificate" mkcert "$T" server
check "... and another CA that signs nothing we use" mkcert "$T" other

# ---- keys and tokens ----
cat >"$T/mint.py" <<'EOF'
import json, sys, time, jwt
from cryptography.hazmat.primitives.asymmetric import ec
out = sys.argv[1]
now = int(time.time())
k1, k2 = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
from jwk import public_jwk
def jwk(k, kid):
    return public_jwk(k.public_key(), kid=kid, use="sig", alg="ES256")
json.dump({"keys": [jwk(k1, "k1")]}, open(out + "/jwks-1.json", "w"))
json.dump({"keys": [jwk(k1, "k1"), jwk(k2, "k2")]}, open(out + "/jwks-2.json", "w"))
c = {"iss": "https://idp.test", "aud": "p2p", "sub": "alice", "exp": now + 3600}
for name, key, kid in (("k1", k1, "k1"), ("k2", k2, "k2"), ("k9", k2, "k9"), ("k8", k2, "k8")):
    open(out + "/tok/" + name, "w").write(jwt.encode(c, key, algorithm="ES256", headers={"kid": kid}))
EOF
check "python3-jwt makes the keys and tokens" /usr/bin/python3 "$T/mint.py" "$T"
cp "$T/jwks-1.json" "$T/www/jwks.json"

# ---- the identity provider ----
cat >"$T/idp.py" <<'EOF'
import http.server, os, ssl, sys, time
root = sys.argv[1]
def read(name, default=None):
    try:
        return open(os.path.join(root, name)).read().strip()
    except OSError:
        return default
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(os.path.join(root, "requests"), "a") as f:
            f.write(self.path + "\n")
        time.sleep(float(read("delay", "0")))
        try:
            body = open(os.path.join(root, "www", self.path.lstrip("/")), "rb").read()
        except OSError:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if read("max-age"):
            self.send_header("Cache-Control", "public, max-age=" + read("max-age"))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.path.join(root, "server.pem"), os.path.join(root, "server.key"))
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(os.path.join(root, "port.tmp"), "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(os.path.join(root, "port.tmp"), os.path.join(root, "port"))
srv.serve_forever()
EOF
idp_start() { # PORT (0: any)
	rm -f "$T/port"
	/usr/bin/python3 "$T/idp.py" "$T" "$1" 2>>"$T/idp.log" &
	spid=$!
	wait_for 10 test -s "$T/port"
}
requests() { if [ -f "$T/requests" ]; then grep -c '^/jwks.json$' "$T/requests"; else echo 0; fi; }

echo 1 >"$T/delay"
check "the HTTPS server starts" idp_start 0
PORT=$(cat "$T/port")
# A port with nothing behind it: the other server's, once it is gone.
/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' >"$T/deadport"
DEAD=$(cat "$T/deadport")

cat >"$T/policy.json" <<EOF
{
  "providers": {
    "idp": { "issuer": "https://idp.test", "audience": "p2p",
             "jwks_url": "https://127.0.0.1:$PORT/jwks.json", "jwks_min_interval": 4 },
    "down": { "issuer": "https://idp.test", "audience": "p2p",
              "jwks_url": "https://127.0.0.1:$DEAD/jwks.json", "jwks_min_interval": 2 },
    "zero": { "issuer": "https://idp.test", "audience": "p2p",
              "jwks_url": "https://127.0.0.1:$DEAD/jwks.json", "jwks_min_interval": 0 }
  },
  "resources": {
    "apps": { "provider": "idp", "routes": [
      { "prefix": "/down", "provider": "down", "allow": "any" },
      { "prefix": "/zero", "provider": "zero", "allow": "any" },
      { "prefix": "/", "allow": "any" } ] }
  }
}
EOF

start() { # NAME FIFO COMMAND...
	_name=$1 _fifo=$2; shift 2
	rm -f "$_fifo" && mkfifo "$_fifo" || return 1
	"$@" 3>"$_fifo" 2>>"$LOG" &
	eval "$_name=\$!"
	timeout 20 sh -c 'read -r _ <"$1"' sh "$_fifo"
}
q() { p2p -r "$R" ipc authz "$1"; }
is() { [ -n "$1" ] && printf '%s\n' "$1" | jq -e "$2" >/dev/null 2>&1; }
status_is() { is "$(q '{"op":"status"}')" "$1"; }
idp_is() { is "$(q '{"op":"status"}')" "(.providers[] | select(.jwks | test(\":$PORT/\"))) | $1"; }
ask() { # PATH TOKEN-NAME
	q "{\"op\":\"check\",\"resource\":\"apps\",\"method\":\"GET\",\"path\":\"$1\",\"headers\":{\"authorization\":\"Bearer $(cat "$T/tok/$2")\"}}"
}
expect() { # DESC JQ-TEST PATH TOKEN
	_r=$(ask "$3" "$4")
	if is "$_r" "$2"; then ok "$1"; else fail "$1"; echo "# got: $_r"; fi
}

check "p2p-authz starts (-C the test CA)" start apid "$T/ready" \
	p2p-authz -v -d 3 -r "$R" -m "$R/none.sock" -C "$T/server-ca.pem" -f "$T/policy.json"
# The server answers after a second: a check sent now waits for the fetch.
t0=$(date +%s)
expect "a check during the first fetch waits for it, then allows" '.status == 200' / k1
check "... it waited (status counts it)" status_is '.checks.waited >= 1'
check "one fetch so far" [ "$(requests)" -eq 1 ]
rm -f "$T/delay"
check "the set is fresh, with 1 key" idp_is '.state == "fresh" and .keys == 1 and .failures == 0 and .kind == "url"'
# The sleeps below are the rate limit being tested (jwks_min_interval 4 s;
# every step between two sleeps takes well under that, even on a busy host).
expect "a token of a key the provider has not published, right after the first fetch: 401, no fetch" \
	'.status == 401 and (.reason | test("unknown kid \"k2\""))' / k2
check "... no new request" [ "$(requests)" -eq 1 ]
sleep 4.1
expect "a token of a key the provider has not published: 401 unknown kid" \
	'.status == 401 and (.reason | test("unknown kid \"k2\""))' / k2
check "... after a fetch for it" [ "$(requests)" -eq 2 ]

# rotation: the provider publishes k2; the rate limit (2 s) passes first
cp "$T/jwks-2.json" "$T/www/jwks.json"
expect "within the rate limit: no fetch, still unknown kid" '.status == 401' / k2
check "... no new request" [ "$(requests)" -eq 2 ]
sleep 4.1
expect "after it, an unknown kid fetches again and finds the rotated key: allow" '.status == 200' / k2
check "... one more request" [ "$(requests)" -eq 3 ]
check "the set now has 2 keys" idp_is '.keys == 2'
expect "a kid the set still lacks right after: 401, no fetch" '.status == 401' / k9
check "... no new request" [ "$(requests)" -eq 3 ]

# Cache-Control max-age: fetched again on its own (bounded below by the
# provider's jwks_min_interval, 4 s)
echo 0 >"$T/max-age"
sleep 4.1
expect "a kid unknown after the interval: fetched (the answer now says max-age=0)" '.status == 401' / k9
check "max-age=0: fetched again by itself, every 4 s" wait_for 20 sh -c "[ \"\$(grep -c jwks.json \"$T/requests\")\" -ge 5 ]"
rm -f "$T/max-age"

# the provider goes down: the stale set is kept and used
kill -TERM "$spid"; wait "$spid" 2>/dev/null; spid=
check "the provider is down: the next fetch fails" wait_for 10 idp_is '.failures >= 1 and (.last_error | test("fetch failed"))'
check "... and the set is kept, as stale" idp_is '.state == "stale" and .keys == 2'
expect "tokens still verify with the stale set: allow" '.status == 200' / k1
expect "the rotated key too" '.status == 200' / k2
sleep 4.1
expect "an unknown kid while the provider is down: 401, not 503" '.status == 401 and (.reason | test("unknown kid"))' / k8
check "the log says the keys are kept" grep -q "keeping the 2 keys fetched" "$LOG"

# a provider never reached: 503
expect "a provider whose set was never had: 503" \
	'.status == 503 and .decision == "deny" and .rule == "apps/routes/0" and (.reason | test("no key set for provider down"))' /down k1
# with no rate limit on fetches, a check waits for one fetch, not for ever
check "a provider never reached, fetched again for any check (jwks_min_interval 0): 503 at once" \
	sh -c 'timeout 10 p2p -r "$1" ipc authz "{\"op\":\"check\",\"resource\":\"apps\",\"method\":\"GET\",\"path\":\"/zero\",\"headers\":{\"authorization\":\"Bearer $2\"}}" |
		jq -e ".status == 503" >/dev/null' sh "$R" "$(cat "$T/tok/k1")"
check "... its status says why" is "$(q '{"op":"status"}')" \
	'.providers[] | select(.jwks | test(":'"$DEAD"'/")) | .state == "none" and (.last_error | test("fetch failed"))'

# back up: the next fetch succeeds again
check "the provider comes back on its port" idp_start "$PORT"
check "... the set is fetched again and fresh" wait_for 60 idp_is '.state == "fresh" and .last_error == null'

# a certificate from an authority we were not told to trust
sed 's/"jwks_min_interval": 2/"jwks_min_interval": 60/' "$T/policy.json" >"$T/policy-b.json"
check "a second p2p-authz trusting another CA starts" start bpid "$T/ready-b" \
	p2p-authz -d 3 -r "$T/run-b" -m "$R/none.sock" -C "$T/other-ca.pem" -f "$T/policy-b.json"
check "... its fetch fails on the certificate" wait_for 15 sh -c \
	'p2p -r "$1" ipc authz "{\"op\":\"status\"}" | jq -e ".providers[] | select(.jwks | test(\":$2/\")) | .failures >= 1 and (.last_error | test(\"certificate|SSL\"))" >/dev/null' sh "$T/run-b" "$PORT"
R_B=$(p2p -r "$T/run-b" ipc authz "{\"op\":\"check\",\"resource\":\"apps\",\"method\":\"GET\",\"path\":\"/\",\"headers\":{\"authorization\":\"Bearer $(cat "$T/tok/k1")\"}}")
check "... and its tokens get 503, never a set from an untrusted server" is "$R_B" '.status == 503'

kill -TERM "$apid"; wait "$apid"; rc=$?; apid=
check "SIGTERM: exit 0 (a fetch may be under way)" [ "$rc" -eq 0 ]
check "no fatal logged" sh -c '! grep -q "fatal" "$1"' sh "$LOG"
echo "# took $(($(date +%s) - t0)) s"
finish
