#!/bin/sh
# p2p-dnsd in the lab, from the client node (issue 4's acceptance):
#
#   client: kdig / tests/dnsq.py ──> 127.0.2.53 p2p-dnsd ──(private zones: answered here)
#                                                  └──(everything else: libunbound)──> control:
#                                                      p2p-lab-dns 198.18.0.1:53, the lab's
#                                                      "internet", logging every query it gets
#
# Private answers (A with TTL <= 5, the question's case echoed, NODATA with
# SOA, NXDOMAIN with negative TTL <= 10, apex SOA and NS, PTR), a public
# name, truncation and the TCP retry, a timeout, over UDP and TCP; TCP
# pipelining; malformed queries and a TCP client that stalls half-way; a map
# edit answered within a second with no restart; and the leak count: what
# reached the lab's internet DNS during private, public, mixed-case and
# search-suffixed queries, also while p2p-tunnel is down and restarting.
# shellcheck disable=SC2016 # sh -c '...' sh ARGS
. "$(dirname "$0")/../lib.sh"

need_root "dnsd-lab"
for t in ip nsenter unshare setsid s6-svscan s6-svc kdig jq /usr/bin/python3; do
	if ! command -v "$t" >/dev/null 2>&1; then
		skip "dnsd-lab: needs $t (make deps)"
		exit 0
	fi
done

T=$(scratch)
P2P_LAB_DIR=$T/labs
export P2P_LAB_DIR
name=$$
state=$P2P_LAB_DIR/$name
queries=$state/nodes/control/log/lab-dns.queries

