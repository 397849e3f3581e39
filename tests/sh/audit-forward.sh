#!/bin/sh
# Forwarding from a p2p-audit writer to a p2p-audit collector over HTTPS
# with client certificates (made here with openssl), on loopback: the
# collector's copy is the writer's chain byte for byte; with the collector
# down for a while, records wait and then all arrive, once each; a writer
# killed before it recorded its offset sends again and the collector drops
# the repeats; a collector killed during a transfer recovers; rotation with
# -k never removes a file not yet forwarded; a certificate for another
# host, no certificate, another CA, and bad HTTP requests are refused.
#
#   test ── socat ──> T/wrun/audit.sock ── p2p-audit -H ny -s 64k -k 2 ──> T/trail/
#                                              │ POST /v1/records (TLS, cert CN=ny)
#                                              v
#                     127.0.0.1:PORT ── p2p-audit -L ──> T/collected/ny/
# shellcheck disable=SC2016 # sh -c '...' sh ARGS
. "$(dirname "$0")/../lib.sh"

T=$(scratch)
cpid="" wpid="" w2pid=""
cleanup() {
	for p in $cpid $wpid $w2pid; do kill -KILL "$p" 2>/dev/null; done
	if [ "$_failures" -gt 0 ]; then
		for f in clog wlog; do [ -s "$T/$f" ] && sed "s/^/# $f: /" "$T/$f"; done
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

for t in socat jq openssl curl ss; do
	if ! command -v "$t" >/dev/null 2>&1; then
		skip "audit-forward: needs $t (make deps)"
		exit 0
	fi
done

# ---- certificates: a test CA, the collector's, the hosts' ----
cd "$T" || exit 1
mkcert() { # NAME SAN [CA]
	_ca=${3:-ca}
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
		-out "$1.csr" -subj "/CN=$1" 2>/dev/null &&
		printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$2" >"$1.ext" &&
		openssl x509 -req -in "$1.csr" -CA "$_ca.crt" -CAkey "$_ca.key" -CAcreateserial \
			-out "$1.crt" -days 2 -extfile "$1.ext" 2>/dev/null
}
for ca in ca rogue-ca; do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ca.key" \
		-out "$ca.crt" -days 2 -subj "/CN=p2p test $ca" 2>/dev/null || { fail "making $ca"; exit 1; }
done
mkcert collector "DNS:localhost,IP:127.0.0.1" && mkcert ny "DNS:ny" && mkcert ldn "DNS:ldn" &&
	mkcert rogue-ny "DNS:ny" rogue-ca || { fail "making the certificates"; exit 1; }
chmod 600 ./*.key
cd - >/dev/null || exit 1

port=$((20000 + $$ % 20000))
while ss -ltnH "sport = :$port" | grep -q .; do port=$((port + 1)); done
URL=https://127.0.0.1:$port/v1/records

ready_fifo() { rm -f "$T/$1" && mkfifo "$T/$1"; }
wait_ready() { timeout 20 sh -c 'read -r _ <"$1"' sh "$T/$1"; }

start_collector() {
	ready_fifo cready || return 1
	p2p-audit -L -d 3 -r "$T/crun" -D "$T/collected" -s 64k -l "127.0.0.1:$port" -A "$T/ca.crt" \
		-C "$T/collector.crt" -K "$T/collector.key" 3>"$T/cready" 2>>"$T/clog" &
	cpid=$!
	wait_ready cready
}
start_writer() {
	ready_fifo wready || return 1
	p2p-audit -d 3 -r "$T/wrun" -D "$T/trail" -H ny -s 64k -k 2 -c "$URL" -A "$T/ca.crt" \
		-C "$T/ny.crt" -K "$T/ny.key" 3>"$T/wready" 2>>"$T/wlog" &
	wpid=$!
	wait_ready wready
}
stop() { # PID: SIGTERM, exit 0
	kill -TERM "$1" && wait "$1"
}

cstatus() { printf '%s\n' '{"id":1,"op":"status"}' | socat -t 5 - "UNIX-CONNECT:$T/crun/audit-collector.sock"; }
wstatus() { printf '%s\n' '{"id":1,"op":"status"}' | socat -t 5 - "UNIX-CONNECT:$T/$1/audit.sock"; }
collected() { cstatus | jq -r '.hosts.ny // 0'; }
collected_is() { [ "$(collected)" = "$1" ]; }

# Records FROM..TO on SOCKET (run dir), all acknowledged; the last ack's seq.
send() {
	awk -v a="$1" -v b="$2" 'BEGIN { for (i = a; i <= b; i++)
		printf "{\"id\":%d,\"op\":\"log\",\"record\":{\"type\":\"request\",\"resource\":\"vault\",\"method\":\"GET\",\"path\":\"/item/%d\",\"decision\":\"allow\",\"status\":200,\"request_id\":\"f-%d\"}}\n", i, i, i }' |
		socat -t 30 - "UNIX-CONNECT:$T/${3:-wrun}/audit.sock" >"$T/acks"
	[ "$(grep -c '"ok":true' "$T/acks")" -eq $(($2 - $1 + 1)) ]
}

# The collector's copy: N records, each seq once, and it verifies from seq 1.
copy_exact() {
	p2p-audit -V "$T/collected/ny" >"$T/v.out" 2>&1 &&
		grep -q "^$1 records, seq 1 to $1, host ny" "$T/v.out" &&
		[ "$(cat "$T"/collected/ny/audit*.log | wc -l)" -eq "$1" ]
}
# The writer's files still there are the same bytes in the copy.
copy_matches() {
	for f in "$T"/trail/audit*.log; do
		while IFS= read -r line; do
			printf '%s\n' "$line"
		done <"$f"
	done >"$T/writer.lines"
	cat "$T"/collected/ny/audit*.log >"$T/copy.lines"
	grep -qxFf "$T/writer.lines" "$T/copy.lines" &&
		[ "$(grep -cxFf "$T/writer.lines" "$T/copy.lines")" -eq "$(wc -l <"$T/writer.lines")" ]
}

check "-L -n: the collector's certificate and key are good" \
	sh -c 'p2p-audit -L -n -D "$1/collected" -l 127.0.0.1:1 -A "$1/ca.crt" -C "$1/collector.crt" -K "$1/collector.key" | grep -qx "configuration OK"' sh "$T"
check "-L -n: a key that is not the certificate's: 102" \
	sh -c 'p2p-audit -L -n -D "$1/collected" -l 127.0.0.1:1 -A "$1/ca.crt" -C "$1/collector.crt" -K "$1/ny.key" 2>/dev/null; [ $? -eq 102 ]' sh "$T"
check "-n: the writer's forwarding certificate and key are good" \
	sh -c 'p2p-audit -n -D "$1/trail" -H ny -c "$2" -A "$1/ca.crt" -C "$1/ny.crt" -K "$1/ny.key" | grep -qx "configuration OK"' sh "$T" "$URL"
check "the collector starts" start_collector
check "the writer starts, forwarding to $URL" start_writer

check "2000 records taken" send 1 2000
check "the collector gets all 2000" wait_for 20 collected_is 2000
check "the copy is exact: 2000 records, each once, verifying from seq 1" copy_exact 2000
check "the copy is the writer's lines byte for byte" copy_matches
check "the collector's copy was rotated too" sh -c 'ls "$1"/collected/ny/audit-*.log >/dev/null' sh "$T"

# ---- an outage ----
check "the collector stops (SIGTERM, exit 0)" stop "$cpid"
cpid=
check "3000 more records taken while the collector is down" send 2001 5000
failing() { wstatus wrun | jq -e '.forward.collector.failures > 0 and .forward.collector.behind > 0' >/dev/null; }
check "the writer says forwarding fails and how far behind it is" wait_for 10 failing
wstatus wrun | jq -c .forward.collector
oldest=$(ls "$T"/trail/audit-*.log | head -n 1)
oldest=${oldest##*/audit-}
oldest=$(echo "${oldest%.log}" | sed 's/^0*//')
acked=$(wstatus wrun | jq .forward.collector.acked)
check "-k 2 kept every file not yet forwarded (oldest from seq $oldest, forwarded to $acked)" \
	[ "$oldest" -le $((acked + 1)) ]
