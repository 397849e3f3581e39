#!/bin/sh
# p2p-dnsd's options and reload, with no root and no network: usage errors
# (100), configurations refused (102) and what -n names, the status op, and
# SIGHUP re-reading -F's file: a new upstream list is taken, -f's upstreams
# are kept, and a file that would leave no upstream or loop back to us is
# refused with the running resolver kept.
#
#   test ──> p2p-dnsd -r T/run -m T/run/mapd.sock -l 127.0.0.1:P -f .. -F T/upstream.conf
#                         └── p2p-mapd -r T/run (zone example.internal)
# shellcheck disable=SC2016 # sh -c '...' sh ARGS
. "$(dirname "$0")/../lib.sh"

T=$(scratch)
pids=
cleanup() {
	for p in $pids; do [ "$p" -gt 0 ] && kill "$p" 2>/dev/null; done
	if [ "$_failures" -gt 0 ]; then
		for l in "$T"/*.log; do [ -s "$l" ] && sed "s|^|# ${l##*/}: |" "$l"; done
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

if ! command -v kdig >/dev/null 2>&1; then
	skip "dnsd-options: needs kdig (make deps: knot-dnsutils)"
	exit 0
fi

# exit status and the first line of stderr of p2p-dnsd ARGS
run() {
	p2p-dnsd "$@" >"$T/out" 2>"$T/err"
	echo "$? $(grep -v libunbound "$T/err" | head -n 1)"
}
expect() { # DESC STATUS PATTERN ARGS...
	_d=$1 _s=$2 _p=$3; shift 3
	_got=$(run "$@")
	case $_got in
	"$_s "*$_p*) ok "$_d" ;;
	*) fail "$_d (got: $_got)" ;;
	esac
}

expect "an unknown option is a usage error" 100 "invalid option" -x
expect "an argument is a usage error" 100 "usage: p2p-dnsd" -f 192.0.2.1 extra
expect "-l with a wildcard address is refused" 100 "not a wildcard" -l 0.0.0.0 -f 192.0.2.1
expect "-l [::] too" 100 "not a wildcard" -l '[::]:53' -f 192.0.2.1
expect "-l ::ffff:0.0.0.0 (IPv4's wildcard, mapped) too" 100 "not a wildcard" -l ::ffff:0.0.0.0 -f 192.0.2.1
expect "-l with a bad port" 100 "-l 127.0.0.1:99999" -l 127.0.0.1:99999 -f 192.0.2.1
expect "a ninth -l is refused as one too many" 100 "at most 8" \
	-l 127.0.0.1 -l 127.0.0.2 -l 127.0.0.3 -l 127.0.0.4 -l 127.0.0.5 -l 127.0.0.6 -l 127.0.0.7 \
	-l 127.0.0.8 -l 127.0.0.9 -f 192.0.2.1
expect "-f with a bad port" 100 "-f 192.0.2.1@53x" -f 192.0.2.1@53x
expect "-f with a signed port" 100 "-f 192.0.2.1@+53" -f 192.0.2.1@+53
expect "-f with a name instead of an address" 100 "-f dns.example" -f dns.example
expect "no upstream and no -R is refused" 102 "no upstream" -n
printf '# nothing\nsearch example.internal\n' >"$T/empty.conf"
expect "a -F file without nameservers is refused" 102 "no upstream" -n -F "$T/empty.conf"
expect "a missing -F file is refused" 102 "unable to read $T/nosuch" -n -F "$T/nosuch"
expect "forwarding to our own address loops: refused" 102 "would loop" -n -l 127.0.3.53 -f 127.0.3.53
printf 'nameserver 127.0.3.53\n' >"$T/self.conf"
expect "... also when it comes from the -F file" 102 "would loop" -n -l 127.0.3.53 -F "$T/self.conf"
expect "the same address on another port is not a loop" 0 "" -n -l 127.0.3.53 -f 127.0.3.53@5353
expect "-n says configuration OK" 0 "" -n -f 192.0.2.1 -R
check "... on stdout" grep -qx "configuration OK" "$T/out"
expect "-n checks -u's user" 102 "-u nosuch-user-p2p: no such user" -n -u nosuch-user-p2p -f 192.0.2.1
echo "this is not a trust anchor" >"$T/bad.key"
expect "-n checks the trust anchor" 102 "trust anchor $T/bad.key: unusable" -n -f 192.0.2.1 -a "$T/bad.key"
expect "... and that it exists" 102 "trust anchor $T/nosuch.key: unusable" -n -f 192.0.2.1 -a "$T/nosuch.key"

