#!/bin/sh
# p2p-authz: the identity demo with tokens signed outside this project
# (Debian's python3-jwt), WireGuard identities from the map, every bad token
# of the issue, the signed assertion, the decision cache, and reloads.
#
#   /usr/bin/python3 (python3-jwt): RSA and EC keys, T/jwks.json, tokens
#
#   test ── p2p ipc authz ──> T/run/authz.sock ── p2p-authz -f T/policy.json
#                                                   │  (keys: T/jwks.json)
#                                                   └─ watch ─> T/run/mapd.sock ── p2p-mapd
# The map has two clients: alice-laptop (100.96.1.10, alice, eng+ops) and
# bob-laptop (100.96.1.11, bob, eng); the resource apps is apps.corp.test.
. "$(dirname "$0")/../lib.sh"

T=$(scratch)
mpid='' apid=''
cleanup() {
	for p in $apid $mpid; do kill -KILL "$p" 2>/dev/null; done
	if [ "$_failures" -gt 0 ] && [ -s "$T/log" ]; then sed 's/^/# log: /' "$T/log"; fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

if ! /usr/bin/python3 -c 'import jwt, cryptography' 2>/dev/null; then
	skip "authz-demo: needs Debian's python3-jwt and python3-cryptography"
	exit 0
fi
for tool in jq socat; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		skip "authz-demo: needs $tool"
		exit 0
	fi
done

R=$T/run LOG=$T/log
mkdir -p "$T/state" "$T/tok"

# ---- keys and tokens, made by python3-jwt ----
cat >"$T/mint.py" <<'EOF'
import json, sys, time, hmac, hashlib, base64
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa, ec
from cryptography.hazmat.primitives import serialization

out = sys.argv[1]
now = int(time.time())
rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ec_key = ec.generate_private_key(ec.SECP256R1())
new_key = ec.generate_private_key(ec.SECP256R1())   # published later (rotation)

from jwk import public_jwk


def jwk(pub, kid, alg):
    return public_jwk(pub, kid=kid, use="sig", alg=alg)

keys = [jwk(rsa_key.public_key(), "rsa-1", "RS256"), jwk(ec_key.public_key(), "ec-1", "ES256")]
json.dump({"keys": keys}, open(out + "/jwks.json", "w"))
json.dump({"keys": keys + [jwk(new_key.public_key(), "ec-2", "ES256")]},
          open(out + "/jwks-rotated.json", "w"))

def claims(sub, **kw):
    c = {"iss": "https://idp.corp.test", "aud": "p2p-proxy", "sub": sub,
         "iat": now, "exp": now + 3600, "groups": ["eng"] if sub != "carol" else ["sales"]}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}

def put(name, token):
    open(out + "/tok/" + name, "w").write(token)

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

rs = lambda c, kid="rsa-1": jwt.encode(c, rsa_key, algorithm="RS256", headers={"kid": kid})
put("alice", rs(claims("alice")))
put("bob", rs(claims("bob")))
put("carol-es256", jwt.encode(claims("carol"), ec_key, algorithm="ES256", headers={"kid": "ec-1"}))
put("rotated", jwt.encode(claims("alice"), new_key, algorithm="ES256", headers={"kid": "ec-2"}))
# the bad ones
h = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
put("alg-none", h + "." + b64(json.dumps(claims("alice")).encode()) + ".")
pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
h = b64(json.dumps({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}).encode())
p = b64(json.dumps(claims("alice")).encode())
put("hs256-public-key", h + "." + p + "." + b64(hmac.new(pem, (h + "." + p).encode(), hashlib.sha256).digest()))
put("unknown-kid", rs(claims("alice"), kid="rsa-9"))
put("expired", rs(claims("alice", exp=now - 3600, iat=now - 7200)))
put("not-yet-valid", rs(claims("alice", nbf=now + 3600)))
put("wrong-issuer", rs(claims("alice", iss="https://evil.test")))
put("wrong-audience", rs(claims("alice", aud="someone-else")))
good = rs(claims("alice"))
put("truncated", good[: len(good) - 20])
put("garbage", "eyJ!!!.$$$.%%%")
put("big-20k", rs(claims("alice", pad="x" * 20000)))
put("big-100k", rs(claims("alice", pad="x" * 100 * 1024)))
EOF
check "python3-jwt makes the keys and tokens" /usr/bin/python3 "$T/mint.py" "$T"

