#!/bin/sh
# p2p-tlsterm: TLS and HTTP/1.1 proxying with real p2p-mapd, p2p-authz and
# p2p-audit on loopback (the overlay is 127.77.0.0/16; tlsterm-env).
#
#   curl, openssl s_client, tlsterm-client.py
#      ── TLS 127.77.1.1:HTTPS_PORT (apps) / 127.77.1.2 (vault) ──> p2p-tlsterm ──> tlsterm-app.py
#                                                                   │  ├ main   /      127.0.0.1:APP_MAIN
#                  p2p-mapd <── watch ─┤ authz.sock: p2p-authz      │  ├ public /public APP_PUBLIC
#                                      └ audit.sock: p2p-audit      │  ├ alice  /alice  APP_ALICE
#                                                                   │  └ bob    /bob    APP_BOB
#                                                   vault ── https ──> tls    APP_TLS (test CA)
#
# Certificates by SNI (exact, wildcard, ECDSA or RSA by what the client
# offers, the dialled address's without SNI, unrecognized_name otherwise),
# TLS versions and suites, a certificate replaced while an old connection
# goes on, the identity demo with JWTs, forged identity headers, every
# smuggling shape refused, slow headers cut with 408, upstream down 502,
# p2p-authz down 503, p2p-audit down 503 (and -F), the audit log's records.
. "$(dirname "$0")/../lib.sh"

T=$(scratch)
. "$P2P_TOP/tests/sh/tlsterm-env"
trap tlsterm_cleanup EXIT
trap 'exit 1' HUP INT TERM
tlsterm_need tlsterm-proxy

make_pki && make_map && make_policy
check "certificates, map, policy and tokens made" [ $? -eq 0 ]
check "p2p-tlsterm -n accepts the options" sh -c 'p2p-tlsterm -n -C "$1" | grep -qx "configuration OK"' sh "$T/certs"
p2p-tlsterm -n -C "$T/nope" 2>/dev/null; rc=$?
check "-n with a missing certificate directory exits 102" [ "$rc" -eq 102 ]
p2p-tlsterm -C "$T/certs" -z 2>/dev/null; rc=$?
check "a bad option exits 100" [ "$rc" -eq 100 ]
check "the apps and the daemons start" start_all -o header_timeout=2 -o idle_timeout=5
U=https://apps.corp.test:$HTTPS_PORT
ALICE=$(cat "$T/tok/alice") BOB=$(cat "$T/tok/bob")

# ---- listening ----
st() { status | jq -e "$1" >/dev/null; }
jqf() { jq -e "$@" >/dev/null; }
check "status lists the listeners, all on overlay addresses" \
	st '([.listeners[] | select(.listening)] | length) == 7 and all(.listeners[]; .addr | startswith("127.77.1."))'
check "ss: p2p-tlsterm listens on the overlay addresses only" \
	sh -c '! ss -Hltnp | grep "pid=$1," | grep -v " 127\.77\.1\.[1234]:"' sh "$pid_tlsterm"

# ---- TLS ----
cert_of() { # NAME(or -) ADDR: SHA-256 of the certificate served
	$PY "$P2P_TOP/tests/sh/tlsterm-client.py" cert "$1" "$2" "$HTTPS_PORT" "$T/pki/ca.crt" 2>/dev/null
}
fp() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
check "SNI apps.corp.test: its certificate, verified by the test CA" \
	[ "$(cert_of apps.corp.test $APPS)" = "$(fp "$T/pki/apps-ec.leaf")" ]
check "SNI deep.apps.corp.test: the wildcard certificate" \
	[ "$(cert_of x.apps.corp.test $APPS)" = "$(fp "$T/pki/apps-ec.leaf")" ]