lab() { p2p-lab -n "$name" "$@"; }
cleanup() {
	lab down >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

on_client() { lab exec client -- "$@"; }
dnsq() { on_client /usr/bin/python3 "$P2P_TOP/tests/dnsq.py" 127.0.2.53 53 "$@"; }
dig_short() { on_client kdig @127.0.2.53 +short +retry=0 +timeout=3 "$@"; }
kdig_proto() { if [ "$1" = tcp ]; then echo +tcp; else echo +notcp; fi; }
matches() { # PATTERN CMD...: CMD's output matches the extended regular expression
	_pat=$1; shift
	"$@" >"$T/out" 2>&1
	grep -Eq "$_pat" "$T/out" || { sed 's/^/# got: /' "$T/out"; return 1; }
}
ttl_at_most() { # MAX PROTO NAME TYPE: the answer's (or SOA's) TTL <= MAX
	_ttl=$(dnsq ask "$3" "$4" "$2" | sed -n 's/.* ttl=\([0-9]*\)$/\1/p')
	[ -n "$_ttl" ] && [ "$_ttl" -le "$1" ] && [ "$_ttl" -gt 0 ]
}
svc() { echo "$state/nodes/$1/service/$2"; }
dnsd_pid() { s6-svstat -o pid "$(svc client p2p-dnsd)"; }

if ! lab up >"$T/up.log" 2>&1; then
	fail "p2p-lab up"
	sed 's/^/# /' "$T/up.log"
	finish
fi
check "client: p2p-dnsd answers at 127.0.2.53" \
	wait_for 10 sh -c '[ "$("$@")" = 100.96.128.20 ]' sh p2p-lab -n "$name" exec client -- \
	kdig @127.0.2.53 +short +retry=0 +timeout=1 vault.example.internal
check "control: the lab's internet DNS answers" \
	wait_for 10 sh -c '[ "$("$@")" = 198.18.0.80 ]' sh p2p-lab -n "$name" exec client -- \
	kdig @198.18.0.1 +short +retry=0 +timeout=1 www.public.example
pid0=$(dnsd_pid)
check "client: p2p-dnsd runs as p2p" [ "$(stat -c %U "/proc/$pid0")" = p2p ]
check "client: p2p-dnsd keeps only CAP_NET_BIND_SERVICE" \
	[ "$(awk '/^CapEff:/ { print $2 }' "/proc/$pid0/status")" = 0000000000000400 ]

# ---- private answers, both transports ----

for proto in udp tcp; do
	check "$proto: vault.example.internal A is 100.96.128.20" \
		[ "$(dig_short "$(kdig_proto "$proto")" vault.example.internal A)" = 100.96.128.20 ]
	check "$proto: the A record's TTL is at most 5" ttl_at_most 5 "$proto" vault.example.internal A
	check "$proto: VAULT.Example.Internal answers, the question's case echoed (0x20)" \
		matches '^NOERROR qname=VAULT\.Example\.Internal an=1 ' dnsq ask VAULT.Example.Internal A "$proto"
	check "$proto: AAAA for vault is NOERROR, no data, the zone's SOA" \
		matches '^NOERROR qname=vault\.example\.internal an=0 ns=1 ' dnsq ask vault.example.internal AAAA "$proto"
	check "$proto: nosuch.example.internal is NXDOMAIN with the SOA" \
		matches '^NXDOMAIN qname=nosuch\.example\.internal an=0 ns=1 ' dnsq ask nosuch.example.internal A "$proto"
	check "$proto: the negative TTL is at most 10" ttl_at_most 10 "$proto" nosuch.example.internal A
	check "$proto: the PTR for 100.96.128.20 names vault" \
		[ "$(dig_short "$(kdig_proto "$proto")" -x 100.96.128.20)" = vault.example.internal. ]
	check "$proto: a PTR for an unused overlay address is NXDOMAIN, here" \
		matches '^NXDOMAIN .* ns=1 ' dnsq ask 9.9.96.100.in-addr.arpa PTR "$proto"
	check "$proto: the apex answers SOA" \
		matches '^dns\.example\.internal\. hostmaster\.example\.internal\. ' dig_short "$(kdig_proto "$proto")" example.internal SOA
	check "$proto: the apex answers NS" \
		[ "$(dig_short "$(kdig_proto "$proto")" example.internal NS)" = dns.example.internal. ]
	check "$proto: a public name resolves through p2p-dnsd" \
		[ "$(dig_short "$(kdig_proto "$proto")" www.public.example A)" = 198.18.0.80 ]
	check "$proto: a forwarded answer to a query without EDNS has no OPT" \
		matches '^NOERROR qname=www\.public\.example an=1 ns=0 ar=0 ' dnsq ask www.public.example A "$proto"
done
check "class ANY: a private name is answered from the map" \
	[ "$(dig_short -c ANY vault.example.internal A)" = 100.96.128.20 ]
check "class CH: a private name is refused here, not forwarded" \
	matches 'status: REFUSED' on_client kdig @127.0.2.53 +retry=0 +timeout=3 -c CH vault.example.internal TXT
check "the private answers come with AA, the public ones without" \
	sh -c '"$@" vault.example.internal | grep -q "Flags: qr aa rd ra" &&
		"$@" www.public.example | grep -q "Flags: qr rd ra;"' sh \
	p2p-lab -n "$name" exec client -- kdig @127.0.2.53 +retry=0 +timeout=3

# many.public.example has 40 addresses: more than 512 bytes.
check "udp: an answer over 512 bytes to a query without EDNS comes truncated (TC)" \
	matches '^NOERROR qname=many\.public\.example an=0 .* tc=1 ' dnsq ask many.public.example A udp
check "kdig retries over TCP and gets all 40 addresses" \
	[ "$(dig_short +noedns many.public.example | grep -c '^198\.18\.1\.')" -eq 40 ]
check "udp: with EDNS and a 1232-byte buffer the 40 addresses fit, no TC" \
	sh -c '"$@" | grep -q "Flags: qr rd ra; QUERY: 1; ANSWER: 40"' sh \
	p2p-lab -n "$name" exec client -- kdig @127.0.2.53 +notcp +ignore +bufsize=1232 +retry=0 many.public.example
start=$(date +%s)
check "an upstream that never answers gives SERVFAIL, not a hang" \
	matches 'status: SERVFAIL' on_client kdig @127.0.2.53 +retry=0 +timeout=10 silent.public.example
took=$(($(date +%s) - start))
check "... within the 5 s forwarding timeout ($took s)" [ "$took" -le 7 ]
check "tcp: 100 pipelined queries on one connection, 100 answers" \
	[ "$(dnsq pipeline 100)" = 100 ]

# ---- malformed queries: FORMERR or silence, never a crash ----

for case in $(/usr/bin/python3 "$P2P_TOP/tests/dnsq.py" - 0 cases); do
	for proto in udp tcp; do
		got=$(dnsq bad "$case" "$proto")
		check "$proto: malformed ($case) gets FORMERR or nothing ($got)" \
			sh -c 'case $1 in formerr|dropped|closed) ;; *) exit 1 ;; esac' sh "$got"
	done
done
check "a query with QR set (a response) is never answered" [ "$(dnsq bad a-response udp)" = dropped ]
check "after all that, p2p-dnsd still answers, the same process" \
	sh -c '[ "$("$@")" = 100.96.128.20 ]' sh p2p-lab -n "$name" exec client -- \
	kdig @127.0.2.53 +short +retry=0 +timeout=3 vault.example.internal
check "... the same process" [ "$(dnsd_pid)" = "$pid0" ]
stall=$(dnsq stall)
check "tcp: a client stalled half-way through a message is cut at the idle timeout (${stall%% *} s)" \
	sh -c 'set -- $1; case $1 in open) exit 1 ;; esac; awk -v t="$1" "BEGIN { exit !(t >= 9 && t <= 11.5) }"' sh "$stall"
check "... and other clients are served meanwhile" sh -c 'case $1 in *others-served) ;; *) exit 1 ;; esac' sh "$stall"

# ---- a map edit is answered within a second, without a restart ----

map=$state/nodes/client/etc/map.json
jq '.version += 1 | .resources.wiki = { "names": ["wiki.example.internal"], "addr": "100.96.128.30",
	"connectors": ["ny"], "upstream": "http://10.0.10.15:8080" }' "$map" >"$T/map.json" &&
	cp "$T/map.json" "$map.new" && mv "$map.new" "$map"
