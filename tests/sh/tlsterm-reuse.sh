#!/bin/sh
# p2p-tlsterm reusing p2p-authz's decisions: the same check again is
# answered from what p2p-authz said (reuse_ms), only while p2p-tlsterm
# watches p2p-authz, and never past a change: a policy reloaded, a key set
# replaced, the map changed, p2p-authz gone, the token expired. Each
# reused request still gets its identity headers and its audit record.
. "$(dirname "$0")/../lib.sh"

T=$(scratch)
. "$P2P_TOP/tests/sh/tlsterm-env"
trap tlsterm_cleanup EXIT
trap 'exit 1' HUP INT TERM
tlsterm_need tlsterm-reuse

make_pki && make_map && make_policy
check "certificates, map, policy and tokens made" [ $? -eq 0 ]
check "the apps and the daemons start" start_all
U=https://apps.corp.test:$HTTPS_PORT
ALICE=$(cat "$T/tok/alice") BOB=$(cat "$T/tok/bob")

code() { tcurl -o /dev/null -w '%{http_code}' "$@"; }
is() { _want=$1; shift; _got=$("$@"); [ "$_got" = "$_want" ] || { echo "# got $_got" >&2; return 1; }; }
checks() { p2p -r "$R" ipc authz '{"op":"status"}' | jq '.checks.total'; }
reused() { status | jq '.authz.reused'; }
generation() { p2p -r "$R" ipc authz '{"op":"check","resource":"apps","method":"GET","path":"/health"}' | jq '.generation'; }
# asked N CMD...: CMD made p2p-authz decide more than N checks in all
asked() { _n=$1; shift; "$@" >/dev/null; [ "$(checks)" -gt "$_n" ]; }
# code_is CODE CURL-ARGS...: for wait_for
code_is() { _c=$1; shift; [ "$(code "$@")" = "$_c" ]; }
# newer_than G: p2p-authz's generation is past G
newer_than() { [ "$(generation)" -gt "$1" ]; }
tstatus() { status | jq -e "$1" >/dev/null; }
jqf() { jq -e "$@" >/dev/null; }

# ---- the same check twice: asked once ----
check "alice /alice: 200" is 200 code -H "Authorization: Bearer $ALICE" "$U/alice/x"
check "p2p-tlsterm watches p2p-authz" tstatus '.authz.watching == true'
n0=$(checks) r0=$(reused)
tcurl -H "Authorization: Bearer $ALICE" "$U/alice/x" >"$T/again.json"
check "the same request again: p2p-authz is not asked" [ "$(checks)" -eq "$n0" ]
check "... p2p-tlsterm counts a reused decision" [ "$(reused)" -eq $((r0 + 1)) ]
check "... the app still gets the identity (X-P2P-User alice, once)" \
	jqf '[.headers[] | select(.[0] | ascii_downcase == "x-p2p-user")] == [["X-P2P-User", "alice"]]' "$T/again.json"
check "... and a forged X-P2P-User is still stripped" \
	sh -c 'tcurl() { curl -sS --cacert "$1/pki/ca.crt" --resolve "apps.corp.test:$2:$3" "$4" -H "Authorization: Bearer $5" -H "X-P2P-User: mallory"; }
		tcurl "$@" | jq -e "[.headers[] | select(.[0] | ascii_downcase == \"x-p2p-user\")] == [[\"X-P2P-User\", \"alice\"]]" >/dev/null' \
	sh "$T" "$HTTPS_PORT" "$APPS" "$U/alice/x" "$ALICE"
check "a different path is a different check: asked" \
	asked "$(checks)" tcurl -H "Authorization: Bearer $ALICE" "$U/alice/y"
check "a Cookie added is a different check: asked" \
	asked "$(checks)" tcurl -H "Authorization: Bearer $ALICE" -H "Cookie: a=1" "$U/alice/x"
check "... a second Cookie field too" \
	asked "$(checks)" tcurl -H "Authorization: Bearer $ALICE" -H "Cookie: a=1" -H "Cookie: b=2" "$U/alice/x"