s_client() { # ADDR OPTIONS...: openssl s_client's output
	_a=$1; shift
	echo | timeout 10 openssl s_client -connect "$_a:$HTTPS_PORT" -CAfile "$T/pki/ca.crt" "$@" 2>&1
}
has() { # PATTERN COMMAND...: COMMAND's output matches
	_p=$1; shift
	"$@" | grep -qi -- "$_p"
}
check "a client offering only RSA suites (TLS 1.2) gets the RSA certificate" \
	has "Server public key is 2048 bit" s_client $APPS -servername apps.corp.test -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256
check "a TLS 1.3 client gets the ECDSA certificate" \
	has "Server public key is 256 bit" s_client $APPS -servername apps.corp.test -tls1_3
check "a TLS 1.3 client that signs with RSA only gets the RSA certificate" \
	has "Server public key is 2048 bit" s_client $APPS -servername apps.corp.test -tls1_3 -sigalgs rsa_pss_rsae_sha256
check "no SNI on vault's address: vault's certificate" [ "$(cert_of - $VAULT)" = "$(fp "$T/pki/vault.leaf")" ]
check "no SNI on apps' address: apps' certificate" [ "$(cert_of - $APPS)" = "$(fp "$T/pki/apps-ec.leaf")" ]
check "an unknown name: the unrecognized_name alert" \
	has "unrecognized name" s_client $APPS -servername nope.corp.test
check "TLS 1.1 is refused" \
	has "no protocols available\|alert protocol version\|handshake failure" s_client $APPS -servername apps.corp.test -tls1_1
check "a CBC suite is refused (TLS 1.2)" \
	has "handshake failure" s_client $APPS -servername apps.corp.test -tls1_2 -cipher ECDHE-RSA-AES128-SHA
check "TLS 1.2 with an AEAD suite is taken" \
	has "Cipher is ECDHE-ECDSA-CHACHA20-POLY1305" s_client $APPS -servername apps.corp.test -tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305
check "ALPN http/1.1 is agreed" has "ALPN protocol: http/1.1" s_client $APPS -servername apps.corp.test -alpn http/1.1

# ---- a certificate replaced while an old connection goes on ----
old=$(fp "$T/pki/apps-ec.leaf")
$PY "$P2P_TOP/tests/sh/tlsterm-client.py" keep apps.corp.test "$APPS" "$HTTPS_PORT" "$T/pki/ca.crt" \
	"$T/go" >"$T/keep.out" 2>&1 &
kp=$!
pids="$pids $kp"
check "an old connection is served" wait_for 10 grep -q "first 200" "$T/keep.out"
DAYS=20 leaf apps-ec2 ec apps.corp.test '*.apps.corp.test'
cp "$T/pki/apps-ec2.key" "$T/certs/apps-ec.key.new" && cp "$T/pki/apps-ec2.crt" "$T/certs/apps-ec.crt.new"
mv "$T/certs/apps-ec.key.new" "$T/certs/apps-ec.key" && mv "$T/certs/apps-ec.crt.new" "$T/certs/apps-ec.crt"
new=$(fp "$T/pki/apps-ec2.leaf")
new_served() { [ "$(cert_of apps.corp.test $APPS)" = "$new" ]; }
check "the replaced certificate is served to new connections, without a restart" wait_for 10 new_served
touch "$T/go"
wait "$kp"
check "... while the old connection, with the old certificate, still works" \
	sh -c 'grep -q "cert $1" "$2" && grep -q "second 200" "$2"' sh "$old" "$T/keep.out"
status >"$T/status.json"
check "status shows the certificates with their expiry" \
	st '(.certificates | length) == 4 and .certificate_reloads >= 2 and
	    any(.certificates[]; .file == "apps-ec.crt" and (.days_left == 19 or .days_left == 20) and .type == "ecdsa")'
