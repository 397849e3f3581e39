#!/bin/sh
# p2p-tlsterm: HTTP/2 to clients (ALPN h2, nghttp2) with real p2p-mapd,
# p2p-authz and p2p-audit on loopback (tlsterm-env), next to HTTP/1.1.
#
#   curl --http2, h2load ──TLS (h2)──> p2p-tlsterm ──HTTP/1.1──> tlsterm-app.py
#
# The identity demo over HTTP/2, bodies both ways streamed and hashed (the
# request body without a length), many concurrent streams on few
# connections (h2load), and HTTP/1.1 still served to a client without h2.
. "$(dirname "$0")/../lib.sh"

T=$(scratch)
. "$P2P_TOP/tests/sh/tlsterm-env"
trap tlsterm_cleanup EXIT
trap 'exit 1' HUP INT TERM
tlsterm_need tlsterm-h2
if ! command -v h2load >/dev/null 2>&1; then
	skip "tlsterm-h2: needs h2load (Debian's nghttp2-client)"
	exit 0
fi

make_pki && make_map && make_policy
check "certificates, map, policy and tokens made" [ $? -eq 0 ]
# idle upstream connections leave the pool after 2 s (the stalled-stream
# check below starts from an empty pool)
check "the apps and the daemons start" start_all -o pool_idle=2
U=https://apps.corp.test:$HTTPS_PORT
ALICE=$(cat "$T/tok/alice") BOB=$(cat "$T/tok/bob")
jqf() { jq -e "$@" >/dev/null; }
h2() { tcurl --http2 "$@"; }
code2() { h2 -o /dev/null -w '%{http_version} %{http_code}' "$@"; }

check "ALPN h2 is agreed" sh -c 'echo | timeout 10 openssl s_client -connect "$1:$2" -servername apps.corp.test -alpn h2,http/1.1 2>&1 | grep -q "ALPN protocol: h2"' sh "$APPS" "$HTTPS_PORT"
check "HTTP/2: alice, /alice: 200" [ "$(code2 -H "Authorization: Bearer $ALICE" "$U/alice/x")" = "2 200" ]
check "HTTP/2: bob, /alice: 403" [ "$(code2 -H "Authorization: Bearer $BOB" "$U/alice/x")" = "2 403" ]
check "HTTP/2: no token, /alice: 401" [ "$(code2 "$U/alice/x")" = "2 401" ]
check "HTTP/2: /health without a token: 200" [ "$(code2 "$U/health")" = "2 200" ]
check "HTTP/1.1 is still served to a client that asks for it" [ "$(tcurl --http1.1 -o /dev/null -w '%{http_version} %{http_code}' "$U/health")" = "1.1 200" ]
h2 -H "Authorization: Bearer $ALICE" -H "x-p2p-user: mallory" "$U/alice/x?q=2" >"$T/alice.json"
check "HTTP/2: the upstream gets alice's identity, not the forged one, the prefix stripped" \
	jqf '.app == "alice" and .path == "/x?q=2" and
	     ([.headers[] | select(.[0] | ascii_downcase == "x-p2p-user") | .[1]] == ["alice"])' "$T/alice.json"
h2 -D "$T/deny.h" -o /dev/null "$U/alice/x"
check "HTTP/2: the 401 carries www-authenticate" grep -qi '^www-authenticate: Bearer realm="apps"' "$T/deny.h"

gen() { openssl enc -aes-128-ctr -K 000102030405060708090a0b0c0d0e0f -iv 0 -nosalt </dev/zero 2>/dev/null | head -c "$1"; }
gen 104857600 >"$T/100m"
want=$(sha256sum <"$T/100m" | cut -d' ' -f1)
h2 -T - -H "Authorization: Bearer $ALICE" "$U/public/sha256" <"$T/100m" >"$T/up.json"
check "HTTP/2: 100 MB uploaded without a length, hashed the same upstream" \
	jqf ".length == 104857600 and .sha256 == \"$want\"" "$T/up.json"
