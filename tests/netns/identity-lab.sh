#!/bin/sh
# The identity demo in the lab, p2p-authz and p2p-audit on the connector ny,
# with tokens from the lab's identity provider (python3-jwt, outside the
# project) and the audit trail forwarded to the collector on control:
#
#   test (as p2p-tlsterm will) ── check ──> ny: p2p-authz (policy.json, idp.jwks, the map)
#                              ── log ───> ny: p2p-audit ── HTTPS, client cert ──> control: p2p-audit -L
#                                                       └── syslog over TLS ────> control: rsyslogd
#
# alice /alice allow, bob /alice 403, no token /alice 401, /public allow
# for any valid token, /health allow without one; each decision in ny's
# audit trail with the identity and the rule, the chain verified by
# p2p-audit -V, and the same records at the collector and in a real
# rsyslog's file, once each.
# shellcheck disable=SC2016 # sh -c '...' sh ARGS
. "$(dirname "$0")/../lib.sh"

need_root "identity-lab"
for t in ip nsenter unshare setsid s6-svscan jq openssl /usr/bin/python3; do
	if ! command -v "$t" >/dev/null 2>&1; then
		skip "identity-lab: needs $t (make deps)"
		exit 0
	fi
done
if ! /usr/bin/python3 -c 'import jwt, cryptography' 2>/dev/null; then
	skip "identity-lab: needs python3-jwt and python3-cryptography (make deps)"
	exit 0
fi

lab_up
ipc() { _n=$1; shift; on "$_n" p2p -t 5000 ipc "$@"; }

check "p2p-lab ca prints the lab CA, a CA certificate" \
	sh -c 'openssl x509 -in "$("$@")" -noout -text | grep -q "CA:TRUE"' sh p2p-lab -n "$name" ca
cert=$state/nodes/ny/etc/tls/vault.example.internal.crt
check "inside p2p-lab exec client, OpenSSL trusts the lab CA (SSL_CERT_FILE)" \
	lab exec client -- sh -c 'openssl verify -CAfile "$SSL_CERT_FILE" "$1" >/dev/null' sh "$cert"
check "... curl too (CURL_CA_BUNDLE)" \
	sh -c '[ "$("$@" sh -c "echo \$CURL_CA_BUNDLE")" = "$("$@" sh -c "echo \$SSL_CERT_FILE")" ]' sh \
	p2p-lab -n "$name" exec client --
if command -v certutil >/dev/null 2>&1; then
	check "... and Chromium through the NSS database in its HOME" \
		sh -c 'n=$1; shift; "$@" sh -c "certutil -L -d sql:\$HOME/.pki/nssdb" | grep -q "p2p-lab $n CA *C,,"' sh "$name" \
		p2p-lab -n "$name" exec client --
else
	skip "identity-lab: the client's NSS database: certutil is missing (make deps: libnss3-tools)"
fi
check "outside the lab, nothing trusts the lab CA" \
	sh -c '! env -u SSL_CERT_FILE openssl verify "$1" >/dev/null 2>&1' sh "$cert"
alice=$(lab token alice eng)
bob=$(lab token bob)
check "p2p-lab token prints a JWT (three parts)" \
	sh -c 'case $1 in *.*.*) ;; *) exit 1 ;; esac' sh "$alice"
client_addr=$(ipc client /run/p2p/mapd.sock '{"id":1,"op":"get"}' |
	jq -r 'select(.kind == "client" and .name == "client") | .value.addr')
check "the client's overlay address is in the map ($client_addr)" [ -n "$client_addr" ]
check "ny: p2p-authz and p2p-audit answer" \
	sh -c '"$@" /run/p2p/authz.sock "{\"id\":1,\"op\":\"status\"}" >/dev/null &&
		"$@" /run/p2p/audit.sock "{\"id\":1,\"op\":\"status\"}" >/dev/null' sh \
	p2p-lab -n "$name" exec ny -- p2p -t 5000 ipc

# One request as the proxy handles it: the decision, then its record.
request() { # RESOURCE METHOD PATH TOKEN|-
	_h='{}'
	[ "$4" = - ] || _h=$(jq -cn --arg t "Bearer $4" '{authorization: $t}')
	_q=$(jq -cn --arg r "$1" --arg m "$2" --arg p "$3" --arg s "$client_addr" --argjson h "$_h" \
		'{id: 1, op: "check", resource: $r, host: ($r + ".example.internal"), method: $m,
		  path: $p, source: $s, headers: $h}')
	ipc ny /run/p2p/authz.sock "$_q" >"$T/decision"
	_rec=$(jq -c --arg s "$client_addr" --arg id "req-$(date +%s%N)" '{id: 2, op: "log", record: ({
		type: "request", resource: .resource, method: "GET", path: .path, src: $s,
		decision: .decision, rule: .rule, reason: .reason, status: .status, request_id: $id,
		user: .identity.user, groups: .identity.groups, client: .identity.client,
		auth: (.identity.mechanism // "none")} | with_entries(select(.value != null)))}' "$T/decision")
	ipc ny /run/p2p/audit.sock "$_rec" >"$T/logged"
	jq -r '"\(.decision) \(.status) \(.rule)"' "$T/decision"
}
decides() { # EXPECTED RESOURCE METHOD PATH TOKEN
	_want=$1; shift
	_got=$(request "$@")
	case $_got in
	"$_want "*) jq -e '.ok and .seq > 0' "$T/logged" >/dev/null ;;
	*) echo "# got: $_got" >&2; return 1 ;;
	esac
}