[ "$_failures" -eq 0 ] || jq -c .certificates "$T/status.json"
reload() { p2p -r "$R" ipc tlsterm '{"op":"reload"}'; }
check "the reload op reads the directory again" has '"loaded":4' reload
printf 'not a certificate\n' >"$T/certs/broken.crt"
p2p -r "$R" ipc tlsterm '{"op":"reload"}' >/dev/null
check "a bad file is named in the log" grep -q "broken.crt: no certificate" "$LOG"
check "... and the others stay" [ "$(cert_of apps.corp.test $APPS)" = "$new" ]
rm -f "$T/certs/broken.crt"

# ---- the identity demo through the proxy ----
code() { tcurl -o /dev/null -w '%{http_code}' "$@"; }
check "alice, /alice: 200" [ "$(code -H "Authorization: Bearer $ALICE" "$U/alice/notes")" = 200 ]
check "bob, /alice: 403" [ "$(code -H "Authorization: Bearer $BOB" "$U/alice/notes")" = 403 ]
check "no token, /alice: 401" [ "$(code "$U/alice/notes")" = 401 ]
check "no token, /health: 200" [ "$(code "$U/health")" = 200 ]
check "the 401 carries WWW-Authenticate" \
	sh -c 'curl -sS -D - -o /dev/null --cacert "$1" --resolve "apps.corp.test:$2:$3" "https://apps.corp.test:$2/alice" |
		grep -qi "^WWW-Authenticate: Bearer realm=\"apps\""' sh "$T/pki/ca.crt" $HTTPS_PORT $APPS
tcurl -H "Authorization: Bearer $ALICE" -H "X-P2P-User: mallory" -H "x-p2p-groups: admins" -H "X_P2P_User: mallory" \
	-H "X-Forwarded-For: 6.6.6.6" -H "Forwarded: for=6.6.6.6" -H "X-Forwarded-By: 6.6.6.6" \
	-H "X-Real-IP: 6.6.6.6" "$U/alice/notes?q=1" >"$T/alice.json"
check "alice's request reaches the alice app, the prefix stripped, the query kept" \
	jqf '.app == "alice" and .path == "/notes?q=1"' "$T/alice.json"
check "... nor X_P2P_User (read as X-P2P-User by CGI-style servers)" \
	jqf '[.headers[] | select(.[1] == "mallory")] == []' "$T/alice.json"
check "the upstream gets X-P2P-User alice (once), never the client's forged one" \
	jqf '[.headers[] | select(.[0] | ascii_downcase == "x-p2p-user")] == [["X-P2P-User", "alice"]]' "$T/alice.json"
check "... nor the forged groups, nor the token" \
	jqf '([.headers[] | select(.[0] | ascii_downcase == "x-p2p-groups")] == [["X-P2P-Groups", "eng"]])
	       and ([.headers[] | select(.[0] | ascii_downcase == "authorization")] == [])' "$T/alice.json"
check "X-Forwarded-For and Forwarded are the proxy's, not the client's" \
	jqf '([.headers[] | select(.[0] == "X-Forwarded-For")] == [["X-Forwarded-For", "127.0.0.1"]])
	       and ([.headers[] | select(.[0] == "Forwarded") | .[1]] | length == 1 and (.[0] | startswith("for=127.0.0.1;proto=https")))
	       and ([.headers[] | select(.[0] == "X-Forwarded-Proto")] == [["X-Forwarded-Proto", "https"]])' "$T/alice.json"
check "no other X-Forwarded-* field, nor X-Real-IP, from the client (any name length)" \
	jqf '[.headers[] | select(.[1] | contains("6.6.6.6"))] == []' "$T/alice.json"
check "the signed identity assertion is forwarded" \
	jqf '[.headers[] | select(.[0] == "X-P2P-Jwt-Assertion")] | length == 1' "$T/alice.json"