sleep 2 # the outage goes on: the writer keeps trying
check "the collector is back" start_collector
check "all 5000 arrive" wait_for 40 collected_is 5000
check "nothing lost, nothing twice: 5000 records, each once, verifying" copy_exact 5000
check "the copy holds the writer's lines byte for byte" copy_matches
check "the writer's last hash is the copy's" \
	[ "$(wstatus wrun | jq -r .hash)" = "$(cat "$T"/collected/ny/audit*.log | tail -n 1 | jq -r .hash)" ]
caught() { wstatus wrun | jq -e '.forward.collector.behind == 0 and .forward.collector.last_error == null' >/dev/null; }
check "the writer has caught up and says so" wait_for 10 caught
check "the writer logged the failure once and the recovery" \
	sh -c '[ "$(grep -c "collector: unable to forward" "$1")" -le 3 ] && grep -q "collector: forwarding again" "$1"' sh "$T/wlog"

# ---- a writer killed before it recorded how far it got ----
check "500 records" send 5001 5500
kill -KILL "$wpid" && wait "$wpid" 2>/dev/null
wpid=
check "the writer, killed, starts again" start_writer
check "all 5500 arrive" wait_for 20 collected_is 5500
check "resent records were dropped as duplicates, the copy exact" copy_exact 5500
cstatus | jq -c '{stored, duplicates}'

