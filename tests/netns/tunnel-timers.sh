#!/bin/sh
# The protocol timers, 20 times faster (-T 20 on both sides: rekey after
# 6 s, reject after 9 s, rekey-timeout 250 ms, keepalive 500 ms): traffic
# keeps flowing across rekeys, persistent keepalive sends when idle and keeps
# the session fresh, and when the peer disappears the old keys stop being
# used once they are too old, and the tunnel recovers when the peer returns.
#
#        p2p-$$-a                                  p2p-$$-b
#   ┌──────────────────────┐                ┌──────────────────────┐
#   │ p2p-tunnel -T 20     │                │ p2p-tunnel -T 20     │
#   │ tta$$ 10.100.0.1/24  │                │ ttb$$ 10.100.0.2/24  │
#   │ UDP 51820            │                │ UDP 51820            │
#   │  veth0 10.99.0.1/24 ─┼────────────────┼─ veth0 10.99.0.2/24  │
#   └──────────────────────┘                │ (later sink.py on    │
#                                           │  10.99.0.2:51820)    │
#                                           └──────────────────────┘
#
# - Rekeying: a 20-second ping (5/s) and a 20-second iperf3 TCP stream. A
#   session is refused after 9 s, so both can only last if sessions are
#   replaced in time: the ping must lose nothing, iperf3 must complete with
#   data moving in every 1-s interval, and `wg show latest-handshakes` must
#   advance (polled) at least twice during each.
# - Persistent keepalive (seconds, not scaled by -T): after the traffic, with
#   it off, an idle tunnel is silent over a 2-s window (b's rx bytes for a do
#   not move; an observation window, not a readiness wait); with it at 1 s,
#   b receives keepalives, and while still idle the handshake keeps advancing.
# - Expiry: b is stopped and sink.py takes its UDP port, logging each
#   datagram's arrival time and message type. a, pinging b, keeps sending
#   transport data with the old keys only until they are 9 s old (measured
#   from b's disappearance, which is no earlier than their creation), then
#   only handshake initiations.
# p2p-tunnel runs with -U (its userspace WireGuard, which these tests are
# about; -T only scales its timers) even where the kernel module exists.
# shellcheck disable=SC2015,SC2046,SC2317 # "a && b || fail"; set -- $(...) splits on purpose; functions run from traps and checks
. "$(dirname "$0")/../lib.sh"

need_root "tunnel-timers"
for t in ip ss wg iperf3 ping timeout /usr/bin/python3; do
	if ! command -v "$t" >/dev/null 2>&1; then
		skip "tunnel-timers: needs $t (make deps)"
		exit 0
	fi
done
if [ ! -c /dev/net/tun ]; then
	skip "tunnel-timers: needs /dev/net/tun"
	exit 0
fi

P=$$
A=p2p-$P-a
B=p2p-$P-b
IA=tta$P
IB=ttb$P
T=$(scratch)
pids=