start=$(date +%s%N)
wait_for 5 sh -c '[ "$("$@")" = 100.96.128.30 ]' sh p2p-lab -n "$name" exec client -- \
	kdig @127.0.2.53 +short +retry=0 +timeout=1 wiki.example.internal
ms=$((($(date +%s%N) - start) / 1000000))
check "a resource added to the map resolves within a second ($ms ms)" [ "$ms" -le 1000 ]
check "... with no restart of p2p-dnsd" [ "$(dnsd_pid)" = "$pid0" ]
check "... and its PTR too" [ "$(dig_short -x 100.96.128.30)" = wiki.example.internal. ]

# ---- the map's overlay DNS address ----

status() { on_client p2p ipc /run/p2p/dnsd.sock '{"id":1,"op":"status"}'; }
odns=$(status | jq -r .overlay_dns)
check "p2p-dnsd also answers on the map's overlay DNS address ($odns)" \
	sh -c '[ "$("$@")" = 100.96.128.20 ]' sh p2p-lab -n "$name" exec client -- \
	kdig @"$odns" +short +retry=0 +timeout=3 vault.example.internal
jq '.version += 1 | .dns.addr = "100.96.0.53"' "$map" >"$T/map.json" &&
	cp "$T/map.json" "$map.new" && mv "$map.new" "$map"
check "the map moves it: p2p-dnsd follows" \
	wait_for 5 sh -c '"$@" | jq -e ".overlay_dns == \"100.96.0.53\"" >/dev/null' sh \
	p2p-lab -n "$name" exec client -- p2p ipc /run/p2p/dnsd.sock '{"id":1,"op":"status"}'
check "... and answers there once the tunnel has put it on p2p0" \
	wait_for 5 sh -c '[ "$("$@")" = 100.96.128.20 ]' sh p2p-lab -n "$name" exec client -- \
	kdig @100.96.0.53 +short +retry=0 +timeout=1 vault.example.internal
check "... and no longer on the old one" \
	sh -c 'a=$1; shift; ! "$@" | grep -qF " $a:53 "' sh "$odns" p2p-lab -n "$name" exec client -- ss -lnu

# ---- leaks: what reaches the lab's internet DNS ----

