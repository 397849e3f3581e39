#!/bin/sh
# Forwarding from p2p-audit to a real rsyslog over TLS (RFC 5425, rsyslog's
# ossl driver, client certificates required), on the loopback of a private
# network namespace: the messages rsyslog stores are the writer's lines,
# so -V verifies rsyslog's file; with rsyslog stopped for a while, nothing
# is lost and nothing repeated once it is back; stopped in the middle of a
# stream, nothing is lost (repeats allowed: RFC 5425 has no
# acknowledgement, see p2p-audit(8); the test says how many); a server
# certificate from another CA or for another name is refused.
#
#   network namespace (unshare -n), lo only
#
#   socat ──> T/wrun/audit.sock ── p2p-audit -H ny -y 127.0.0.1:6514 ──TLS──> rsyslogd (imtcp, ossl)
#                                                                              │ %msg%    │ %rawmsg%
#                                                                              v          v
#                                                                     T/received.log  T/raw.log
#   p2p-audit -y 127.0.0.1:6515 ──TLS──> openssl s_server (a certificate from another CA)
# shellcheck disable=SC2016,SC2317 # sh -c '...' sh ARGS; functions run by check and trap
. "$(dirname "$0")/../lib.sh"

need_root "audit-rsyslog"
for t in rsyslogd openssl socat jq ss unshare ip; do
	if ! command -v "$t" >/dev/null 2>&1; then
		skip "audit-rsyslog: needs $t (make deps: rsyslog rsyslog-openssl)"
		exit 0
	fi