# ---- the map and p2p-mapd ----
cat >"$T/map.json" <<'EOF'
{
  "version": 1,
  "dns": { "zones": ["corp.test"] },
  "connectors": { "ny": { "key": "M88tNfFb2kZ9ZQQPVAOTW4v9Bql4Ul0HdlAsdr9SYiI=" } },
  "clients": {
    "alice-laptop": { "key": "KFNiqKKdSaH+NJHW8p3aRzpuk5ZZp12vSgqADiqku2Y=", "addr": "100.96.1.10",
                      "user": "alice", "groups": ["eng", "ops"] },
    "bob-laptop": { "key": "g/ZIJiztS/hqsb+nspSwCjUNbC2SWcudwP45nt9GWSA=", "addr": "100.96.1.11",
                    "user": "bob", "groups": ["eng"] }
  },
  "resources": {
    "apps": { "names": ["apps.corp.test", "*.apps.corp.test"], "connectors": ["ny"],
              "upstream": "http://10.0.0.5:8081" }
  }
}
EOF

policy() { # VERSION ALICE-USERS: the policy, /alice for the users given
	cat <<EOF
{
  "version": $1,
  "providers": {
    "corp": { "issuer": "https://idp.corp.test", "audience": "p2p-proxy",
              "jwks_file": "$T/jwks.json", "cookie": "p2p_token", "jwks_min_interval": 0 }
  },
  "resources": {
    "apps": {
      "provider": "corp",
      "routes": [
        { "path": "/health", "auth": "none" },
        { "prefix": "/public", "allow": "any" },
        { "prefix": "/alice", "allow": { "users": $2 } },
        { "prefix": "/bob", "allow": { "users": ["bob"] } },
        { "prefix": "/ops/", "auth": "wireguard", "allow": { "groups": ["ops"] } },
        { "prefix": "/eng", "auth": ["jwt", "wireguard"], "allow": { "groups": ["eng"] } },
        { "prefix": "/nobody", "allow": [] }
      ]
    }
  }
}
EOF
}
policy 1 '["alice"]' >"$T/policy.json"

start() { # NAME FIFO COMMAND...: start in the background, wait for readiness
	_name=$1 _fifo=$2; shift 2
	rm -f "$_fifo" && mkfifo "$_fifo" || return 1
	"$@" 3>"$_fifo" 2>>"$LOG" &
	eval "$_name=\$!"
	timeout 20 sh -c 'read -r _ <"$1"' sh "$_fifo"
}

check "p2p-authz -n accepts the policy" sh -c 'p2p-authz -n -f "$1" | grep -qx "configuration OK"' sh "$T/policy.json"
check "p2p-mapd starts" start mpid "$T/mready" p2p-mapd -d 3 -r "$R" -s "$T/state" -f "$T/map.json"
check "p2p-authz starts" start apid "$T/aready" \
	p2p-authz -v -d 3 -r "$R" -m "$R/mapd.sock" -k "$T/assert.pem" -f "$T/policy.json"
check "the assertion key was made, mode 0600" sh -c '[ "$(stat -c %a "$1")" = 600 ]' sh "$T/assert.pem"

q() { p2p -r "$R" ipc authz "$1"; }
# is REPLY JQ-TEST: REPLY is not empty and passes the test (jq -e alone
# passes an empty input)
is() { [ -n "$1" ] && printf '%s\n' "$1" | jq -e "$2" >/dev/null 2>&1; }
status_is() { is "$(q '{"op":"status"}')" "$1"; }
check "the map arrives" wait_for 10 status_is '.map_ready and .clients == 2'

# ask METHOD PATH [TOKEN-NAME [SOURCE]]: the reply to a check
ask() {
	_tok='' _src=null
	if [ -n "${3:-}" ]; then _tok=$(cat "$T/tok/$3"); fi
	if [ -n "${4:-}" ]; then _src="\"$4\""; fi
	q "$(jq -cn --arg m "$1" --arg p "$2" --arg t "$_tok" --argjson s "$_src" \
		'{op: "check", resource: "apps", method: $m, path: $p, source: $s,
		  headers: (if $t == "" then {} else {authorization: ("Bearer " + $t)} end)}')"
}
# expect DESC JQ-TEST METHOD PATH [TOKEN [SOURCE]]
expect() {
	_desc=$1 _test=$2; shift 2
	_r=$(ask "$@")
	if is "$_r" "$_test"; then ok "$_desc"
	else fail "$_desc"; echo "# got: $_r"; echo "# again: $(ask "$@" 2>&1)"; fi
}