# ---- a running p2p-dnsd and SIGHUP ----

mkdir -p "$T/run" "$T/state"
cat >"$T/map.json" <<'EOF'
{"version": 1, "dns": {"zones": ["example.internal"]},
 "connectors": {"ny": {"key": "M88tNfFb2kZ9ZQQPVAOTW4v9Bql4Ul0HdlAsdr9SYiI="}},
 "resources": {"vault": {"names": ["vault.example.internal"], "addr": "100.96.128.20",
                         "connectors": ["ny"], "upstream": "http://10.0.10.15:8080"}}}
EOF
p2p-mapd -r "$T/run" -s "$T/state" -f "$T/map.json" >"$T/mapd.log" 2>&1 &
mapd=$!
pids="$pids $!"
P=$((30000 + $$ % 10000))
printf 'nameserver 192.0.2.10\nnameserver 192.0.2.11\n' >"$T/upstream.conf"
p2p-dnsd -r "$T/run" -m "$T/run/mapd.sock" -l "127.0.0.1:$P" -f 192.0.2.1@5300 -F "$T/upstream.conf" \
	>"$T/dnsd.log" 2>&1 &
dnsd=$!
pids="$pids $dnsd"
upstreams() { p2p ipc "$T/run/dnsd.sock" '{"id":1,"op":"status"}' | jq -c .upstreams; }
check "p2p-dnsd answers" wait_for 10 sh -c '[ "$("$@")" = 100.96.128.20 ]' sh \
	kdig @127.0.0.1 -p "$P" +short +retry=0 +timeout=1 vault.example.internal
check "status: -f's upstream first, then the file's" \
	[ "$(upstreams)" = '["192.0.2.1@5300","192.0.2.10","192.0.2.11"]' ]
check "status: the zones refused in libunbound" \
	sh -c '"$@" | jq -e ".zones | index(\"example.internal\")" >/dev/null' sh \
	p2p ipc "$T/run/dnsd.sock" '{"id":1,"op":"status"}'

hup_and_wait() { # the log line count before; wait for one more SIGHUP line
	_n=$(grep -c SIGHUP "$T/dnsd.log")
	kill -HUP "$dnsd"
	wait_for 5 sh -c '[ "$(grep -c SIGHUP "$1")" -gt "$2" ]' sh "$T/dnsd.log" "$_n"
}
printf 'nameserver 192.0.2.20\n' >"$T/upstream.conf"
hup_and_wait
check "SIGHUP: the file's new nameserver is taken, -f's kept" \
	[ "$(upstreams)" = '["192.0.2.1@5300","192.0.2.20"]' ]
: >"$T/upstream.conf"
hup_and_wait
check "SIGHUP: an empty file still leaves -f's upstream: taken" [ "$(upstreams)" = '["192.0.2.1@5300"]' ]
printf "nameserver 127.0.0.1\n" >"$T/upstream.conf"
hup_and_wait
check "SIGHUP: a nameserver on another port of our address is no loop" \
	[ "$(upstreams)" = '["192.0.2.1@5300","127.0.0.1"]' ]
kill "$dnsd"
wait "$dnsd" 2>/dev/null