tcurl -H "Authorization: Bearer $BOB" "$U/bob/" >"$T/bob.json"
check "bob, /bob/: the bob app, path /" jqf '.app == "bob" and .path == "/"' "$T/bob.json"
tcurl -H "Authorization: Bearer $BOB" "$U/public/../alice/x" -o "$T/dots" -w '%{http_code}' >"$T/dots.code"
check "/public/../alice is judged as /alice (403 for bob)" [ "$(cat "$T/dots.code")" = 403 ]
tcurl --path-as-is "$U/open/%2e%2e/alice/x" -o /dev/null -w '%{http_code}' >"$T/enc.code"
check "/open/%2e%2e/alice without a token is /alice: 401" [ "$(cat "$T/enc.code")" = 401 ]
tcurl --path-as-is "$U/open/a/../b" >"$T/norm.json"
check "the upstream receives the normal form of the path" jqf '.app == "main" and .path == "/open/b"' "$T/norm.json"
tcurl --interface "$ALICE_SRC" "$U/ops/x" >"$T/ops.json"
check "from alice-laptop's overlay address: the WireGuard identity (group ops)" \
	jqf '[.headers[] | select(.[0] == "X-P2P-Client")] == [["X-P2P-Client", "alice-laptop"]]' "$T/ops.json"
check "from bob-laptop's: 403" [ "$(code --interface "$BOB_SRC" "$U/ops/x")" = 403 ]
check "another name of the resource (wildcard) is routed too" \
	sh -c 'curl -sS --cacert "$1" --resolve "x.apps.corp.test:$2:$3" "https://x.apps.corp.test:$2/health" | jq -e ".app == \"main\"" >/dev/null' sh "$T/pki/ca.crt" $HTTPS_PORT $APPS
check "a Host that is not the SNI's resource: 421" \
	[ "$(code -H 'Host: vault.corp.test' "$U/health")" = 421 ]
nosni() { # ADDR HOST STATUS: GET /health for HOST on ADDR without SNI is answered STATUS
	printf 'GET /health HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$2" |
		timeout 10 openssl s_client -connect "$1:$HTTPS_PORT" -noservername -quiet 2>/dev/null |
		head -n 1 | grep -q "^HTTP/1.1 $3 "
}
check "without SNI, a Host of the dialled address's resource: 200" nosni "$APPS" apps.corp.test 200
check "without SNI, a Host of another resource than the dialled address's: 421" nosni "$APPS" vault.corp.test 421
check "without SNI, a resource whose names are wildcards only gets its certificate: 200" \
	nosni "$WILD" x.wild.corp.test 200
check "an https upstream, its certificate verified: 200" \
	sh -c 'curl -sS --cacert "$1" --resolve "vault.corp.test:$2:$3" "https://vault.corp.test:$2/v1" | jq -e ".app == \"tls\" and .path == \"/v1\"" >/dev/null' sh "$T/pki/ca.crt" $HTTPS_PORT $VAULT
# the same upstream name and certificate served with TLS 1.2 and CBC only
# (openssl s_server): p2p-tlsterm does not go below what it offers clients
kill "$pid_app_tls"; wait "$pid_app_tls" 2>/dev/null
openssl s_server -quiet -accept "127.0.0.1:$APP_TLS" -cert "$T/pki/app-tls.crt" -key "$T/pki/app-tls.key" \
	-no_tls1_3 -cipher ECDHE-ECDSA-AES128-SHA -www >/dev/null 2>&1 </dev/null &
weak=$!
pids="$pids $weak"
wait_for 10 sh -c 'echo | openssl s_client -connect "127.0.0.1:$1" -no_tls1_3 -cipher ECDHE-ECDSA-AES128-SHA >/dev/null 2>&1' sh "$APP_TLS"
check "an https upstream with TLS 1.2 CBC suites only: 502" \
	sh -c '[ "$(curl -sS -o /dev/null -w "%{http_code}" --cacert "$1" --resolve "vault.corp.test:$2:$3" "https://vault.corp.test:$2/v1")" = 502 ]' \
	sh "$T/pki/ca.crt" $HTTPS_PORT $VAULT
kill "$weak"; wait "$weak" 2>/dev/null
check "the tls app starts again" app tls "$APP_TLS" --tls "$T/pki/app-tls.crt" "$T/pki/app-tls.key"