h2 -T "$T/100m" -H "Authorization: Bearer $ALICE" "$U/public/sha256" >"$T/up2.json"
check "HTTP/2: 100 MB uploaded with a length" jqf ".length == 104857600 and .sha256 == \"$want\"" "$T/up2.json"
expected=$($PY -c '
import hashlib
BLOCK = bytes((i * 7 + 3) % 251 for i in range(65536))
h = hashlib.sha256()
for _ in range(1600): h.update(BLOCK)
print(h.hexdigest())')
check "HTTP/2: 100 MiB downloaded, the same SHA-256" \
	[ "$(h2 -H "Authorization: Bearer $ALICE" "$U/public/bytes/104857600" | sha256sum | cut -d' ' -f1)" = "$expected" ]

head -c 2000000 /dev/zero >"$T/2m"
h2 -v -H "Expect: 100-continue" --expect100-timeout 20 -H "Authorization: Bearer $ALICE" --data-binary "@$T/2m" \
	"$U/public/sha256" >"$T/cont.json" 2>"$T/cont.err"
check "HTTP/2 100-continue: a 100 once allowed, then the body" \
	sh -c 'grep -q "^< HTTP/2 100" "$1" && jq -e ".length == 2000000" "$2" >/dev/null' sh "$T/cont.err" "$T/cont.json"
s0=$(date +%s)
h2 -v -H "Expect: 100-continue" --expect100-timeout 20 --data-binary "@$T/2m" "$U/alice/sha256" >/dev/null 2>"$T/deny.err"
check "HTTP/2 100-continue without a token: 401 at once, no 100" \
	sh -c 'grep -q "^< HTTP/2 401" "$1" && ! grep -q "^< HTTP/2 100" "$1" && [ $(($(date +%s) - $2)) -lt 10 ]' sh "$T/deny.err" "$s0"

h2load -n 2000 -c 4 -m 20 -H 'Host: apps.corp.test' "https://$APPS:$HTTPS_PORT/health" >"$T/h2load" 2>&1
sed -n 's/^\(finished in\|requests:\|status codes:\)/# h2load: \1/p' "$T/h2load"
check "h2load: 2000 requests on 4 connections, 20 streams each: all 2xx" \
	grep -q "^status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx" "$T/h2load"
check "status counts the HTTP/2 requests" sh -c 'p2p -r "$1" ipc tlsterm "{\"op\":\"status\"}" | jq -e ".requests.h2 >= 2008" >/dev/null' sh "$R"
check "the audit log has the HTTP/2 requests, one record each" \
	sh -c '[ "$(jq -s "[.[] | select(.path == \"/health\")] | length" "$1")" -ge 2002 ]' sh "$T/audit/audit.log"
# An upstream connection goes back to the pool once an HTTP/2 stream's
# response is all read from it, not when the stream ends: a client that
# keeps its flow-control window at 0 holds its stream open, not the
# upstream connection.
idle_upstreams() { p2p -r "$R" ipc tlsterm '{"op":"status"}' | jq -e ".upstream.idle == $1"; }
check "the upstream pool empties once idle" wait_for 10 idle_upstreams 0
mkfifo "$T/stall.in"
$PY "$P2P_TOP/tests/sh/h2-stall.py" "$APPS" "$HTTPS_PORT" apps.corp.test /health <"$T/stall.in" \
	>"$T/stall.out" 2>>"$LOG" &
stall=$!
exec 7>"$T/stall.in"
check "a stream whose window stays at 0 gets its response's head" wait_for 10 grep -q "^status 200" "$T/stall.out"
check "its upstream connection is back in the pool while the stream waits" idle_upstreams 1
exec 7>&-
wait "$stall"
# Body bytes of a stream answered without them (401 here, decided while
# they arrived) go back to the connection's window: 24 such uploads of
# 60000 bytes on one connection, more than its 1 MiB window holds.
$PY "$P2P_TOP/tests/sh/h2-window.py" "$APPS" "$HTTPS_PORT" apps.corp.test /alice/window 24 >"$T/window.out" 2>>"$LOG"
check "HTTP/2: 24 bodies of requests denied (401) do not shut the connection's window" \
	grep -qx "ok 24" "$T/window.out"
check "no error or warning from p2p-tlsterm" sh -c '! grep -E "^p2p-tlsterm: (error|fatal|warning): " "$1"' sh "$LOG"
finish
