#!/bin/sh
# p2p-dnsd validating DNSSEC with a trust anchor (-a), against a signed zone
# served by Knot DNS on loopback (knotd signs it on load):
#
#   kdig ──> p2p-dnsd -a anchor -f 127.0.0.1@K ──> knotd 127.0.0.1@K: signed.example
#                      (map from p2p-mapd: example.internal, answered here)
#
# The right anchor: answers validated (AD for a client that asks with AD or
# DO), RRSIGs only for a client that set DO; a wrong anchor: SERVFAIL, the
# data is never handed out; no anchor: answers without AD. Private names are
# answered from the map either way, unsigned (they are ours, not the DNS's).
# shellcheck disable=SC2016 # sh -c '...' sh ARGS
. "$(dirname "$0")/../lib.sh"

for t in knotd kdig; do
	if ! command -v "$t" >/dev/null 2>&1; then
		skip "dnsd-dnssec: needs $t (make deps: knot, knot-dnsutils)"
		exit 0
	fi
done

T=$(scratch)
pids=
cleanup() {
	for p in $pids; do [ "$p" -gt 0 ] && kill "$p" 2>/dev/null; done
	if [ "$_failures" -gt 0 ] || [ -n "${DEBUG:-}" ]; then
		for l in "$T"/*.log; do [ -s "$l" ] && sed "s|^|# ${l##*/}: |" "$l"; done
	fi
	[ -n "${KEEP:-}" ] || rm -rf "$T"; [ -z "${KEEP:-}" ] || echo "# kept $T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# Ports from our pid, so two runs side by side do not meet.
K=$((20000 + $$ % 10000 * 3))
D1=$((K + 1)) D2=$((K + 2))

mkdir -p "$T/knot/db" "$T/run" "$T/state"
cat >"$T/knot/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$K
    rundir: $T/knot
database:
    storage: $T/knot/db
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: $T/knot
    file: "%s.zone"
    dnssec-signing: on
zone:
  - domain: signed.example
EOF
cat >"$T/knot/signed.example.zone" <<'EOF'
$ORIGIN signed.example.
$TTL 300
@    SOA ns hostmaster 1 3600 600 86400 300
@    NS  ns
ns   A   127.0.0.1
www  A   192.0.2.80
EOF
knotd -c "$T/knot/knot.conf" >"$T/knotd.log" 2>&1 &
pids="$pids $!"
ksk() { kdig @127.0.0.1 -p "$K" +retry=0 +timeout=1 signed.example DNSKEY | awk '$4 == "DNSKEY" && $5 == 257'; }
if ! wait_for 10 sh -c '[ -n "$("$@")" ]' sh kdig @127.0.0.1 -p "$K" +short +retry=0 +timeout=1 signed.example DNSKEY; then
	fail "knotd serves signed.example on 127.0.0.1 port $K"
	finish
fi
ksk >"$T/anchor"
check "the anchor is signed.example's key-signing key" grep -q 'DNSKEY.257 3 13 ' "$T/anchor"
# A DS of a key that signed nothing here: the zone's keys then match no
# anchor and its answers are bogus. (A changed DNSKEY would not do: a key
# that is not a point on the curve is an unusable anchor, and unbound then
# takes the zone as insecure.)
echo "signed.example. 300 IN DS 4711 13 2 $(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
	>"$T/wrong-anchor"

cat >"$T/map.json" <<'EOF'
{"version": 1, "dns": {"zones": ["example.internal"]},
 "connectors": {"ny": {"key": "M88tNfFb2kZ9ZQQPVAOTW4v9Bql4Ul0HdlAsdr9SYiI="}},
 "resources": {"vault": {"names": ["vault.example.internal"], "addr": "100.96.128.20",
                         "connectors": ["ny"], "upstream": "http://10.0.10.15:8080"}}}
EOF
p2p-mapd -r "$T/run" -s "$T/state" -f "$T/map.json" >"$T/mapd.log" 2>&1 &
pids="$pids $!"
wait_for 5 test -S "$T/run/mapd.sock"

mkdir -p "$T/run1" "$T/run2"
p2p-dnsd -r "$T/run1" -m "$T/run/mapd.sock" -l "127.0.0.1:$D1" -f "127.0.0.1@$K" -a "$T/anchor" \
	>"$T/dnsd-anchor.log" 2>&1 &
pids="$pids $!"
p2p-dnsd -r "$T/run2" -m "$T/run/mapd.sock" -l "127.0.0.1:$D2" -f "127.0.0.1@$K" -a "$T/wrong-anchor" \
	>"$T/dnsd-wrong.log" 2>&1 &
pids="$pids $!"
ask() { _port=$1; shift; kdig @127.0.0.1 -p "$_port" +retry=0 +timeout=8 "$@"; }
for p in "$D1" "$D2"; do
	wait_for 10 sh -c '"$@" | grep -q "status: NOERROR"' sh \
		kdig @127.0.0.1 -p "$p" +retry=0 +timeout=1 vault.example.internal
done

ask "$D1" www.signed.example +dnssec >"$T/do"
check "right anchor, DO: the answer is validated (AD)" grep -q "Flags: qr rd ra ad;" "$T/do"
check "right anchor, DO: with its RRSIG" grep -q "RRSIG.*A 13 3 300" "$T/do"
check "right anchor, DO: the address" grep -q "IN.A.192\.0\.2\.80" "$T/do"
ask "$D1" www.signed.example +adflag >"$T/ad"
check "right anchor, AD asked without DO: AD set" grep -q "Flags: qr rd ra ad;" "$T/ad"
check "... and no RRSIG for a client that did not set DO (RFC 4035 3.2.1)" \
	sh -c '! grep -q RRSIG "$1" && grep -q "ANSWER: 1;" "$1"' sh "$T/ad"
ask "$D1" www.signed.example +noadflag >"$T/plain"
check "right anchor, a plain query: the address, no AD (RFC 6840 5.8), no RRSIG" \
	sh -c 'grep -q "Flags: qr rd ra;" "$1" && grep -q "ANSWER: 1;" "$1"' sh "$T/plain"
check "right anchor: NXDOMAIN proved by NSEC is NXDOMAIN" \
	sh -c '"$@" | grep -q "status: NXDOMAIN"' sh kdig @127.0.0.1 -p "$D1" +retry=0 +timeout=8 nosuch.signed.example

ask "$D2" www.signed.example +dnssec >"$T/bogus"
check "wrong anchor: SERVFAIL (bogus), the address never handed out" \
	sh -c 'grep -q "status: SERVFAIL" "$1" && ! grep -q 192.0.2.80 "$1"' sh "$T/bogus"
check "wrong anchor: private names still answered from the map" \
	sh -c '[ "$("$@")" = 100.96.128.20 ]' sh kdig @127.0.0.1 -p "$D2" +short +retry=0 +timeout=3 vault.example.internal
ask "$D1" vault.example.internal +dnssec >"$T/private"
check "private answers are authoritative, unsigned: AA, no AD, no RRSIG even with DO" \
	sh -c 'grep -q "Flags: qr aa rd ra;" "$1" && ! grep -q RRSIG "$1"' sh "$T/private"

finish