# ---- the identity demo ----
expect "alice's token, /alice: allow" \
	'.ok and .decision == "allow" and .status == 200 and .rule == "apps/routes/2"
	 and .identity == {"client": null, "user": "alice", "groups": ["eng"], "mechanism": "jwt",
	                   "issuer": "https://idp.corp.test", "subject": "alice"}
	 and (.reason | test("alice.*allow\\[0\\]"))' GET /alice alice
expect "bob's token, /alice: 403" \
	'.decision == "deny" and .status == 403 and .rule == "apps/routes/2" and .identity.user == "bob"
	 and (.reason | test("matches no allow entry")) and (has("set") | not)' GET /alice/notes bob
expect "no token, /alice: 401 with a Bearer challenge" \
	'.status == 401 and .decision == "deny" and .www_authenticate == "Bearer realm=\"apps\""
	 and .identity.mechanism == "none" and (.reason | test("no token"))' GET /alice
expect "alice's token, /public: allow" '.status == 200 and .rule == "apps/routes/1"' GET /public alice
expect "bob's token, /public: allow" '.status == 200 and .identity.user == "bob"' POST /public/x bob
expect "carol's ES256 token, /public: allow" '.status == 200 and .identity.user == "carol"' GET /public carol-es256
expect "no token, /public: 401" '.status == 401' GET /public
expect "no token, /health: allow (an open route)" \
	'.status == 200 and .rule == "apps/routes/0" and .identity.mechanism == "none"' GET /health
expect "/health from alice-laptop: allow, the client reported" \
	'.status == 200 and .identity.client == "alice-laptop" and .identity.mechanism == "wireguard"' \
	GET /health "" 100.96.1.10
expect "no route: 403 by the default rule" \
	'.status == 403 and .rule == "apps/default" and (.reason | test("no route for GET /elsewhere"))' \
	GET /elsewhere alice
expect "an empty allow list: 403 for everyone" '.status == 403 and .rule == "apps/routes/6"' GET /nobody alice

# ---- what the proxy is told to set and strip ----
R1=$(ask GET /alice/x alice 100.96.1.10)
check "allow: identity headers to set" \
	is "$R1" '.set["X-P2P-User"] == "alice" and .set["X-P2P-Groups"] == "eng"
		and .set["X-P2P-Client"] == "alice-laptop" and (.set["X-P2P-Jwt-Assertion"] | split(".") | length) == 3'
check "allow: client identity headers and the token's header stripped" \
	is "$R1" '.strip == ["x-p2p-user","x-p2p-groups","x-p2p-client","x-p2p-jwt-assertion","authorization"]'
check "allow: the normal form of the path" is "$R1" '.path == "/alice/x"'

# the assertion verifies with the jwks op's key, outside this project
q '{"op":"jwks"}' >"$T/assert-jwks.json"
printf '%s\n' "$R1" | jq -r '.set["X-P2P-Jwt-Assertion"]' >"$T/assertion"
cat >"$T/verify.py" <<'EOF'
import json, sys, jwt
keys = json.load(open(sys.argv[1]))["keys"]
tok = open(sys.argv[2]).read().strip()
kid = jwt.get_unverified_header(tok)["kid"]
key = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps([k for k in keys if k["kid"] == kid][0]))
c = jwt.decode(tok, key, algorithms=["ES256"], audience="apps", issuer="p2p-authz")
assert c["user"] == "alice" and c["client"] == "alice-laptop" and c["groups"] == ["eng"], c
assert c["mechanism"] == "jwt" and c["rule"] == "apps/routes/2" and c["sub"] == "alice", c
assert 0 < c["exp"] - c["iat"] <= 120, c
print("ok")
EOF
check "the assertion verifies with python3-jwt against the jwks op (ES256, aud apps)" \
	sh -c '[ "$(/usr/bin/python3 "$1" "$2" "$3")" = ok ]' sh "$T/verify.py" "$T/assert-jwks.json" "$T/assertion"
check "the jwks op publishes only the public key" \
	jq -e '(.keys | length) == 1 and .keys[0].kty == "EC" and .keys[0].crv == "P-256" and (.keys[0] | has("d") | not)
	       and .keys[0].alg == "ES256"' "$T/assert-jwks.json"
check "the jwks kid is the status's assertion_kid" \
	[ "$(jq -r '.keys[0].kid' "$T/assert-jwks.json")" = "$(q '{"op":"status"}' | jq -r .assertion_kid)" ]

