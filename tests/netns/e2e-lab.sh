#!/bin/sh
# The whole path, in the lab, from the client node:
#
#   curl / Chromium ── p2p-dnsd (private name → overlay address)
#                   ── p2p-tunnel (WireGuard) ──> ny or ldn: p2p-tlsterm
#                        ── p2p-authz (who, which route) ── p2p-audit (the record)
#                        ── http://10.0.10.15:8080 (the app, on the site LAN)
#
# curl with no option at all gets the vault's page; headless Chromium
# (Debian's, the lab CA in its NSS database, no flag touching certificate
# checks) renders it, and refuses it without that database; the audit trail
# holds each of those requests with the client's identity.  Then the
# identity demo through the proxy with JWTs, what the connectors listen on
# (ss), and a TLS scan with testssl.sh.
# shellcheck disable=SC2016 # sh -c '...' sh ARGS
. "$(dirname "$0")/../lib.sh"

need_root "e2e-lab"
for t in ip ss nsenter unshare setsid s6-svscan jq curl openssl /usr/bin/python3; do
	if ! command -v "$t" >/dev/null 2>&1; then
		skip "e2e-lab: needs $t (make deps)"
		exit 0
	fi
done
if ! /usr/bin/python3 -c 'import jwt, cryptography' 2>/dev/null; then
	skip "e2e-lab: needs python3-jwt and python3-cryptography (make deps)"
	exit 0
fi
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

lab_up

# The audit records of both connectors (the client's tunnel picks one).
trail() { cat "$state"/nodes/ny/lib/audit/audit*.log "$state"/nodes/ldn/lib/audit/audit*.log 2>/dev/null; }
# The record of the request the app saw with X-Request-Id from page $1.
record_of() {
	_id=$(sed -n 's/^X-Request-Id: *\([0-9a-f]*\).*/\1/p' "$1" | head -n 1)
	[ -n "$_id" ] || return 1
	trail | jq -c --arg id "$_id" 'select(.request_id == $id)'
}
# Polls (a record follows its response) until CMD prints something, then
# holds its output to the jq condition COND.
eventually() { # COND CMD...
	_cond=$1; shift
	_i=0
	while [ "$_i" -lt 200 ]; do
		_out=$("$@")
		[ -n "$_out" ] && break
		sleep 0.05
		_i=$((_i + 1))
	done
	[ -n "$_out" ] && printf '%s\n' "$_out" | jq -e -s "$_cond" >/dev/null
}
# The record of page PAGE's request holds to COND.
recorded() { eventually ".[0] | $2" record_of "$1"; }

# ---- curl, exactly as a user types it ----

check "curl -sS https://vault.example.internal/ from the client returns the vault's page" \
	sh -c '"$@" >"$0" && grep -q "<h1>vault — lab app at 10.0.10.15:8080</h1>" "$0"' "$T/curl.html" \
	p2p-lab -n "$name" exec client -- curl -sS https://vault.example.internal/
check "... its audit record names the client's identity (alice, device client, WireGuard)" \
	recorded "$T/curl.html" '.type == "request" and .resource == "vault" and .method == "GET" and
		.path == "/" and .status == 200 and .decision == "allow" and .user == "alice" and
		.client == "client" and .auth == "wireguard" and .bytes_out > 0 and .duration_ms >= 0'
check "... and the app saw the identity p2p-authz gave, over X-Forwarded-Proto https" \
	sh -c 'grep -q "^X-P2P-User: alice" "$1" && grep -q "^X-Forwarded-Proto: https" "$1"' sh "$T/curl.html"
check "plain http:// is redirected to https:// (308)" \
	sh -c '[ "$("$@")" = "308 https://vault.example.internal/x?y=1" ]' sh \
	p2p-lab -n "$name" exec client -- curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' \
	'http://vault.example.internal/x?y=1'
check "outside the lab's trust (the system's CAs only), curl refuses the certificate" \
	sh -c '! "$@" >/dev/null 2>&1' sh p2p-lab -n "$name" exec client -- \
	env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt CURL_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
	curl -sS https://vault.example.internal/

# ---- a real browser ----