check "alice's token, /alice: allow" decides "allow 200" apps GET /alice "$alice"
check "bob's token, /alice: 403" decides "deny 403" apps GET /alice "$bob"
check "no token, /alice: 401" decides "deny 401" apps GET /alice -
check "... with a WWW-Authenticate hint" \
	sh -c '"$@" | jq -e ".www_authenticate | startswith(\"Bearer\")" >/dev/null' sh \
	p2p-lab -n "$name" exec ny -- p2p -t 5000 ipc /run/p2p/authz.sock \
	'{"id":1,"op":"check","resource":"apps","method":"GET","path":"/alice","source":"100.96.0.9","headers":{}}'
check "alice's token, /public: allow" decides "allow 200" apps GET /public/x "$alice"
check "bob's token, /public: allow" decides "allow 200" apps GET /public/ "$bob"
check "no token, /health: allow" decides "allow 200" apps GET /health -
check "bob's token, /bob: allow" decides "allow 200" apps GET /bob "$bob"
check "a forged token (alice's, re-signed by nobody): 401" \
	decides "deny 401" apps GET /alice "${alice%.*}.$(printf 'forged' | base64 | tr -d '=')"

# A 100 KiB token (signed by the lab's IdP) cannot cross one IPC line
# (64 KiB): the proxy passes its first 60000 bytes (p2p-ipc(7)), and
# p2p-authz refuses a token over its limit unread.
/usr/bin/python3 - "$state/idp/idp.key" >"$T/big" <<'EOF'
import sys, time, jwt
from cryptography.hazmat.primitives import serialization
key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), password=None)
now = int(time.time())
print(jwt.encode({"iss": "https://idp.lab.internal", "aud": "p2p-lab", "sub": "alice",
                  "preferred_username": "alice", "iat": now, "nbf": now, "exp": now + 600,
                  "pad": "x" * 100 * 1024}, key, algorithm="RS256"))
EOF
check "a 100 KiB token, as a proxy passes it (cut at 60000 bytes): 401" \
	decides "deny 401" apps GET /alice "$(head -c 60000 "$T/big")"
check "... as too large" jq -e '.reason | test("large|long|limit")' "$T/decision"

# ---- the audit trail on ny, and at the collector ----

trail=$state/nodes/ny/lib/audit
check "ny's trail holds the 9 decisions" \
	[ "$(cat "$trail"/audit*.log | jq -s 'map(select(.type == "request")) | length')" -eq 9 ]
check "... alice's allow with her identity and the rule" \
	sh -c 'cat "$1"/audit*.log | jq -se "any(.[]; .user == \"alice\" and .path == \"/alice\" and
		.decision == \"allow\" and .rule == \"apps/routes/2\" and .auth == \"jwt\" and .groups == [\"eng\"])"
		>/dev/null' sh "$trail"
check "... bob's 403 with his identity and the rule that refused" \
	sh -c 'cat "$1"/audit*.log | jq -se "any(.[]; .user == \"bob\" and .path == \"/alice\" and
		.status == 403 and .rule == \"apps/routes/2\")" >/dev/null' sh "$trail"
check "... the 401 without a user" \
	sh -c 'cat "$1"/audit*.log | jq -se "any(.[]; .status == 401 and (has(\"user\") | not))" >/dev/null' \
	sh "$trail"
check "p2p-audit -V verifies ny's chain" p2p-audit -V "$trail"
collected=$state/nodes/control/lib/collector/ny
check "the collector on control has the 9 records (HTTPS with ny's certificate)" \
	wait_for 15 sh -c '[ "$(cat "$1"/audit*.log 2>/dev/null | jq -s "map(select(.type == \"request\")) | length")" -eq 9 ]' \
	sh "$collected"
check "... byte for byte ny's, once each" \
	sh -c 'cat "$1"/audit*.log >"$3" && cat "$2"/audit*.log | cmp -s - "$3"' sh "$trail" "$collected" "$T/trail"
check "p2p-audit -V verifies the collector's copy" p2p-audit -V "$collected"
if [ -d "$state/nodes/control/service/lab-syslog" ]; then
	syslogged=$state/nodes/control/log/syslog/ny.log
	check "rsyslog on control (RFC 5425, TLS) has the 9 records from ny" \
		wait_for 15 sh -c '[ "$(jq -s "map(select(.type == \"request\")) | length" "$1" 2>/dev/null)" -eq 9 ]' \
		sh "$syslogged"
	check "... the lines of ny's trail, byte for byte" sh -c 'cat "$1"/audit*.log | cmp -s - "$2"' sh "$trail" "$syslogged"
	check "p2p-audit -V verifies the chain in rsyslog's file" p2p-audit -V "$syslogged"
else
	skip "identity-lab: rsyslog on control: rsyslog or rsyslog-openssl is not installed (make deps)"
fi

finish