# a token in the provider's cookie
TOK=$(cat "$T/tok/alice")
RC=$(q "{\"op\":\"check\",\"resource\":\"apps\",\"method\":\"GET\",\"path\":\"/alice\",\"headers\":{\"cookie\":\"a=1; p2p_token=$TOK; b=2\"}}")
check "the token in cookie p2p_token: allow, that cookie stripped, not the header" \
	is "$RC" '.status == 200 and .strip_cookies == ["p2p_token"] and (.strip | index("authorization") | not)'

# ---- WireGuard identities from the map ----
expect "/ops/ from alice-laptop (group ops): allow, no token needed" \
	'.status == 200 and .identity == {"client": "alice-laptop", "user": "alice", "groups": ["eng", "ops"], "mechanism": "wireguard"}' \
	GET /ops/deploy "" 100.96.1.10
expect "/ops/ from bob-laptop (no ops): 403" '.status == 403 and .identity.client == "bob-laptop"' GET /ops/deploy "" 100.96.1.11
expect "/ops/ with bob's token from bob-laptop: the token does not count there" \
	'.status == 403 and .identity.mechanism == "wireguard"' GET /ops/deploy bob 100.96.1.11
expect "/ops/ from an address no client has: 401, a WireGuard challenge" \
	'.status == 401 and .www_authenticate == "WireGuard realm=\"apps\"" and (.reason | test("100.96.1.99 is not a client"))' \
	GET /ops/deploy "" 100.96.1.99
expect "/eng (jwt or wireguard) from bob-laptop without a token: allow by the map" \
	'.status == 200 and .identity.mechanism == "wireguard" and .identity.user == "bob"' GET /eng "" 100.96.1.11
expect "/eng with carol's token (sales) from bob-laptop: the token decides, 403" \
	'.status == 403 and .identity.user == "carol" and .identity.client == "bob-laptop"' GET /eng carol-es256 100.96.1.11
expect "/eng with a bad token from bob-laptop: 401, not the map's identity" \
	'.status == 401' GET /eng expired 100.96.1.11

# the resource from the host name, and paths in normal form
RH=$(q '{"op":"check","host":"Deep.Apps.Corp.Test:443","method":"GET","path":"/health"}')
check "the resource found from a wildcard host name" is "$RH" '.resource == "apps" and .status == 200'
RH=$(q '{"op":"check","host":"nope.corp.test","method":"GET","path":"/health"}')
check "a host no resource has: 403 by rule default" is "$RH" '.status == 403 and .rule == "default"'
expect "/public/../alice with bob's token: judged (and forwarded) as /alice" \
	'.status == 403 and .path == "/alice" and .rule == "apps/routes/2"' GET /public/../alice bob
expect "/public/%2e%2e/alice with bob's token: the same" '.status == 403 and .path == "/alice"' GET /public/%2e%2e/alice bob
expect "/public/..%2Falice: 400, an escaped slash" \
	'.status == 400 and .rule == "apps/path" and (.reason | test("escaped slash"))' GET /public/..%2Falice bob

# ---- every bad token of the issue: 401 with invalid_token ----
for t in alg-none hs256-public-key unknown-kid expired not-yet-valid wrong-issuer wrong-audience \
	truncated garbage big-20k; do
	expect "bad token $t: 401" \
		'.status == 401 and (.www_authenticate | startswith("Bearer realm=\"apps\", error=\"invalid_token\""))
		 and .identity.user == null' GET /public "$t"
done
expect "alg none: the reason says so" '.reason | test("alg none is refused")' GET /public alg-none
expect "HS256 with the public key: the reason says so" '.reason | test("HMAC")' GET /public hs256-public-key
expect "expired: the reason says so" '.reason | test("expired [0-9]+ s ago")' GET /public expired
expect "20 KiB: refused by its size" '.reason | test("over the limit of 16384")' GET /public big-20k
# 100 KiB does not fit in one IPC line (64 KiB): the line is refused, the daemon lives on
R100=$(printf '{"op":"check","resource":"apps","method":"GET","path":"/public","headers":{"authorization":"Bearer %s"}}\n' \
	"$(cat "$T/tok/big-100k")" | socat -t 5 - "UNIX-CONNECT:$R/authz.sock")
check "a 100 KiB token: the request line is refused as too long" \
	is "$R100" '.ok == false and (.error | test("line too long"))'
check "... and p2p-authz still answers" status_is '.prog == "p2p-authz"'

# malformed requests are errors, not decisions
check "a check without method: an error naming it" \
	sh -c 'p2p -r "$1" ipc authz "{\"op\":\"check\",\"resource\":\"apps\",\"path\":\"/\"}" | jq -e ".ok == false and .error == \".method: missing\"" >/dev/null' sh "$R"
