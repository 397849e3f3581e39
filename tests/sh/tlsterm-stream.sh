#!/bin/sh
# p2p-tlsterm: bodies streamed both ways with back-pressure, 100-continue,
# WebSocket, timeouts, on loopback with the real daemons (tlsterm-env).
#
#   curl -T - (chunked, 1 GiB) ──TLS──> p2p-tlsterm ──> tlsterm-app.py /sha256   (hash of what it got)
#   curl /bytes/1 GiB          <──TLS── p2p-tlsterm <── tlsterm-app.py /bytes/N  (a known pattern)
#   tlsterm-client.py ws       <═TLS═>  p2p-tlsterm <═> tlsterm-app.py /ws       (echo)
#
# The hashes must match at both ends, and p2p-tlsterm's resident memory
# (sampled every 100 ms from /proc) must stay bounded all along: a body is
# never held whole, only the per-exchange buffers.
. "$(dirname "$0")/../lib.sh"

T=$(scratch)
. "$P2P_TOP/tests/sh/tlsterm-env"
trap tlsterm_cleanup EXIT
trap 'exit 1' HUP INT TERM
tlsterm_need tlsterm-stream
: "${STREAM_BYTES:=1073741824}"   # 1 GiB; less for a quick run
RSS_LIMIT_KB=65536

make_pki && make_map && make_policy
check "certificates, map, policy and tokens made" [ $? -eq 0 ]
check "the apps and the daemons start" start_all -o response_timeout=2 -o connect_timeout=1
U=https://apps.corp.test:$HTTPS_PORT
jqf() { jq -e "$@" >/dev/null; }
ALICE=$(cat "$T/tok/alice")

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$pid_tlsterm/status"; }
# sample the proxy's RSS into $T/rss.max until $T/stop-rss exists
sampler() {
	_max=0
	while [ ! -e "$T/stop-rss" ]; do
		_r=$(rss); [ "${_r:-0}" -gt "$_max" ] && _max=$_r
		echo "$_max" >"$T/rss.max"
		sleep 0.1
	done
}
check "p2p-tlsterm's resident memory at rest is under 32 MiB" [ "$(rss)" -lt 32768 ]
sampler & spid=$!
pids="$pids $spid"

# a deterministic stream of N bytes (AES-CTR of zeros), fast and repeatable
gen() { openssl enc -aes-128-ctr -K 000102030405060708090a0b0c0d0e0f -iv 0 -nosalt </dev/zero 2>/dev/null | head -c "$1"; }

# ---- upload: chunked, 1 GiB ----
mkfifo "$T/up.fifo"
sha256sum <"$T/up.fifo" | cut -d' ' -f1 >"$T/up.sum" &
start_s=$(date +%s.%N)
gen "$STREAM_BYTES" | tee "$T/up.fifo" |
	tcurl -T - -H "Authorization: Bearer $ALICE" "$U/public/sha256" >"$T/up.json"
end_s=$(date +%s.%N)
wait_for 10 test -s "$T/up.sum"
check "1 GiB uploaded chunked: the upstream got every byte" jqf ".length == $STREAM_BYTES" "$T/up.json"
check "... with the same SHA-256" [ "$(jq -r .sha256 "$T/up.json")" = "$(cat "$T/up.sum")" ]
echo "# upload: $STREAM_BYTES bytes in $(echo "$end_s - $start_s" | bc) s"

# ---- download: 1 GiB, chunked from the upstream ----
expected=$($PY -c '
import hashlib, sys
BLOCK = bytes((i * 7 + 3) % 251 for i in range(65536))
n, h = int(sys.argv[1]), hashlib.sha256()
while n > 0:
    k = min(n, len(BLOCK)); h.update(BLOCK[:k]); n -= k
print(h.hexdigest())' "$STREAM_BYTES")
start_s=$(date +%s.%N)
got=$(tcurl -H "Authorization: Bearer $ALICE" "$U/public/bytes/$STREAM_BYTES" | sha256sum | cut -d' ' -f1)
end_s=$(date +%s.%N)
check "1 GiB downloaded: the same SHA-256 as the upstream's pattern" [ "$got" = "$expected" ]
echo "# download: $STREAM_BYTES bytes in $(echo "$end_s - $start_s" | bc) s"

# ---- a slow client: back-pressure reaches the upstream ----
got=$(tcurl --limit-rate 20M -H "Authorization: Bearer $ALICE" "$U/public/bytes/67108864?cl=1" | wc -c)
check "64 MiB to a client reading at 20 MB/s: every byte (Content-Length from the upstream)" [ "$got" = 67108864 ]
gen 67108864 >"$T/64m"
check "64 MiB uploaded with Content-Length from a file" \
	sh -c 'curl -sS --cacert "$1" --resolve "apps.corp.test:$2:$3" -T "$4" "https://apps.corp.test:$2/public/sha256" -H "Authorization: Bearer $5" |
	       jq -e ".length == 67108864 and .sha256 == \"$(sha256sum <"$4" | cut -d" " -f1)\"" >/dev/null' sh "$T/pki/ca.crt" "$HTTPS_PORT" "$APPS" "$T/64m" "$ALICE"
touch "$T/stop-rss"
wait "$spid"
echo "# p2p-tlsterm's largest resident size during the transfers: $(cat "$T/rss.max") KiB"
case $P2P_BUILD in
*/sanitize) skip "the resident memory bound: ASan keeps freed memory in quarantine" ;;
*) check "p2p-tlsterm's resident memory stayed under 64 MiB through all of it" [ "$(cat "$T/rss.max")" -lt "$RSS_LIMIT_KB" ] ;;
esac