# ---- port 80: a redirect ----
check "HTTP on the overlay address: 308 to https" \
	sh -c 'curl -sS -D - -o /dev/null "http://127.77.1.1:$1/alice/x?y=1" -H "Host: apps.corp.test" |
		grep -qi "^Location: https://apps.corp.test:$2/alice/x?y=1"' sh $HTTP_PORT $HTTPS_PORT

# ---- keep-alive: several requests on one connection, one upstream connection ----
tcurl -o /dev/null -o /dev/null -o /dev/null "$U/health" "$U/health" "$U/health" -w '%{num_connects}\n' >"$T/ka"
check "keep-alive: three requests, one client connection" [ "$(sed -n 2,3p "$T/ka" | tr -d '\n')" = 00 ]
check "the upstream connection was reused from the pool" st '.upstream.reused >= 2'

code1() { tcurl --http1.1 -o /dev/null -w '%{http_code}' "$@"; }
check "an upstream connection kept alive: the first request on it" [ "$(code1 "$U/open/flaky")" = 200 ]
check "a kept-alive upstream connection closed without an answer: the request goes again on a new one" \
	[ "$(code1 "$U/open/flaky")" = 200 ]
check "... as the log says" wait_for 5 grep -q "the upstream closed a kept-alive connection: trying again" "$LOG"

# ---- smuggling and malformed requests ----
raw() { $PY "$P2P_TOP/tests/sh/tlsterm-client.py" raw apps.corp.test "$APPS" "$HTTPS_PORT" "$T/pki/ca.crt"; }
before=$(status | jq .upstream.connects)
smuggle() { # DESC STATUS REQUEST(printf format)
	_r=$(printf "$3" | raw | head -n 1 | tr -d '\r')
	case $_r in
	"HTTP/1.1 $2 "*) ok "$1: $2" ;;
	*) fail "$1: $2"; echo "# got: $_r" ;;
	esac
}
H='Host: apps.corp.test'
smuggle "Content-Length with Transfer-Encoding" 400 "POST /public HTTP/1.1\r\n$H\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /alice HTTP/1.1\r\n$H\r\n\r\n"
smuggle "two Content-Lengths" 400 "POST /public HTTP/1.1\r\n$H\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd"
smuggle "a Content-Length list" 400 "POST /public HTTP/1.1\r\n$H\r\nContent-Length: 4, 4\r\n\r\nabcd"
smuggle "Transfer-Encoding other than chunked" 501 "POST /public HTTP/1.1\r\n$H\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
smuggle "Transfer-Encoding twice" 400 "POST /public HTTP/1.1\r\n$H\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
smuggle "whitespace before the colon" 400 "POST /public HTTP/1.1\r\n$H\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"
smuggle "obs-fold" 400 "GET /health HTTP/1.1\r\n$H\r\nX-A: a\r\n b\r\n\r\n"
smuggle "a bare CR" 400 "GET /health HTTP/1.1\r\n$H\r\nX-A: a\rb\r\n\r\n"
smuggle "a bare LF" 400 "GET /health HTTP/1.1\n$H\r\n\r\n"
smuggle "an invalid field name" 400 "GET /health HTTP/1.1\r\n$H\r\nBad[Name]: x\r\n\r\n"
smuggle "two Hosts" 400 "GET /health HTTP/1.1\r\n$H\r\nHost: vault.corp.test\r\n\r\n"
smuggle "a malformed chunk size" 400 "POST /public HTTP/1.1\r\n$H\r\nTransfer-Encoding: chunked\r\n\r\n0x4\r\nabcd\r\n0\r\n\r\n"
smuggle "chunk data longer than its size" 400 "POST /public HTTP/1.1\r\n$H\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n0\r\n\r\n"
smuggle "HTTP/1.2" 505 "GET /health HTTP/1.2\r\n$H\r\n\r\n"
long=$(head -c 9000 /dev/zero | tr '\0' a)
smuggle "a request line too long" 414 "GET /$long HTTP/1.1\r\n$H\r\n\r\n"
big=$(head -c 17000 /dev/zero | tr '\0' a)
smuggle "a head too large" 431 "GET /health HTTP/1.1\r\n$H\r\nX-Big: $big\r\n\r\n"
check "no refused request reached an upstream" [ "$(status | jq .upstream.connects)" = "$before" ]
r=$(printf "GET /health HTTP/1.1\r\n$H\r\n\r\nGET /health HTTP/1.1\r\n$H\r\nConnection: close\r\n\r\n" | raw | grep -ao 'HTTP/1.1 200' | wc -l)
check "two pipelined requests: two answers in order" [ "$r" = 2 ]
# The second request comes 0.3 s after the first, whose upstream takes
# 1.5 s: p2p-tlsterm must not spin on the bytes it leaves unread in the
# socket meanwhile (its EPOLLIN is kept while nothing is left, taken off
# once something is).
ticks() { awk '{ print $14 + $15 }' "/proc/$pid_tlsterm/stat"; }
t0=$(ticks)
r=$(printf "GET /public/slow/1.5 HTTP/1.1\r\n$H\r\nAuthorization: Bearer $ALICE\r\n\r\n\fGET /health HTTP/1.1\r\n$H\r\nConnection: close\r\n\r\n" |
	$PY "$P2P_TOP/tests/sh/tlsterm-client.py" pieces apps.corp.test "$APPS" "$HTTPS_PORT" "$T/pki/ca.crt" 0.3 |
	tee "$T/slowpipe.out" | grep -ao "HTTP/1.1 200" | wc -l)