# The private names, spelt every way a resolver or a user might, with the
# search list (example.internal) doing its part for the short ones.
ask_everything() {
	for n in vault.example.internal VAULT.EXAMPLE.INTERNAL vAuLt.ExAmPlE.iNtErNaL. \
		nosuch.example.internal deep.sub.example.internal example.internal Example.Internal \
		20.128.96.100.in-addr.arpa 7.7.100.100.in-addr.arpa; do
		for type in A AAAA MX TXT ANY SOA NS PTR; do
			dnsq ask "$n" "$type" udp >/dev/null
		done
		dnsq ask "$n" A tcp >/dev/null
	done
	for class in ANY CH HS NONE; do
		on_client kdig @127.0.2.53 +retry=0 +timeout=2 -c "$class" secret.example.internal A >/dev/null
	done
	for n in vault nosuch wiki www.public.example nosuch.public.example; do
		on_client getent hosts "$n" >/dev/null
		on_client getent ahosts "$n" >/dev/null
	done
	# A name never asked before, so the path to the internet DNS is seen
	# to work in each phase (the others are in libunbound's cache by now).
	dnsq ask "$1.public.example" A udp >/dev/null
	on_client getent hosts "$1-short" >/dev/null
}
reached() { grep -qx "$1 1" "$queries"; }
private_leaks() { grep -Eic 'example\.internal|(^|\.)(9[6-9]|10[0-9]|11[01])\.100\.in-addr\.arpa' "$queries" || true; }

: >"$queries"
ask_everything up
n1=$(wc -l <"$queries")
check "with the tunnel up: $n1 queries reached the internet DNS, none private" \
	sh -c '[ "$1" -eq 0 ]' sh "$(private_leaks)"
check "... a fresh public name among them" reached up.public.example

s6-svc -wd -T 5000 -d "$(svc client p2p-tunnel)"
check "client: p2p-tunnel is down" sh -c '! p2p-lab -n "$1" exec client -- ip link show p2p0' sh "$name"
check "with the tunnel down, vault still answers (no failure to cache)" \
	[ "$(dig_short vault.example.internal)" = 100.96.128.20 ]
ask_everything down
n2=$(wc -l <"$queries")
check "with the tunnel down: $((n2 - n1)) more reached the internet DNS, none private" \
	sh -c '[ "$1" -eq 0 ]' sh "$(private_leaks)"
check "... a fresh public name among them" reached down.public.example

# Restart it twice while queries run.
( for i in 1 2 3; do ask_everything "restart$i"; done ) &
asker=$!
s6-svc -u "$(svc client p2p-tunnel)"
wait_for 10 p2p-lab -n "$name" exec client -- ip link show p2p0
s6-svc -r "$(svc client p2p-tunnel)"
wait "$asker"
check "client: p2p-tunnel is back" wait_for 10 p2p-lab -n "$name" exec client -- ping -c 1 -W 1 100.96.128.20
check "... and the overlay DNS address answers again, p2p-dnsd untouched" \
	wait_for 5 sh -c '[ "$("$@")" = 100.96.128.20 ]' sh p2p-lab -n "$name" exec client -- \
	kdig @100.96.0.53 +short +retry=0 +timeout=1 vault.example.internal
n3=$(wc -l <"$queries")
check "while the tunnel restarted: $((n3 - n2)) more reached the internet DNS, none private" \
	sh -c '[ "$1" -eq 0 ]' sh "$(private_leaks)"
check "... fresh public names among them" reached restart3.public.example
if [ "$(private_leaks)" -ne 0 ]; then grep -Ei 'example\.internal|in-addr' "$queries" | sed 's/^/# leaked: /' | head; fi

# ---- through the client's resolver configuration ----

check "client: getent hosts vault.example.internal prints 100.96.128.20 (resolv.conf -> p2p-dnsd)" \
	sh -c '"$@" | grep -q "^100.96.128.20 *vault.example.internal"' sh \
	p2p-lab -n "$name" exec client -- getent hosts vault.example.internal
check "p2p-dnsd counted what it did (status on dnsd.sock)" \
	sh -c '"$@" | jq -e ".ok and .queries > 100 and .forwarded > 0 and .formerr > 0" >/dev/null' sh \
	p2p-lab -n "$name" exec client -- p2p ipc /run/p2p/dnsd.sock '{"id":1,"op":"status"}'
check "p2p-dnsd was never restarted" [ "$(dnsd_pid)" = "$pid0" ]

finish