# ---- Expect: 100-continue ----
head -c 2000000 /dev/zero >"$T/2m"
tcurl --http1.1 -v -H "Expect: 100-continue" --expect100-timeout 20 -H "Authorization: Bearer $ALICE" --data-binary "@$T/2m" \
	"$U/public/sha256" >"$T/cont.json" 2>"$T/cont.err"
check "100-continue: the proxy says continue once allowed" grep -q "^< HTTP/1.1 100 Continue" "$T/cont.err"
check "... and the body arrives whole" jqf '.length == 2000000' "$T/cont.json"
start_s=$(date +%s)
tcurl --http1.1 -v -H "Expect: 100-continue" --expect100-timeout 20 --data-binary "@$T/2m" "$U/alice/sha256" >"$T/deny.out" 2>"$T/deny.err"
end_s=$(date +%s)
check "100-continue without a token: 401 at once, no 100, no body sent" \
	sh -c 'grep -q "^< HTTP/1.1 401" "$1" && ! grep -q "^< HTTP/1.1 100" "$1" && [ $(($3 - $2)) -lt 10 ]' sh "$T/deny.err" "$start_s" "$end_s"
check "... and that connection is closed (the body was not read)" grep -qi "^< Connection: close" "$T/deny.err"
[ "$_failures" -eq 0 ] || sed 's/^/# curl: /' "$T/deny.err" | grep -v '^# curl: [{}]' | head -30

# ---- an upstream that answers before reading the body ----
check "an early answer from the upstream (413) is passed on" \
	sh -c '[ "$(curl -s -o /dev/null -w "%{http_code}" --cacert "$1" --resolve "apps.corp.test:$2:$3" --data-binary "@$4" -H "Authorization: Bearer $5" "https://apps.corp.test:$2/public/early")" = 413 ]' \
	sh "$T/pki/ca.crt" "$HTTPS_PORT" "$APPS" "$T/64m" "$ALICE"

# ---- WebSocket ----
WS_PATH=/public/ws $PY "$P2P_TOP/tests/sh/tlsterm-client.py" ws apps.corp.test "$APPS" "$HTTPS_PORT" "$T/pki/ca.crt" \
	"Authorization: Bearer $ALICE" >"$T/ws.out" 2>&1
sed 's/^/# ws: /' "$T/ws.out"
check "WebSocket through the proxy: upgraded" grep -q "^upgraded" "$T/ws.out"
check "... messages of 5 B, 200 B, 70 kB and 1 MB echoed" [ "$(grep -c '^echo [0-9]* ok$' "$T/ws.out")" = 4 ]
check "... and closed cleanly" grep -q "^closed True" "$T/ws.out"
WS_PATH=/public/ws $PY "$P2P_TOP/tests/sh/tlsterm-client.py" ws apps.corp.test "$APPS" "$HTTPS_PORT" "$T/pki/ca.crt" >"$T/ws2.out" 2>&1
check "a WebSocket without a token: refused (no upgrade)" grep -q "no upgrade: b'HTTP/1.1 401" "$T/ws2.out"

# ---- timeouts ----
check "an upstream that does not answer in time (response_timeout=2): 504" \
	sh -c '[ "$(curl -s -o /dev/null -w "%{http_code}" --cacert "$1" --resolve "apps.corp.test:$2:$3" -H "Authorization: Bearer $4" "https://apps.corp.test:$2/public/slow/5")" = 504 ]' \
	sh "$T/pki/ca.crt" "$HTTPS_PORT" "$APPS" "$ALICE"
check "... and the next request is served" \
	sh -c '[ "$(curl -s -o /dev/null -w "%{http_code}" --cacert "$1" --resolve "apps.corp.test:$2:$3" "https://apps.corp.test:$2/health")" = 200 ]' \
	sh "$T/pki/ca.crt" "$HTTPS_PORT" "$APPS"

check "an upstream whose listen queue is full (SYNs dropped) is set up" hole
s0=$(date +%s)
check "an upstream that cannot be connected to in time (connect_timeout=1): 504" \
	sh -c '[ "$(curl -s -o /dev/null -w "%{http_code}" --cacert "$1" --resolve "apps.corp.test:$2:$3" "https://apps.corp.test:$2/hole/x")" = 504 ]' \
	sh "$T/pki/ca.crt" "$HTTPS_PORT" "$APPS"
check "... after about a second" [ $(($(date +%s) - s0)) -le 3 ]