if command -v chromium >/dev/null 2>&1; then
	# --no-sandbox: Chromium's own sandbox cannot start as root; it changes
	# nothing in how certificates are checked (the negative case below).
	browse() { # HOME PROFILE ARGS...
		_home=$1 _prof=$2; shift 2
		on client env ${_home:+HOME="$_home"} timeout 60 chromium --headless --no-sandbox \
			--disable-gpu --user-data-dir="$_prof" "$@" 2>>"$T/chromium.log"
	}
	browse "" "$T/profile" --dump-dom https://vault.example.internal/ >"$T/chromium.html"
	check "headless Chromium, trusting the lab CA from its NSS database, renders the vault's page" \
		grep -q "<h1>vault — lab app at 10.0.10.15:8080</h1>" "$T/chromium.html"
	check "... the request was Chromium's (its User-Agent reached the app)" \
		grep -q "^user-agent: .*HeadlessChrome" "$T/chromium.html"
	check "... and its audit record names alice on the device client" \
		recorded "$T/chromium.html" '.resource == "vault" and .status == 200 and .user == "alice" and
			.client == "client" and .auth == "wireguard"'
	browse "" "$T/profile2" --window-size=1024,600 --screenshot="$T/vault.png" \
		https://vault.example.internal/ >/dev/null
	check "... a screenshot of the page (a 1024x600 PNG)" \
		/usr/bin/python3 -c 'import struct, sys