check "... and the same two again: not asked" \
	sh -c 'n=$(p2p -r "$1" ipc authz "{\"op\":\"status\"}" | jq .checks.total)
		curl -sS -o /dev/null --cacert "$2/pki/ca.crt" --resolve "apps.corp.test:$3:$4" "$5" \
			-H "Authorization: Bearer $6" -H "Cookie: a=1" -H "Cookie: b=2" &&
		[ "$(p2p -r "$1" ipc authz "{\"op\":\"status\"}" | jq .checks.total)" -eq "$n" ]' \
	sh "$R" "$T" "$HTTPS_PORT" "$APPS" "$U/alice/x" "$ALICE"
check "... the Cookie's bytes moved from one field to the other: asked" \
	asked "$(checks)" tcurl -H "Authorization: Bearer $ALICE" -H "Cookie: a=1; b" -H "Cookie: =2" "$U/alice/x"
check "bob /alice: 403, reused as a 403 too" \
	sh -c '[ "$1" = 403 ] && [ "$2" = 403 ]' sh "$(code -H "Authorization: Bearer $BOB" "$U/alice/x")" \
	"$(code -H "Authorization: Bearer $BOB" "$U/alice/x")"
check "no token /alice: 401 ..." is 401 code "$U/alice/x"
check "... and a 401 is never reused (asked again)" asked "$(checks)" tcurl "$U/alice/x"
wait_for 10 sh -c '[ "$(jq -s "map(select(.path == \"/alice/x\" and .user == \"alice\")) | length" "$1")" -ge 3 ]' sh "$T/audit/audit.log"
check "every reused request has its own audit record with the identity" \
	jqf -s 'map(select(.path == "/alice/x" and .user == "alice" and .status == 200 and .rule == "apps/routes/2")) | length >= 3' \
	"$T/audit/audit.log"

# ---- a policy change: the next request is decided by the new policy ----
g0=$(generation)
sed 's/"allow": { "users": \["alice"\] }/"allow": { "users": ["carol"] }/' "$T/policy.json" >"$T/policy.new" &&
	mv "$T/policy.new" "$T/policy.json"
check "p2p-authz takes the new policy (a new generation)" wait_for 10 newer_than "$g0"
check "... alice /alice at once: 403, nothing reused from before" is 403 code -H "Authorization: Bearer $ALICE" "$U/alice/x"
g0=$(generation)
make_policy && kill -HUP "$pid_authz"   # back, with a new key set and new tokens
ALICE=$(cat "$T/tok/alice")
check "the policy back with a new key set (a new generation)" wait_for 10 newer_than "$g0"
check "... alice /alice: 200" wait_for 10 code_is 200 -H "Authorization: Bearer $ALICE" "$U/alice/x"

# ---- a key set replaced: a token signed by the key taken out stops at once ----
OLD=$ALICE
check "(reused) alice /alice: 200" is 200 code -H "Authorization: Bearer $OLD" "$U/alice/x"
cp "$T/jwks.json" "$T/jwks.keep"
mkdir -p "$T/other/tok" && $PY "$T/mint.py" "$T/other"
g0=$(generation)
cp "$T/other/jwks.json" "$T/jwks.json" && kill -HUP "$pid_authz"
check "p2p-authz reads the new key set (a new generation)" wait_for 10 newer_than "$g0"
check "... the token of the key taken out: 401 at once" is 401 code -H "Authorization: Bearer $OLD" "$U/alice/x"
cp "$T/jwks.keep" "$T/jwks.json" && kill -HUP "$pid_authz"
check "the key back: 200" wait_for 10 code_is 200 -H "Authorization: Bearer $OLD" "$U/alice/x"

# ---- the map: a client taken out loses its WireGuard identity at once ----
check "alice-laptop, /ops (WireGuard identity): 200" is 200 code --interface "$ALICE_SRC" "$U/ops/x"
check "... again (reused): 200" is 200 code --interface "$ALICE_SRC" "$U/ops/x"
g0=$(generation)
jq '.version = 2 | del(.clients["alice-laptop"])' "$T/map.json" >"$T/map.new" && mv "$T/map.new" "$T/map.json"
check "p2p-authz follows the map (a new generation)" wait_for 10 newer_than "$g0"
check "... alice-laptop's address is no client now: 401 at once" is 401 code --interface "$ALICE_SRC" "$U/ops/x"

# ---- a token that expires: not reused past its exp ----
# A key of our own added to the set, and a token of alice's living 3 s.
$PY - "$T" >"$T/tok/short" <<'EOF'
import json, sys, time, jwt
from cryptography.hazmat.primitives.asymmetric import ec
t = sys.argv[1]
key = ec.generate_private_key(ec.SECP256R1())
from jwk import public_jwk
j = public_jwk(key.public_key(), kid="short", use="sig", alg="ES256")
ks = json.load(open(t + "/jwks.json"))
ks["keys"].append(j)
json.dump(ks, open(t + "/jwks.json.new", "w"))
now = int(time.time())
print(jwt.encode({"iss": "https://idp.corp.test", "aud": "p2p-proxy", "sub": "alice", "iat": now,
                  "exp": now + 3}, key, algorithm="ES256", headers={"kid": "short"}))
EOF
mv "$T/jwks.json.new" "$T/jwks.json"
# no clock skew allowed (-s 0: 60 s by default), so that exp is the end
kill -TERM "$pid_authz"; wait "$pid_authz" 2>/dev/null
check "p2p-authz again, with -s 0" start authz p2p-authz -d 3 -r "$R" -m "$R/mapd.sock" -k "$T/assert.pem" \
	-f "$T/policy.json" -s 0
SHORT=$(cat "$T/tok/short")
check "a token living 3 s: 200" wait_for 3 code_is 200 -H "Authorization: Bearer $SHORT" "$U/alice/x"
r0=$(reused)
check "... 200 again" is 200 code -H "Authorization: Bearer $SHORT" "$U/alice/x"
check "... from what p2p-authz said" [ "$(reused)" -eq $((r0 + 1)) ]
sleep 4
check "... and 401 once it expired (not reused past its exp)" is 401 code -H "Authorization: Bearer $SHORT" "$U/alice/x"

# ---- p2p-authz gone: nothing is reused, 503 ----
kill -KILL "$pid_authz"; wait "$pid_authz" 2>/dev/null
check "p2p-authz gone: the request reused a moment ago is 503 now" is 503 code -H "Authorization: Bearer $ALICE" "$U/alice/x"
check "... p2p-tlsterm no longer watches, and keeps nothing" \
	tstatus '.authz.watching == false and .authz.reuse_entries == 0'
check "p2p-authz back: 200, watched again" start authz p2p-authz -d 3 -r "$R" -m "$R/mapd.sock" -k "$T/assert.pem" -f "$T/policy.json"
check "... 200" wait_for 10 code_is 200 -H "Authorization: Bearer $ALICE" "$U/alice/x"
check "... and watching" wait_for 5 tstatus '.authz.watching == true'

# ---- -o reuse=0: every request asked ----
kill -TERM "$pid_tlsterm"; wait "$pid_tlsterm" 2>/dev/null
check "with -o reuse=0" start_tlsterm -o reuse=0
code -H "Authorization: Bearer $ALICE" "$U/alice/x" >/dev/null
n0=$(checks)
code -H "Authorization: Bearer $ALICE" "$U/alice/x" >/dev/null
check "... the same request is asked again" [ "$(checks)" -eq $((n0 + 1)) ]
check "... and nothing is watched" tstatus '.authz.watching == false and .authz.reused == 0'

# ---- a p2p-authz that takes no watch: nothing is reused ----
# A stand-in on authz.sock that refuses "watch" (as one before it did) and
# allows every check, saying reuse_ms all the same, counting the checks.
kill -TERM "$pid_tlsterm" "$pid_authz"; wait "$pid_tlsterm" "$pid_authz" 2>/dev/null
rm -f "$R/authz.sock"
$PY - "$R/authz.sock" "$T/fake-checks" >"$T/fake.out" 2>>"$LOG" <<'EOF' &
import json, socket, sys, threading
path, counter = sys.argv[1], sys.argv[2]
n = 0
def serve(c):
    global n
    f = c.makefile("rwb")
    for line in f:
        req = json.loads(line)
        if req.get("op") == "check":
            n += 1
            open(counter, "w").write("%d\n" % n)
            rep = {"id": req["id"], "ok": True, "decision": "allow", "status": 200, "resource": "apps",
                   "rule": "stand-in", "reason": "stand-in", "path": req["path"].split("?")[0],
                   "generation": 1, "reuse_ms": 60000}
        else:
            rep = {"id": req["id"], "ok": False, "error": "unknown op '%s'" % req.get("op")}
        f.write((json.dumps(rep) + "\n").encode())
        f.flush()
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
pids="$pids $!"
check "a p2p-authz that refuses watch (a stand-in)" wait_for 10 grep -q ready "$T/fake.out"
check "p2p-tlsterm starts against it" start_tlsterm
check "... requests are served: 200" is 200 code "$U/alice/x"
check "... twice" is 200 code "$U/alice/x"
check "... each one asked (reuse_ms is not enough without a watch)" [ "$(cat "$T/fake-checks")" -eq 2 ]
check "... and p2p-tlsterm says it does not watch, keeps nothing, and is not left waiting" \
	tstatus '.authz.watching == false and .authz.reused == 0 and .authz.reuse_entries == 0 and .authz.pending == 0'
check "... and logs it once" [ "$(grep -c "p2p-authz gave no watch" "$LOG")" -eq 1 ]
finish