# ---- a collector killed during a transfer ----
send 5501 9000 &
sender=$!
sleep 0.3
kill -KILL "$cpid" && wait "$cpid" 2>/dev/null
cpid=
wait "$sender"
check "3500 records taken while the collector was killed" [ $? -eq 0 ]
check "the collector, killed, starts again" start_collector
check "all 9000 arrive" wait_for 40 collected_is 9000
check "the copy is exact after the collector's crash" copy_exact 9000

# ---- refusals ----
ready_fifo w2ready
p2p-audit -d 3 -r "$T/w2run" -D "$T/trail2" -H ny -c "$URL" -A "$T/ca.crt" -C "$T/ldn.crt" \
	-K "$T/ldn.key" 3>"$T/w2ready" 2>>"$T/w2log" &
w2pid=$!
wait_ready w2ready
check "a second writer for ny with ldn's certificate takes records" send 1 10 w2run
refused() { wstatus w2run | jq -e '.forward.collector.last_error | test("HTTP 403: line 1: the client.s certificate is not for host ny")' >/dev/null; }
check "... which the collector refuses (403): not ldn's to send" wait_for 10 refused
check "... and ny's copy is untouched" copy_exact 9000
stop "$w2pid"
w2pid=

curl -s -o /dev/null --cacert "$T/ca.crt" -X POST --data-binary @/dev/null "$URL" 2>/dev/null
check "no client certificate: TLS refused" [ $? -ne 0 ]
curl -s -o /dev/null --cacert "$T/ca.crt" --cert "$T/rogue-ny.crt" --key "$T/rogue-ny.key" \
	-X POST --data-binary @/dev/null "$URL" 2>/dev/null
check "a certificate from another CA: TLS refused" [ $? -ne 0 ]
tls_failed() { [ "$(cstatus | jq .tls_failures)" -ge 2 ]; }
check "the collector counts the failed handshakes" tls_failed

c() { curl -s --cacert "$T/ca.crt" --cert "$T/ny.crt" --key "$T/ny.key" -w ' %{http_code}' "$@" | tr -d '\n'; }
check "GET: 405" sh -c 'echo "$1" | grep -q "only POST.* 405$"' sh "$(c "$URL")"
check "another path: 404" sh -c 'echo "$1" | grep -q " 404$"' sh "$(c -X POST --data-binary x "https://127.0.0.1:$port/v1/other")"
check "a body that is not records: 400, naming line 1" \
	sh -c 'echo "$1" | grep -q "\"error\":\"line 1: does not end with the hash member.* 400$"' sh \
	"$(printf 'hello\n' | c -X POST --data-binary @- "$URL")"
check "chunked: 501" sh -c 'echo "$1" | grep -q " 501$"' sh \
	"$(printf 'x\n' | c -X POST -H 'Transfer-Encoding: chunked' --data-binary @- "$URL")"
cat "$T"/trail/audit*.log | tail -n 2 >"$T/two"
check "records sent again by hand: 200, both duplicates" \
	sh -c 'echo "$1" | jq -e ".ok and .stored == 0 and .duplicates == 2 and .next == 9001" >/dev/null' sh \
	"$(c -X POST --data-binary @"$T/two" "$URL" | sed 's/ 200$//')"
stop "$cpid"
check "-L -n reads every host's chain: good" \
	sh -c 'p2p-audit -L -n -D "$1/collected" | grep -qx "configuration OK"' sh "$T"
cp -R "$T/collected" "$T/collected-bad"
# The last record is in audit.log, or in the newest rotated file when
# audit.log was started empty by a rotation.
last=$(for f in "$T"/collected-bad/ny/audit*.log; do [ -s "$f" ] && echo "$f"; done | tail -n 1)
sed -i '$s/"status":200/"status":500/' "$last"
check "-L -n: a host's changed last record: 102, naming it" \
	sh -c 'p2p-audit -L -n -D "$1/collected-bad" 2>&1 >/dev/null | grep -q "collected-bad/ny/$2:[0-9]*: the last record does not verify"' sh "$T" "${last##*/}"
check "the collector starts again" start_collector
check "a restarted collector opens its hosts at start: ny at 9000 before any request" \
	collected_is 9000
check "the collector logs refusals without record contents" sh -c '! grep -q "/item/" "$1"' sh "$T/clog"

check "SIGTERM: the writer exits 0" stop "$wpid"
wpid=
check "SIGTERM: the collector exits 0" stop "$cpid"
cpid=
check "the writer recorded its offset: 9000" \
	sh -c '[ "$(jq .seq "$1/trail/forward-collector.json")" = 9000 ]' sh "$T"
finish