t1=$(ticks)
check "a pipelined request behind a slow one: both answered" [ "$r" = 2 ]
[ "$r" = 2 ] || head -c 800 "$T/slowpipe.out" | sed 's/^/# /'
check "... and p2p-tlsterm idle while it waited (CPU $((t1 - t0)) ticks, at most 30)" [ $((t1 - t0)) -le 30 ]

# ---- slow headers ----
$PY "$P2P_TOP/tests/sh/tlsterm-client.py" slow apps.corp.test "$APPS" "$HTTPS_PORT" "$T/pki/ca.crt" >"$T/slow" 2>&1
check "a head that stops coming: 408 after the header timeout (2 s), then closed" \
	sh -c 'grep -Eq "^after [23]\.[0-9] s: HTTP/1.1 408 Request Timeout" "$1"' sh "$T/slow"

# ---- a TCP resource ----
tcp() { # SOURCE: an HTTP request over plain TCP to git's address, from SOURCE
	$PY -c '
import socket, sys
s = socket.socket()
s.bind((sys.argv[1], 0))
s.settimeout(10)
s.connect((sys.argv[2], int(sys.argv[3])))
s.sendall(b"GET /over-tcp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except OSError:
    pass
print(out.decode("latin-1"))' "$1" "$GIT" "$TCP_PORT"
}
tcp "$ALICE_SRC" >"$T/tcp-alice"
check "TCP resource from alice-laptop: the bytes reach the upstream and come back" \
	grep -q '"path": "/over-tcp"' "$T/tcp-alice"
tcp "$BOB_SRC" >"$T/tcp-bob"
check "TCP resource from bob-laptop (not allowed): closed, nothing forwarded" [ -z "$(cat "$T/tcp-bob")" ]
check "a session record for each, alice's allowed with her identity and bytes" \
	wait_for 5 jqf -s 'any(.[]; .type == "session.end" and .resource == "git" and .client == "alice-laptop"
		and .user == "alice" and .decision == "allow" and .bytes_in > 0 and .bytes_out > 0
		and .upstream == "127.0.0.1:'"$APP_PUBLIC"'")
		and any(.[]; .type == "session.end" and .client == "bob-laptop" and .decision == "deny")' "$T/audit/audit.log"