done
if [ ! -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so ] &&
	! ls /usr/lib/*/rsyslog/lmnsd_ossl.so >/dev/null 2>&1; then
	skip "audit-rsyslog: needs rsyslog's TLS driver (make deps: rsyslog-openssl)"
	exit 0
fi

if [ "${P2P_AUDIT_RSYSLOG_INNER:-}" != 1 ]; then
	P2P_AUDIT_RSYSLOG_INNER=1 exec unshare --net -- sh "$0"
fi
ip link set lo up || { fail "bringing up lo in the namespace"; exit 1; }

T=$(scratch)
chmod 755 "$T"
wpid="" rspid="" spid="" w2pid=""
alive() {
	_st=$(sed -n 's/^[0-9]* (.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
	[ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}
gone() { ! alive "$1"; }
cleanup() {
	for p in $wpid $w2pid $spid; do kill -KILL "$p" 2>/dev/null; done
	rs_pid=$(cat "$T/rsyslog.pid" 2>/dev/null)
	case $rs_pid in '' | *[!0-9]*) ;; *) kill -KILL "$rs_pid" 2>/dev/null ;; esac
	if [ "$_failures" -gt 0 ]; then
		for f in wlog rs.out; do [ -s "$T/$f" ] && sed "s/^/# $f: /" "$T/$f"; done
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

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
mkcert syslog "DNS:localhost,IP:127.0.0.1" && mkcert ny "DNS:ny" &&
	mkcert rogue "IP:127.0.0.1" rogue-ca && mkcert other-name "DNS:other.example" ||
	{ fail "making the certificates"; exit 1; }
chmod 644 ./*.key # rsyslog reads its key as whoever it runs as
cd - >/dev/null || exit 1

mkdir "$T/work"
cat >"$T/rsyslog.conf" <<EOF
global(
  maxMessageSize="128k"
  workDirectory="$T/work"
  defaultNetstreamDriver="ossl"
  defaultNetstreamDriverCAFile="$T/ca.crt"
  defaultNetstreamDriverCertFile="$T/syslog.crt"
  defaultNetstreamDriverKeyFile="$T/syslog.key"
)
module(load="imtcp" streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
template(name="msgonly" type="string" string="%msg%\n")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="audit") {
  action(type="omfile" file="$T/received.log" template="msgonly")
  action(type="omfile" file="$T/raw.log" template="raw")
}
input(type="imtcp" port="6514" address="127.0.0.1" ruleset="audit")
EOF
check "rsyslogd accepts the configuration" sh -c 'rsyslogd -N1 -f "$1" >/dev/null 2>&1' sh "$T/rsyslog.conf"

listening() { ss -ltnH "sport = :$1" | grep -q .; }
start_rsyslog() {
	rm -f "$T/rsyslog.pid"
	rsyslogd -n -f "$T/rsyslog.conf" -i "$T/rsyslog.pid" >>"$T/rs.out" 2>&1 &
	rspid=$!
	wait_for 20 listening 6514
}
stop_rsyslog() { # SIGTERM, and wait until it is gone
	kill -TERM "$rspid" && wait_for 20 gone "$rspid"
}

started=
start_writer() { # RUNDIR DIR DEST: the pid in $started, once ready
	rm -f "$T/ready" && mkfifo "$T/ready" || return 1
	p2p-audit -d 3 -r "$T/$1" -D "$T/$2" -H ny -y "$3" -A "$T/ca.crt" -C "$T/ny.crt" \
		-K "$T/ny.key" 3>"$T/ready" 2>>"$T/wlog" &
	started=$!
	timeout 20 sh -c 'read -r _ <"$1"' sh "$T/ready"
}
wstatus() { printf '%s\n' '{"id":1,"op":"status"}' | socat -t 5 - "UNIX-CONNECT:$T/${1:-wrun}/audit.sock"; }
send() { # FROM TO: records, all acknowledged
	awk -v a="$1" -v b="$2" 'BEGIN { for (i = a; i <= b; i++)
		printf "{\"id\":%d,\"op\":\"log\",\"record\":{\"type\":\"request\",\"resource\":\"vault\",\"method\":\"GET\",\"path\":\"/item/%d\",\"decision\":\"%s\",\"status\":%d,\"request_id\":\"s-%d\"}}\n", i, i, i % 10 ? "allow" : "deny", i % 10 ? 200 : 403, i }' |
		socat -t 30 - "UNIX-CONNECT:$T/wrun/audit.sock" >"$T/acks"
	[ "$(grep -c '"ok":true' "$T/acks")" -eq $(($2 - $1 + 1)) ]
}
received() { [ -f "$T/received.log" ] && wc -l <"$T/received.log" || echo 0; }
# Every seq 1..N at least once in what rsyslog stored.
all_there() {
	[ "$(jq -r .seq "$T/received.log" | sort -n -u | wc -l)" -eq "$1" ] &&
		[ "$(jq -r .seq "$T/received.log" | sort -n -u | tail -n 1)" -eq "$1" ]
}
repeats() { jq -r .seq "$T/received.log" | sort -n | uniq -d | wc -l; }
acked_is() { [ "$(wstatus | jq .forward.syslog.acked)" = "$1" ]; }

check "rsyslogd listens with TLS on 127.0.0.1:6514" start_rsyslog
check "p2p-audit starts, forwarding to syslog" start_writer wrun trail 127.0.0.1:6514
wpid=$started

check "1000 records taken" send 1 1000
check "rsyslog stores all 1000" wait_for 20 all_there 1000
check "rsyslog's messages are the writer's lines: the same file" cmp -s "$T/received.log" "$T/trail/audit.log"
check "p2p-audit -V verifies the chain in rsyslog's file" \
	sh -c 'p2p-audit -V "$1" | grep -q "^1000 records, seq 1 to 1000, host ny"' sh "$T/received.log"
first=$(head -n 1 "$T/trail/audit.log")
check "an RFC 5424 message: <110>1 TIME ny p2p-audit - request - LINE" \
	sh -c 'head -n 1 "$1" | grep -qxF "<110>1 $(echo "$2" | jq -r .time) ny p2p-audit - request - $2"' sh "$T/raw.log" "$first"
check "a denial is a notice: <109>" \
	sh -c 'sed -n 10p "$1" | grep -q "^<109>1 .* ny p2p-audit - request - .*\"decision\":\"deny\""' sh "$T/raw.log"
check "the writer records how far it got: 1000 (a second after delivery)" wait_for 10 acked_is 1000

# ---- rsyslog down for a while ----
check "rsyslog stops" stop_rsyslog
check "2000 records taken while rsyslog is down" send 1001 3000
failing() { wstatus | jq -e '.forward.syslog.failures > 0 and .forward.syslog.behind > 0' >/dev/null; }
check "the writer says syslog is failing, and how far behind it is" wait_for 10 failing
wstatus | jq -c .forward.syslog
sleep 1
check "rsyslog is back" start_rsyslog
check "all 3000 arrive" wait_for 40 all_there 3000
check "nothing twice: 3000 lines for 3000 records" [ "$(received)" -eq 3000 ]
check "the file rsyslog wrote still verifies as one chain" \
	sh -c 'p2p-audit -V "$1" >/dev/null' sh "$T/received.log"
check "the writer records 3000" wait_for 10 acked_is 3000

# ---- rsyslog stopped in the middle of a stream ----
send 3001 8000 &
sender=$!
sleep 0.2
kill -TERM "$rspid"
wait "$sender"
check "5000 records taken while rsyslog stopped" [ $? -eq 0 ]
wait_for 20 gone "$rspid"
check "rsyslog is back again" start_rsyslog
check "all 8000 arrive: nothing lost" wait_for 60 all_there 8000
check "the writer records 8000" wait_for 20 acked_is 8000
# Records settled may still be on their way into rsyslog's file (8000 can
# arrive before a repeat of 3001 does): count the repeats only once the
# writer has stopped and rsyslog has written everything and exited.
kill -TERM "$wpid"
wait "$wpid"
check "SIGTERM: the writer exits 0" [ $? -eq 0 ]
wpid=
check "rsyslog stops, its files written" stop_rsyslog
check "still all 8000 after both stopped" all_there 8000
r=$(repeats)
echo "audit-rsyslog: rsyslog stopped in a stream of 5000: $r records stored twice (at least once: allowed)"
# Each seq stored more than once: all its copies the same line (else they
# are shown).
copies_alike() {
	_bad=0
	for _s in $(jq -r .seq "$T/received.log" | sort -n | uniq -d); do
		[ "$(grep "^{\"seq\":$_s," "$T/received.log" | sort -u | wc -l)" -eq 1 ] && continue
		_bad=1
		grep -n "\"seq\":$_s," "$T/received.log" | sed 's/^/# differs: /'
	done
	return "$_bad"
}
check "a record stored twice is the same line both times" copies_alike
check "the file, each repeat dropped, still verifies as one chain" \
	sh -c 'awk "!seen[\$0]++" "$1" >"$1.once" && p2p-audit -V "$1.once" >/dev/null' sh "$T/received.log"

# ---- servers that must be refused ----
openssl s_server -accept 6515 -cert "$T/rogue.crt" -key "$T/rogue.key" -quiet \
	</dev/null >/dev/null 2>&1 &
spid=$!
wait_for 10 listening 6515
start_writer w2run trail2 127.0.0.1:6515
w2pid=$started
printf '%s\n' '{"id":1,"op":"log","record":{"type":"request","resource":"v","method":"GET","path":"/","decision":"allow"}}' |
	socat -t 10 - "UNIX-CONNECT:$T/w2run/audit.sock" >/dev/null
rogue() { wstatus w2run | jq -e '.forward.syslog.last_error | test("certificate: unable to get local issuer certificate")' >/dev/null; }
check "a server certificate from another CA is refused" wait_for 10 rogue
kill -TERM "$w2pid" && wait "$w2pid"
kill -KILL "$spid" && wait "$spid" 2>/dev/null
openssl s_server -accept 6515 -cert "$T/other-name.crt" -key "$T/other-name.key" -quiet \
	</dev/null >/dev/null 2>&1 &
spid=$!
wait_for 10 listening 6515
start_writer w2run trail2 127.0.0.1:6515
w2pid=$started
printf '%s\n' '{"id":1,"op":"log","record":{"type":"request","resource":"v","method":"GET","path":"/","decision":"allow"}}' |
	socat -t 10 - "UNIX-CONNECT:$T/w2run/audit.sock" >/dev/null
misnamed() { wstatus w2run | jq -e '.forward.syslog.last_error | test("certificate: IP address mismatch")' >/dev/null; }
check "a server certificate for another name is refused" wait_for 10 misnamed
kill -TERM "$w2pid" && wait "$w2pid"
w2pid=
finish