d = open(sys.argv[1], "rb").read()
assert d[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", d[16:24]) == (1024, 600), d[:24]
assert len(d) > 10000, len(d)' "$T/vault.png"
	mkdir -p "$T/bare-home"
	browse "$T/bare-home" "$T/profile3" --dump-dom https://vault.example.internal/ >"$T/bare.html"
	check "without the lab's NSS database, Chromium refuses the certificate (not the page)" \
		sh -c '! grep -q "lab app" "$1" && grep -q "ERR_CERT_AUTHORITY_INVALID" "$2"' sh \
		"$T/bare.html" "$T/chromium.log"
else
	skip "e2e-lab: the browser: chromium is not installed (make deps)"
fi

# ---- the identity demo through the proxy, with the lab IdP's tokens ----

alice=$(lab token alice eng)
bob=$(lab token bob)
get() { # TOKEN|- PATH [CURL ARGS...]: the status code of a GET on apps
	_tok=$1 _path=$2; shift 2
	if [ "$_tok" = - ]; then
		on client curl -sS -o /dev/null -w '%{http_code}' "$@" "https://apps.example.internal$_path"
	else
		on client curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $_tok" "$@" \
			"https://apps.example.internal$_path"
	fi
}
is() { _want=$1; shift; _got=$("$@"); [ "$_got" = "$_want" ] || { echo "# got $_got" >&2; return 1; }; }
check "alice's token, /alice: 200" is 200 get "$alice" /alice
check "bob's token, /alice: 403" is 403 get "$bob" /alice
check "no token, /alice: 401" is 401 get - /alice
check "no token, /health: 200" is 200 get - /health
check "alice's token, /alice over HTTP/1.1 too: 200" is 200 get "$alice" /alice --http1.1
check "bob's token, /bob: 200, served by the bob app with the prefix removed" \
	sh -c '"$@" | grep -q "<p>GET /x from"' sh p2p-lab -n "$name" exec client -- \
	curl -sS -H "Authorization: Bearer $bob" https://apps.example.internal/bob/x
on client curl -sS -H "Authorization: Bearer $bob" -H "X-P2P-User: mallory" -H "x-p2p-groups: admin" \
	https://apps.example.internal/public/ >"$T/forged.html"
check "a client-forged X-P2P-User never reaches the app: it sees bob, from p2p-authz" \
	sh -c 'grep -qi "^X-P2P-User: bob" "$1" && ! grep -qi "mallory\|admin" "$1" &&
		[ "$(grep -ci "^X-P2P-User:" "$1")" -eq 1 ]' sh "$T/forged.html"
on client curl -sS -H "X-P2P-User: mallory" -H "X-P2P-Client: laptop" https://vault.example.internal/ >"$T/forged2.html"
check "... nor with the device's identity (WireGuard): the app sees alice on client" \
	sh -c 'grep -q "^X-P2P-User: alice" "$1" && grep -q "^X-P2P-Client: client" "$1" &&
		! grep -qi "mallory\|laptop" "$1"' sh "$T/forged2.html"
# Each of these, in the trail, once its record is there.
apps_select() { trail | jq -c "select(.resource == \"apps\" and .path == \"/alice\") | select($1)"; }
apps_recorded() { eventually '.[0]' apps_select "$1"; }
check "the trail records alice's 200 on /alice with the rule that allowed" \
	apps_recorded '.user == "alice" and .status == 200 and .rule == "apps/routes/2" and .auth == "jwt"'
check "... bob's 403" apps_recorded '.user == "bob" and .status == 403 and .decision == "deny"'
check "... the 401 with no user" apps_recorded '.status == 401 and (has("user") | not)'
check "p2p-audit -V verifies both connectors' chains" \
	sh -c 'p2p-audit -V "$1" >/dev/null && p2p-audit -V "$2" >/dev/null' sh "$state/nodes/ny/lib/audit" "$state/nodes/ldn/lib/audit"

# ---- where the connectors listen ----

for node in ny ldn; do
	on "$node" ss -Hltnp >"$T/ss.$node"
	on "$node" ip -o addr show >"$T/addr.$node"
	check "$node: p2p-tlsterm listens (443 and 80)" \
		sh -c 'grep "p2p-tlsterm" "$1" | grep -q ":443 " && grep "p2p-tlsterm" "$1" | grep -q ":80 "' sh "$T/ss.$node"
	check "$node: p2p-tlsterm listens only on overlay addresses bound to p2p0, none of lan0's or wan0's" \
		/usr/bin/python3 - "$T/ss.$node" "$T/addr.$node" <<'EOF'
import ipaddress, sys
overlay = ipaddress.ip_network("100.96.0.0/12")
wire = {l.split()[3].split("/")[0] for l in open(sys.argv[2]) if l.split()[1] in ("lan0", "wan0")}
n = 0
for line in open(sys.argv[1]):
    if "p2p-tlsterm" not in line:
        continue
    local = line.split()[3]
    host, port = local.rsplit(":", 1)
    addr, _, dev = host.partition("%")
    assert dev == "p2p0", line
    assert ipaddress.ip_address(addr) in overlay and addr not in wire, line
    n += 1
assert n >= 2, n
EOF
done

# ---- a TLS scan ----

if command -v testssl >/dev/null 2>&1; then
	# Protocols, cipher categories, forward secrecy, every cipher testssl
	# knows (by its own sockets too) and the server's order, from the client.
	on client timeout 300 testssl --quiet --color 0 --warnings off -p -e -s -f -P \
		--jsonfile "$T/testssl.json" https://vault.example.internal/ >"$T/testssl.out" 2>&1
	tssl() { jq -e "$1" "$T/testssl.json" >/dev/null; }
	check "testssl.sh: a scan of vault.example.internal through the tunnel" \
		tssl 'any(.[]; .id == "cipher_order")'
	check "... offers TLS 1.3 and 1.2, nothing older" \
		tssl '[.[] | select(.id | test("^(SSLv[23]|TLS1(_[0-3])?)$")) | select(.finding | startswith("offered")) | .id]
			| sort == ["TLS1_2", "TLS1_3"]'
	check "... every cipher offered is an ECDHE AEAD suite (AES-GCM or ChaCha20-Poly1305)" \
		tssl '[.[] | select(.id | startswith("cipher_x")) | .finding] as $c | ($c | length) > 0 and
			all($c[]; test("^x[0-9a-f]+ +(TLS_|ECDHE-)[A-Z0-9_-]+ +ECDH [0-9]+ +(AESGCM|ChaCha20) "))'
	check "... and no finding rated LOW or worse" \
		tssl 'all(.[]; .severity | IN("OK", "INFO", "WARN") )'
else
	skip "e2e-lab: the TLS scan: testssl.sh is not installed (make deps)"
fi

finish