$PY "$P2P_TOP/tests/sh/tlsterm-client.py" idle apps.corp.test "$APPS" "$HTTPS_PORT" "$T/pki/ca.crt" >"$T/idle" 2>&1
check "a kept-alive connection with no request is closed after the idle timeout (5 s)" \
	grep -Eq "^status 200, closed after [56]\.[0-9] s$" "$T/idle"

# ---- failures ----
kill -KILL "$pid_app_bob"
check "upstream down: 502" [ "$(code -H "Authorization: Bearer $BOB" "$U/bob/")" = 502 ]
kill -KILL "$pid_authz"
check "p2p-authz down: 503, never a silent allow" [ "$(code "$U/health")" = 503 ]
check "... and for a token too" [ "$(code -H "Authorization: Bearer $ALICE" "$U/alice/")" = 503 ]
check "p2p-authz back: served again" start authz p2p-authz -d 3 -r "$R" -m "$R/mapd.sock" -k "$T/assert.pem" -f "$T/policy.json"
check "... 200" wait_for 10 sh -c '[ "$(curl -s -o /dev/null -w "%{http_code}" --cacert "$1" --resolve "apps.corp.test:$2:$3" "https://apps.corp.test:$2/health")" = 200 ]' sh "$T/pki/ca.crt" $HTTPS_PORT $APPS
kill -TERM "$pid_audit"; wait "$pid_audit" 2>/dev/null
check "p2p-audit down: 503 (fail closed)" [ "$(code "$U/health")" = 503 ]
kill -TERM "$pid_tlsterm"; wait "$pid_tlsterm" 2>/dev/null; rc=$?
check "SIGTERM: p2p-tlsterm exits 0" [ "$rc" -eq 0 ]
check "with -F, p2p-audit down: served (the operator's choice)" start_tlsterm -F
check "... 200" [ "$(code "$U/health")" = 200 ]
check "... and the log says records are not kept" grep -q "serving without audit records (-F)" "$LOG"

# ---- the audit trail ----
check "the audit chain verifies" p2p-audit -V "$T/audit"
A=$T/audit/audit.log
check "alice's allowed request: user, auth, route, status, bytes, duration, upstream" \
	jqf -s 'any(.[]; .type == "request" and .resource == "apps" and .method == "GET" and .path == "/alice/notes"
		and .query == "q=1" and .user == "alice" and .groups == ["eng"] and .auth == "jwt" and .decision == "allow" and .status == 200
		and .rule == "apps/routes/2" and .bytes_out > 0 and .bytes_in == 0 and (.duration_ms | type == "number")
		and .upstream == ("http://127.0.0.1:'"$APP_ALICE"'") and (.src | startswith("127.0.0.1:")) and (.request_id | length) > 0)' "$A"
check "bob's denied request: 403, deny, his name" \
	jqf -s 'any(.[]; .path == "/alice/notes" and .user == "bob" and .decision == "deny" and .status == 403)' "$A"
check "the anonymous one: 401" jqf -s 'any(.[]; .path == "/alice/notes" and .status == 401 and (has("user") | not))' "$A"
check "alice-laptop's WireGuard identity" \
	jqf -s 'any(.[]; .path == "/ops/x" and .client == "alice-laptop" and .auth == "wireguard" and .status == 200)' "$A"
check "the 502 is recorded as such: a deny, with why it failed here, not the policy's reason" \
	jqf -s 'any(.[]; .path == "/bob/" and .status == 502 and .user == "bob" and .decision == "deny"
		and .rule == "apps/routes/3" and (.reason | test("connect|refused")))' "$A"
check "no warning or error from p2p-tlsterm but the expected ones" \
	sh -c '! grep -E "^p2p-tlsterm: (error|fatal|warning): " "$1" | grep -v -e broken.crt -e "audit.sock" -e "authz.sock" -e "without audit records" -e "p2p-audit cannot be reached"' sh "$LOG"
finish