check "a bad source address: an error naming it" \
	sh -c 'p2p -r "$1" ipc authz "{\"op\":\"check\",\"resource\":\"apps\",\"method\":\"GET\",\"path\":\"/\",\"source\":\"10.0.0.300\"}" | jq -e ".ok == false and (.error | test(\"^.source: \"))" >/dev/null' sh "$R"
check "an unknown op" sh -c 'p2p -r "$1" ipc authz "{\"op\":\"frob\"}" | jq -e ".error == \"unknown op '"'"'frob'"'"'\"" >/dev/null' sh "$R"

# ---- the decision cache ----
expect "a repeated check is answered from the cache" '.status == 200 and .cached == true' GET /alice alice
expect "a cached 403 too" '.status == 403 and .cached == true' GET /alice bob
check "status counts the cached answers and times both kinds" \
	status_is '.checks.cached >= 2 and .cache.entries >= 2 and .cache.cached_us > 0 and .cache.uncached_us > 0'

# ---- key rotation in the file: an unknown kid reads it again ----
expect "a token of a key not yet published: 401 unknown kid" '.status == 401 and (.reason | test("unknown kid"))' GET /public rotated
cp "$T/jwks-rotated.json" "$T/jwks.json"
expect "once the file has the key: allow, without a reload" '.status == 200 and .identity.user == "alice"' GET /public rotated

# ---- reloads ----
policy 2 '"alice"' >"$T/policy.json.new" && mv "$T/policy.json.new" "$T/policy.json"
check "a bad policy is refused" wait_for 10 status_is '.refused == 1 and .version == 1'
check "... and the log names the JSON path" \
	grep -q "^p2p-authz: error: $T/policy.json: .resources.apps.routes\[2\].allow.users: an array of strings, not a string$" "$LOG"
expect "... and the old policy still decides" '.status == 403' GET /alice bob
kill -HUP "$apid"
check "SIGHUP: refused again" wait_for 10 status_is '.refused == 2 and .version == 1'
policy 3 '["alice", "bob"]' >"$T/policy.json"
check "a good policy (version 3) is loaded" wait_for 10 status_is '.version == 3 and .reloads == 1 and .last_error == null'
expect "bob may now use /alice, the cache having been dropped" '.status == 200 and .cached == false' GET /alice bob
sed "s|$T/jwks.json|$T/missing.json|" "$T/policy.json" >"$T/p.new" && mv "$T/p.new" "$T/policy.json"
check "a policy whose key file is missing is refused" wait_for 10 status_is '.refused == 3 and .version == 3'
check "... naming the provider and the file" grep -q "providers.corp.jwks_file: $T/missing.json: No such file" "$LOG"
expect "... and tokens still verify with the keys in hand" '.status == 200' GET /public bob

# ---- -n and exit codes ----
p2p-authz -n -f "$T/policy.json" >"$T/n.out" 2>&1; rc=$?
check "-n on a bad policy exits 102" [ "$rc" -eq 102 ]
check "-n names the problem" grep -q "jwks_file: $T/missing.json" "$T/n.out"
p2p-authz -q 2>/dev/null; rc=$?
check "a bad option exits 100" [ "$rc" -eq 100 ]

kill -TERM "$apid"; wait "$apid"; rc=$?; apid=
check "SIGTERM: exit 0" [ "$rc" -eq 0 ]

# ---- a connector set up before its policy ----
mkdir -p "$T/later"
check "p2p-authz starts without its policy file" start apid "$T/aready" \
	p2p-authz -d 3 -r "$R" -m "$R/mapd.sock" -f "$T/later/policy.json"
expect "without a policy every request is denied" '.status == 403 and .rule == "default"' GET /health
check "... and status says why" status_is '.last_error | test("missing: every request is denied")'
policy 4 '["alice"]' >"$T/later/policy.json"
check "the policy is loaded once written" wait_for 10 status_is '.version == 4 and .last_error == null'
expect "... and decides" '.status == 200 and .rule == "apps/routes/0"' GET /health
kill -TERM "$apid"; wait "$apid"; apid=
check "SIGTERM: the socket is gone" [ ! -e "$R/authz.sock" ]
check "no warning or fatal logged by p2p-authz but the missing policy's" \
	sh -c '! grep -E "^p2p-authz: (warning|fatal): " "$1" | grep -v "policy.json: missing"' sh "$LOG"
finish