cleanup() {
	for pid in $pids; do kill "$pid" 2>/dev/null; done
	# Anything still running in our namespaces is ours (a listener of an
	# interrupted transfer, say).
	for n in "$A" "$B"; do ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null; done
	ip netns del "$A" 2>/dev/null
	ip netns del "$B" 2>/dev/null
	rm -f "/var/run/wireguard/$IA.sock" "/var/run/wireguard/$IB.sock"
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM

alive() {
	_st=$(sed -n 's/^[0-9]* (.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
	[ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}
gone() { ! alive "$1"; }
quiet() { "$@" >/dev/null 2>&1; }
listening() { [ -n "$(ip netns exec "$1" ss -Hl"$2"n "sport = :$3")" ]; }
stop_peer() { # PID NAME: SIGTERM, exit status 0
	kill -TERM "$1" 2>/dev/null
	if ! wait_for 10 gone "$1"; then
		fail "$2 exits on SIGTERM"
		kill -KILL "$1" 2>/dev/null
	fi
	wait "$1"
	check "$2 exits 0 on SIGTERM" [ "$?" -eq 0 ]
}
# peer_field IFACE NS PUB N: field N of the peer's `wg show dump` line
# (3 endpoint, 5 latest handshake, 6 rx bytes, 7 tx bytes).
peer_field() {
	ip netns exec "$2" wg show "$1" dump | awk -F'\t' -v k="$3" -v n="$4" 'NR > 1 && $1 == k { print $n }'
}
hs_a() { peer_field "$IA" "$A" "$pub_b" 5; }
after() { [ "$(hs_a)" -gt "$1" ] 2>/dev/null; }  # a's latest handshake is after $1
ge() { [ "$($1)" -ge "$2" ] 2>/dev/null; }       # ge "COMMAND ARGS" N
rx_b() { peer_field "$IB" "$B" "$pub_a" 6; }

# start_b: b's p2p-tunnel, fresh.
start_b() {
	ip netns exec "$B" p2p-tunnel -U -T 20 -i "$IB" -c "$T/b.conf" -a 10.100.0.2/24 2>>"$T/b.log" &
	pid_b=$!
	pids="$pids $pid_b"
	wait_for 10 ip netns exec "$B" wg show "$IB"
}

# rekeys LABEL PID: while PID runs, a's latest handshake must advance twice,
# the second time (a whole key lifetime) at most 8 s after the first: the
# initiator rekeys once its keys are 6 s old, before they expire at 9 s (a
# new handshake only when the old keys are refused would still carry the
# traffic, but 9 s or more apart).
rekeys() {
	_h=$(hs_a)
	_n=0
	_gap=
	while [ "$_n" -lt 2 ] && alive "$2" && wait_for 10 after "$_h"; do
		_new=$(hs_a)
		if [ "$_n" -eq 1 ]; then _gap=$((_new - _h)); fi
		_h=$_new
		_n=$((_n + 1))
	done
	check "$1: the handshake advanced $_n times while it ran (want 2)" [ "$_n" -ge 2 ]
	check "$1: rekeyed ${_gap:-?} s after the previous handshake (want 8 or less)" \
		[ "${_gap:-99}" -le 8 ]
}

ip netns add "$A" && ip netns add "$B" &&
	ip link add veth0 netns "$A" type veth peer name veth0 netns "$B" &&
	ip -n "$A" addr add 10.99.0.1/24 dev veth0 && ip -n "$A" link set veth0 up &&
	ip -n "$B" addr add 10.99.0.2/24 dev veth0 && ip -n "$B" link set veth0 up &&
	ip -n "$A" link set lo up && ip -n "$B" link set lo up ||
	{ fail "building the namespaces"; exit 1; }
priv_a=$(wg genkey) && priv_b=$(wg genkey) &&
	pub_a=$(echo "$priv_a" | wg pubkey) && pub_b=$(echo "$priv_b" | wg pubkey) ||
	{ fail "wg genkey"; exit 1; }
printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.100.0.2/32\nEndpoint = 10.99.0.2:51820\n' \
	"$priv_a" "$pub_b" >"$T/a.conf"
printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.100.0.1/32\nEndpoint = 10.99.0.1:51820\n' \
	"$priv_b" "$pub_a" >"$T/b.conf"

t_start=$(date +%s)
ip netns exec "$A" p2p-tunnel -U -T 20 -i "$IA" -c "$T/a.conf" -a 10.100.0.1/24 2>"$T/a.log" &
pid_a=$!
pids="$pids $pid_a"
if ! wait_for 10 ip netns exec "$A" wg show "$IA" || ! start_b; then
	fail "p2p-tunnel starts on a and b"
	cat "$T/a.log" "$T/b.log"
	exit 1
fi
check "first handshake" quiet ip netns exec "$A" ping -c 1 -W 3 10.100.0.2

# ---- a 20-second ping across rekeys ----
ip netns exec "$A" ping -q -i 0.2 -c 100 -W 2 10.100.0.2 >"$T/ping.out" 2>&1 &
pid_p=$!
pids="$pids $pid_p"
rekeys "ping -i 0.2 for 20 s" "$pid_p"
wait_for 30 gone "$pid_p"
wait "$pid_p"
rc=$?
loss=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' "$T/ping.out")
check "ping -i 0.2 for 20 s across rekeys: exit $rc, ${loss:-?}% loss" [ "$rc/$loss" = 0/0 ]

# ---- a 20-second TCP stream across rekeys ----
ip netns exec "$B" iperf3 -s -1 -p 5201 >"$T/iperf-server.log" 2>&1 &
pids="$pids $!"
if wait_for 10 listening "$B" t 5201; then
	timeout 60 ip netns exec "$A" iperf3 -c 10.100.0.2 -p 5201 -t 20 -i 1 -J >"$T/iperf.json" 2>&1 &
	pid_i=$!
	pids="$pids $pid_i"
	rekeys "iperf3 -t 20" "$pid_i"
	wait_for 60 gone "$pid_i"
	wait "$pid_i"
	rc=$?
	summary=$(/usr/bin/python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
iv = [i["sum"]["bits_per_second"] for i in d["intervals"]]
e = d["end"]
print(len(iv), int(min(iv)), int(max(iv) / 1e6), int(e["sum_received"]["bits_per_second"] / 1e6),
      e["sum_sent"].get("retransmits", 0), e["sum_received"]["bytes"])' "$T/iperf.json" 2>/dev/null)
	# shellcheck disable=SC2086 # split on purpose
	set -- $summary
	if [ "$rc" -eq 0 ] && [ "$#" -eq 6 ]; then
		ok "iperf3 -t 20 across rekeys completes: $4 Mbit/s, $6 bytes, $5 retransmits"
		check "iperf3 -t 20: $1 intervals (want 19 or more)" [ "$1" -ge 19 ]
		check "iperf3 -t 20: data moved in every interval (min $(($2 / 1000000)), max $3 Mbit/s)" \
			[ "$2" -gt 0 ]
	else
		fail "iperf3 -t 20 across rekeys (exit $rc): $(head -c 400 "$T/iperf.json")"
	fi
else
	fail "iperf3 server listens"
fi

# ---- persistent keepalive ----
# Idle: a passive keepalive may come 500 ms after the last data; then
# silence. These sleeps are an observation window, not a readiness wait.
sleep 1
rx0=$(rx_b)
sleep 2
check "idle without persistent keepalive: b receives nothing in 2 s ($rx0 -> $(rx_b) bytes)" \
	[ "$(rx_b)" -eq "$rx0" ]
ip netns exec "$A" wg set "$IA" peer "$pub_b" persistent-keepalive 1 ||
	fail "wg set persistent-keepalive 1"
check "wg show lists the persistent keepalive" \
	[ "$(peer_field "$IA" "$A" "$pub_b" 8)" = 1 ]
# A keepalive is 32 bytes: wait for three.
check "persistent keepalive 1: b receives keepalives while idle" \
	wait_for 6 ge rx_b $((rx0 + 96))
h=$(hs_a)
check "persistent keepalive keeps rekeying an idle tunnel" wait_for 12 after "$h"

# ---- the peer disappears: the old keys expire ----
stop_peer "$pid_b" "p2p-tunnel on b"
t_gone=$(date +%s.%N)
cat >"$T/sink.py" <<'EOF'
# sink.py ADDR PORT LOG: one line per datagram: arrival time (the kernel's
# timestamp, so a slow reader does not skew it), type, length, receiver.
import socket, struct, sys, time
TS = getattr(socket, "SO_TIMESTAMPNS", 35)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, TS, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
with open(sys.argv[3], "a", buffering=1) as log:
    while True:
        d, anc, _, _ = s.recvmsg(65535, 256)
        t = time.time()
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == TS and len(data) >= 16:
                sec, nsec = struct.unpack("qq", data[:16])
                t = sec + nsec / 1e9
        log.write("%.3f %d %d %d\n" % (t, d[0], len(d), int.from_bytes(d[4:8], "little")))
EOF
: >"$T/sink.log"
ip netns exec "$B" /usr/bin/python3 "$T/sink.py" 10.99.0.2 51820 "$T/sink.log" 2>"$T/sink.err" &
pid_s=$!
pids="$pids $pid_s"
wait_for 10 listening "$B" u 51820 || fail "sink.py listens on b's port"
ip netns exec "$A" ping -q -i 0.2 -c 100 -W 1 10.100.0.2 >/dev/null 2>&1 &
pid_p=$!
pids="$pids $pid_p"
# sink_state: "DATA LAST_DATA_AGE INITS_AFTER_LAST_DATA LAST_DATA_SINCE_GONE"
sink_state() {
	awk -v now="$(date +%s.%N)" -v gone="$t_gone" '
		$2 == 4 { data++; last = $1; inits = 0 }
		$2 == 1 { inits++ }
		END { if (!data) print 0, 0, inits + 0, 0; else printf "%d %.3f %d %.3f\n", data, now - last, inits, last - gone }' "$T/sink.log"
}
# Done when a has sent data, then nothing but initiations for 2 s.
expired() {
	set -- $(sink_state)
	[ "$1" -gt 0 ] && [ "$3" -gt 0 ] && awk -v a="$2" 'BEGIN { exit !(a >= 2) }'
}
if wait_for 20 expired; then
	set -- $(sink_state)
	ok "peer gone: a sent $1 data packets with the old keys, then only initiations ($3 in the last $2 s)"
	check "peer gone: the last data packet left $4 s after b stopped (keys at most 9 s old; 10 allowed)" \
		awk -v t="$4" 'BEGIN { exit !(t <= 10) }'
else
	fail "peer gone: a stops sending data with the old keys: $(sink_state) (data, age of the last, initiations after, since b stopped)"
	tail -n 20 "$T/sink.log"
fi
kill "$pid_s" 2>/dev/null
wait_for 10 gone "$pid_s"
echo "# sink: $(awk '{ n[$2]++ } END { for (t in n) printf "type %s: %d  ", t, n[t] }' "$T/sink.log")"

# ---- the peer comes back ----
if start_b; then
	check "b back: a pings b again" wait_for 10 quiet ip netns exec "$A" ping -c 1 -W 1 10.100.0.2
else
	fail "p2p-tunnel restarts on b"
fi
kill "$pid_p" 2>/dev/null
stop_peer "$pid_b" "p2p-tunnel on b"
stop_peer "$pid_a" "p2p-tunnel on a"
for f in a b; do
	if grep -qi 'error\|fatal' "$T/$f.log"; then sed "s/^/# $f: /" "$T/$f.log" | tail -n 10; fi
done
echo "# tunnel-timers: $(($(date +%s) - t_start)) s"
finish