# Without -f, an empty file or one naming us must be refused at reload.
# A resolv.conf names port 53: that part needs root to listen there.
L=127.0.0.1 LP=$P
if [ "$(id -u)" -eq 0 ]; then L=127.0.3.53 LP=53; fi
printf 'nameserver 192.0.2.30\n' >"$T/upstream.conf"
p2p-dnsd -r "$T/run" -m "$T/run/mapd.sock" -l "$L:$LP" -F "$T/upstream.conf" >"$T/dnsd.log" 2>&1 &
dnsd=$!
pids="$pids $dnsd"
check "p2p-dnsd with -F alone answers" wait_for 10 sh -c '[ "$("$@")" = 100.96.128.20 ]' sh \
	kdig @"$L" -p "$LP" +short +retry=0 +timeout=1 vault.example.internal
: >"$T/upstream.conf"
hup_and_wait
check "SIGHUP: a file with no nameserver is refused, the old upstreams kept" \
	[ "$(upstreams)" = '["192.0.2.30"]' ]
check "... saying so" grep -q "SIGHUP: keeping the previous 1 upstreams" "$T/dnsd.log"
if [ "$LP" = 53 ]; then
	printf 'nameserver 127.0.3.53\n' >"$T/upstream.conf"
	hup_and_wait
	check "SIGHUP: a file naming our own address is refused (a loop), the old upstreams kept" \
		[ "$(upstreams)" = '["192.0.2.30"]' ]
	check "... saying why" grep -q "upstream 127.0.3.53 is one of our own listen addresses" "$T/dnsd.log"
else
	skip "dnsd-options: a resolv.conf loop at reload needs port 53 (root)"
fi
check "p2p-dnsd still answers, the same process" \
	sh -c '[ "$("$@")" = 100.96.128.20 ]' sh kdig @"$L" -p "$LP" +short +retry=0 +timeout=2 vault.example.internal
check "... alive" kill -0 "$dnsd"

# ---- -i: the map's DNS address answers only what came in on that interface ----
if [ "$(id -u)" = 0 ]; then
	kill "$dnsd"; wait "$dnsd" 2>/dev/null
	# an overlay on loopback, so that its DNS address is on lo
	jq '.version = 2 | .overlay = "127.64.0.0/16" | .dns.addr = "127.64.0.53" |
	    .resources.vault.addr = "127.64.128.20"' "$T/map.json" >"$T/map2.json" && mv "$T/map2.json" "$T/map.json"
	kill -HUP "$mapd"
	printf 'nameserver 192.0.2.30\n' >"$T/upstream.conf"
	p2p-dnsd -r "$T/run" -m "$T/run/mapd.sock" -l "$L:$LP" -F "$T/upstream.conf" -i lo >"$T/dnsd-i.log" 2>&1 &
	dnsd=$!
	pids="$pids $dnsd"
	check "-i lo: the map's DNS address (127.64.0.53, on lo) answers" wait_for 10 sh -c '[ "$("$@")" = 127.64.128.20 ]' sh \
		kdig @127.64.0.53 +short +retry=0 +timeout=1 vault.example.internal
	check "... bound to lo (SO_BINDTODEVICE)" \
		sh -c 'ss -Hlnup | grep "127.64.0.53%lo:53" >/dev/null' sh
	kill "$dnsd"; wait "$dnsd" 2>/dev/null
	p2p-dnsd -r "$T/run" -m "$T/run/mapd.sock" -l "$L:$LP" -F "$T/upstream.conf" -i nosuch0 >"$T/dnsd-i.log" 2>&1 &
	dnsd=$!
	pids="$pids $dnsd"
	check "-i with an interface not there: the map's DNS address is not answered, and the log says why" \
		wait_for 10 grep -q "unable to answer on the map's DNS address 127.64.0.53 port 53: No such device" "$T/dnsd-i.log"
	check "... the -l address still answers" \
		sh -c '[ "$("$@")" = 127.64.128.20 ]' sh kdig @"$L" -p "$LP" +short +retry=0 +timeout=2 vault.example.internal
else
	skip "dnsd-options: -i needs port 53 on the map's DNS address (root)"
fi

finish