# ---- the audit records carry the bytes ----
check "the upload's record has bytes_in = 1 GiB" \
	jqf -s "any(.[]; .path == \"/public/sha256\" and .bytes_in == $STREAM_BYTES and .status == 200)" "$T/audit/audit.log"
check "the download's record has bytes_out = 1 GiB" \
	jqf -s "any(.[]; .path == \"/public/bytes/$STREAM_BYTES\" and .bytes_out == $STREAM_BYTES)" "$T/audit/audit.log"
check "the WebSocket's record: 101" jqf -s 'any(.[]; .path == "/public/ws" and .status == 101)' "$T/audit/audit.log"
check "the 504 is recorded" jqf -s 'any(.[]; .path == "/public/slow/5" and .status == 504)' "$T/audit/audit.log"
# ---- idle connections hold no buffers ----
$PY "$P2P_TOP/tests/tls-idle-kib.py" "$pid_tlsterm" "$APPS" "$HTTPS_PORT" apps.corp.test 500 \
	"$T/pki/ca.crt" >"$T/idle-mem" 2>&1
echo "# 500 idle kept-alive TLS connections: $(cat "$T/idle-mem") KiB each"
case $P2P_BUILD in
*/sanitize) skip "the memory of an idle connection: ASan's allocator adds its own" ;;
*) check "an idle kept-alive TLS connection costs p2p-tlsterm under 40 KiB" \
	awk '{ exit !($1 ~ /^-?[0-9.]+$/ && $1 + 0 < 40) }' "$T/idle-mem" ;;
esac

# ---- SIGTERM: what is in flight finishes, idle connections close at once ----
$PY "$P2P_TOP/tests/sh/tlsterm-client.py" idle apps.corp.test "$APPS" "$HTTPS_PORT" "$T/pki/ca.crt" >"$T/idle" 2>&1 &
ipid=$!
tcurl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ALICE" "$U/public/slow/1" >"$T/slow.code" 2>&1 &
cpid=$!
sleep 0.5   # both under way (the slow one waits a second upstream)
s0=$(date +%s.%N)
kill -TERM "$pid_tlsterm"
wait "$pid_tlsterm"; rc=$?
s1=$(date +%s.%N)
wait "$cpid" "$ipid"
check "SIGTERM: the request in flight is answered" [ "$(cat "$T/slow.code")" = 200 ]
check "... the kept-alive idle connection is closed at once" grep -Eq "^status 200, closed after 0\.[0-9] s$" "$T/idle"
check "... and p2p-tlsterm exits 0 within 2 s" sh -c '[ "$1" -eq 0 ] && [ "$(echo "$3 - $2 < 2" | bc)" = 1 ]' sh "$rc" "$s0" "$s1"

check "no error or warning from p2p-tlsterm" sh -c '! grep -E "^p2p-tlsterm: (error|fatal|warning): " "$1"' sh "$LOG"

# ---- a second SIGTERM: the sessions cut are recorded all the same ----
check "p2p-tlsterm starts again" start_tlsterm -o body_timeout=2
# a client that pipelines requests answered here (421) and reads nothing:
# the answer that does not fit waits at most the body timeout
opened() { p2p -r "$R" ipc tlsterm '{"op":"status"}' | jq -e ".connections.open == $1" >/dev/null; }
$PY "$P2P_TOP/tests/sh/tlsterm-client.py" unread apps.corp.test "$APPS" "$HTTPS_PORT" "$T/pki/ca.crt" 20 \
	>"$T/unread" 2>>"$LOG" &
upid=$!
check "a client that reads none of its answers is connected" wait_for 5 opened 1
check "... and cut after the body timeout (2 s), while it still holds on" wait_for 10 opened 0
kill "$upid" 2>/dev/null; wait "$upid" 2>/dev/null
# a TCP session from alice-laptop that stays open (its client waits 30 s)
$PY -c 'import socket, sys, time
s = socket.socket()
s.bind((sys.argv[1], 0))
s.connect((sys.argv[2], int(sys.argv[3])))
s.sendall(b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
s.settimeout(30)
try:
    while s.recv(65536):
        pass
except OSError:
    pass' "$ALICE_SRC" "$GIT" "$TCP_PORT" &
hpid=$!
check "the held TCP session is open" wait_for 10 sh -c 'p2p -r "$1" ipc tlsterm "{\"op\":\"status\"}" |
	jq -e ".requests.tcp_sessions >= 1" >/dev/null' sh "$R"
kill -TERM "$pid_tlsterm"
sleep 0.3   # draining: the session would have 10 s
kill -TERM "$pid_tlsterm"
wait "$pid_tlsterm"; rc=$?
kill "$hpid" 2>/dev/null; wait "$hpid" 2>/dev/null
check "a second SIGTERM: p2p-tlsterm exits 0" [ "$rc" -eq 0 ]
check "... and the session it cut is in the audit log" \
	jqf -s 'any(.[]; .type == "session.end" and .resource == "git" and .client == "alice-laptop")' "$T/audit/audit.log"
check "... every record acknowledged (nothing said of records left)" sh -c '! grep -q "audit records not acknowledged" "$1"' sh "$LOG"
finish
