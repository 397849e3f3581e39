#!/bin/sh
# p2p-tunnel as a responder under attack: wrong keys get no answer at all,
# replayed handshake initiations and data packets have no effect, an inner
# source outside the sender's AllowedIPs is not delivered, and a handshake
# flood is answered with cookie replies while a real peer still gets in.
#
#    p2p-$$-c                 p2p-$$-a                        p2p-$$-b
#  ┌──────────────────┐     ┌──────────────────────┐     ┌────────────────────────────┐
#  │ p2p-tunnel tsc$$ │     │ p2p-tunnel  tsa$$    │     │ relay.py                   │
#  │ 10.100.0.3 (-T20)│     │ 10.100.0.1/24        │     │ 10.99.0.2:5000  <->  127.0.0.1:5001
#  │ flood.py         │     │ UDP 51820            │     │ (and 10.99.0.2:5002)  ^    │
#  │                  │     │                      │     │                       │    │
#  │ vc 10.99.1.2 ────┼─────┼─ vc 10.99.1.1        │     │ wireguard-go tsb$$ ───┘    │
#  │                  │     │ vb 10.99.0.1 ────────┼─────┼─ vb 10.99.0.2              │
#  └──────────────────┘     └──────────────────────┘     │ 10.100.0.2/24 (+.99)       │
#                                                         └────────────────────────────┘
#
# How it is observed, without a packet capture tool:
# - "no response at all": p2p-tunnel is the only thing in namespace a that
#   uses UDP, so the namespace's own Udp InDatagrams/OutDatagrams counters
#   (/proc/net/snmp read inside it) count exactly what it received and sent.
#   The wrong-key initiator (c) retransmits every 250 ms (-T 20), so we wait
#   until a has received several initiations and then require that it sent
#   nothing. Twice: c's key unknown to a; then c known to a but using a
#   wrong public key for a (so MAC1 is wrong too). A last step fixes the key
#   and requires an answer, so the same observation can see a response when
#   there is one.
# - replays: the legitimate peer b (wireguard-go) reaches a only through a
#   small UDP relay (relay.py) that counts messages by type and direction and
#   can hold back the next message of a type instead of forwarding it, then
#   send the held copy to a on request ("inject"), as often as asked. The
#   first injection of a held message is its first delivery: it must work
#   (a answers the initiation; the data packet's inner ping reaches a's TUN
#   device), which proves the injection path; the second one, and a third
#   sent from another source port of the relay, are replays and must change
#   nothing (no handshake response, no delivery, no endpoint change). To know a has processed the replay before counting,
#   a fresh ping from b follows it through the same relay and socket: a reads
#   its UDP socket in order, so when that ping's reply is back the replay has
#   been handled. Delivery to the TUN device is a's interface rx_packets
#   counter (only p2p-tunnel writes to it; keepalives are not written).
# - AllowedIPs: b pings a from a second address 10.100.0.99 that a's
#   AllowedIPs for b (10.100.0.2/32) do not cover. The packets reach a and
#   authenticate (a's rx bytes for b grow), but a's TUN rx_packets must not
#   move, and no reply comes back; then a ping from 10.100.0.2 moves it by one.
# - flood: flood.py sends ~1000 initiations/s with a valid MAC1 (random
#   contents otherwise) from c; above 64 handshake messages per second a
#   answers with cookie replies (type 3, 64 bytes, receiver = our sender
#   index), and nothing else comes back. Meanwhile a freshly started b must
#   complete a handshake (a's latest handshake for b, reset to 0 before,
#   becomes set). Whether b's own first initiation draws a cookie reply (and
#   b retries with MAC2) depends on where in a's one-second window it lands,
#   so that is printed as a comment, not checked.
# p2p-tunnel runs with -U (its userspace WireGuard, which these tests are
# about) even where the kernel module exists.
# shellcheck disable=SC2015,SC2016,SC2317 # "a && b || fail"; awk programs; functions run from traps and checks
. "$(dirname "$0")/../lib.sh"

need_root "tunnel-security"
for t in ip wg wireguard-go ping socat timeout /usr/bin/python3; do
	if ! command -v "$t" >/dev/null 2>&1; then
		skip "tunnel-security: needs $t (make deps)"
		exit 0
	fi
done
if [ ! -c /dev/net/tun ]; then
	skip "tunnel-security: needs /dev/net/tun"
	exit 0
fi

P=$$
A=p2p-$P-a
B=p2p-$P-b
C=p2p-$P-c
IA=tsa$P
IB=tsb$P
IB2=tsb${P}n
IC=tsc$P
T=$(scratch)
pids=

cleanup() {
	for pid in $pids; do kill "$pid" 2>/dev/null; done
	# Anything still running in our namespaces is ours (a listener of an
	# interrupted transfer, say).
	for n in "$A" "$B" "$C"; do ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null; done
	for n in "$A" "$B" "$C"; do ip netns del "$n" 2>/dev/null; done
	for i in "$IA" "$IB" "$IB2" "$IC"; do rm -f "/var/run/wireguard/$i.sock"; done
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

stop_peer() { # PID NAME: SIGTERM, exit status 0
	kill -TERM "$1" 2>/dev/null
	if ! wait_for 10 gone "$1"; then
		fail "$2 exits on SIGTERM"
		kill -KILL "$1" 2>/dev/null
	fi
	wait "$1"
	check "$2 exits 0 on SIGTERM" [ "$?" -eq 0 ]
}

# udp NS FIELD: the namespace's Udp counter FIELD (InDatagrams, OutDatagrams).
udp() {
	ip netns exec "$1" awk -v f="$2" '$1 == "Udp:" {
		if (!c) { for (i = 2; i <= NF; i++) if ($i == f) c = i; next }
		print $c; exit }' /proc/net/snmp
}
tun_rx() { ip netns exec "$A" cat "/sys/class/net/$IA/statistics/rx_packets"; }
# peer_field IFACE NS PUB N: field N of the peer's `wg show dump` line.
peer_field() {
	ip netns exec "$2" wg show "$1" dump | awk -F'\t' -v k="$3" -v n="$4" 'NR > 1 && $1 == k { print $n }'
}
relay() { echo "$*" | timeout 5 socat - "UNIX-CONNECT:$T/relay.ctl"; }
# relay_count DIR TYPE (DIR b2a or a2b; b2a_mac2 with TYPE -)
relay_count() {
	relay stats | /usr/bin/python3 -c 'import json, sys
d = json.load(sys.stdin)[sys.argv[1]]
print(d if isinstance(d, int) else d.get(sys.argv[2], 0))' "$1" "$2"
}
ge() { [ "$($1)" -ge "$2" ]; }    # ge "COMMAND ARGS" N (word-split on purpose)
held() { [ "$(relay held)" != no ]; }
handshake_set() { [ "$(peer_field "$IA" "$A" "$pub_b" 5)" -gt 0 ] 2>/dev/null; }
b_ping() { quiet ip netns exec "$B" ping -c 1 -W 2 "$@" 10.100.0.1; }

cat >"$T/relay.py" <<'EOF'
# relay.py A_ADDR A_PORT A_SIDE_ADDR A_SIDE_PORT B_SIDE_ADDR B_SIDE_PORT ALT_PORT CTL
# Forwards UDP between peer b (who sends to B_SIDE) and peer a, counting
# WireGuard messages by type; "hold T" keeps the next b->a message of type
# T (data: only one with a payload) instead of forwarding it, "inject" sends
# the held copy to a from A_SIDE, "inject-alt" from A_SIDE_ADDR:ALT_PORT.
import json, os, select, socket, sys
a_ep = (sys.argv[1], int(sys.argv[2]))
sa = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sa.bind((sys.argv[3], int(sys.argv[4])))
sb = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sb.bind((sys.argv[5], int(sys.argv[6])))
alt = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
alt.bind((sys.argv[3], int(sys.argv[7])))
ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ctl.bind(sys.argv[8])
ctl.listen(8)
b_ep = None
stats = {"b2a": {}, "a2b": {}, "b2a_mac2": 0}
hold = held = None

def count(way, data):
    t = str(data[0]) if data else "empty"
    stats[way][t] = stats[way].get(t, 0) + 1

while True:
    r = select.select([sa, sb, alt, ctl], [], [])[0]
    if sb in r:
        data, b_ep = sb.recvfrom(65535)
        count("b2a", data)
        if len(data) == 148 and data[0] == 1 and any(data[132:]):
            stats["b2a_mac2"] += 1
        if hold is not None and data and data[0] == hold and (hold != 4 or len(data) > 32):
            held, hold = data, None
        else:
            sa.sendto(data, a_ep)
    for s in (sa, alt):
        if s in r:
            data = s.recv(65535)
            count("a2b", data)
            if b_ep:
                sb.sendto(data, b_ep)
    if ctl in r:
        c = ctl.accept()[0]
        cmd = c.recv(256).decode().split() or ["none"]
        reply = "ok"
        if cmd[0] == "stats":
            reply = json.dumps(stats)
        elif cmd[0] == "hold":
            hold, held = int(cmd[1]), None
        elif cmd[0] == "held":
            reply = "yes %d" % len(held) if held else "no"
        elif cmd[0] in ("inject", "inject-alt") and held:
            (sa if cmd[0] == "inject" else alt).sendto(held, a_ep)
        elif cmd[0] != "ping":
            reply = "error"
        c.sendall(reply.encode() + b"\n")
        c.close()
EOF

cat >"$T/flood.py" <<'EOF'
# flood.py ADDR PORT RESPONDER_PUB RATE MAX_SECONDS STATUS STOPFILE
# Handshake initiations with a valid MAC1 and random everything else, RATE a
# second, until STOPFILE exists; STATUS (JSON) says what was sent and what
# came back: cookie replies (type 3, 64 bytes, to one of our sender indexes)
# and anything else.
import base64, hashlib, json, os, socket, sys, time
target = (sys.argv[1], int(sys.argv[2]))
mac1_key = hashlib.blake2s(b"mac1----" + base64.b64decode(sys.argv[3])).digest()
rate, limit, status, stop = int(sys.argv[4]), float(sys.argv[5]), sys.argv[6], sys.argv[7]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
senders = set()
st = {"sent": 0, "cookies": 0, "other": 0, "seconds": 0.0, "done": False}
t0 = time.monotonic()
last = -1.0

def write():
    with open(status + ".tmp", "w") as f:
        json.dump(st, f)
    os.rename(status + ".tmp", status)

while True:
    now = time.monotonic() - t0
    st["seconds"] = round(now, 3)
    if now >= limit or os.path.exists(stop):
        break
    while st["sent"] < int(now * rate):
        sender = os.urandom(4)
        body = b"\x01\x00\x00\x00" + sender + os.urandom(32 + 48 + 28)
        msg = body + hashlib.blake2s(body, key=mac1_key, digest_size=16).digest() + bytes(16)
        try:
            s.sendto(msg, target)
        except BlockingIOError:
            break
        senders.add(sender)
        st["sent"] += 1
    while True:
        try:
            data = s.recv(2048)
        except BlockingIOError:
            break
        if len(data) == 64 and data[:4] == b"\x03\x00\x00\x00" and data[4:8] in senders:
            st["cookies"] += 1
        else:
            st["other"] += 1
    if now - last >= 0.2:
        write()
        last = now
    time.sleep(0.002)
st["done"] = True
write()
EOF

# ---- the namespaces, keys and peers ----
ip netns add "$A" && ip netns add "$B" && ip netns add "$C" &&
	ip link add vb netns "$A" type veth peer name vb netns "$B" &&
	ip link add vc netns "$A" type veth peer name vc netns "$C" &&
	ip -n "$A" addr add 10.99.0.1/24 dev vb && ip -n "$A" addr add 10.99.1.1/24 dev vc &&
	ip -n "$B" addr add 10.99.0.2/24 dev vb && ip -n "$C" addr add 10.99.1.2/24 dev vc &&
	ip -n "$A" link set vb up && ip -n "$A" link set vc up &&
	ip -n "$B" link set vb up && ip -n "$C" link set vc up &&
	ip -n "$A" link set lo up && ip -n "$B" link set lo up && ip -n "$C" link set lo up ||
	{ fail "building the namespaces"; exit 1; }

priv_a=$(wg genkey) && priv_b=$(wg genkey) && priv_c=$(wg genkey) && priv_x=$(wg genkey) &&
	pub_a=$(echo "$priv_a" | wg pubkey) && pub_b=$(echo "$priv_b" | wg pubkey) &&
	pub_c=$(echo "$priv_c" | wg pubkey) && pub_x=$(echo "$priv_x" | wg pubkey) ||
	{ fail "wg genkey"; exit 1; }

# a knows only b, and has no endpoint for it: a never initiates here.
printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.100.0.2/32\n' \
	"$priv_a" "$pub_b" >"$T/a.conf"
# c has a key a does not know.
printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.100.0.1/32\nEndpoint = 10.99.1.1:51820\n' \
	"$priv_c" "$pub_a" >"$T/c.conf"
# b reaches a through the relay.
printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.100.0.1/32\nEndpoint = 127.0.0.1:5001\n' \
	"$priv_b" "$pub_a" >"$T/b.conf"

ip netns exec "$A" p2p-tunnel -U -i "$IA" -c "$T/a.conf" -a 10.100.0.1/24 2>"$T/a.log" &
pid_a=$!
pids="$pids $pid_a"
ip netns exec "$C" p2p-tunnel -U -T 20 -i "$IC" -c "$T/c.conf" -a 10.100.0.3/24 2>"$T/c.log" &
pid_c=$!
pids="$pids $pid_c"
if ! wait_for 10 ip netns exec "$A" wg show "$IA" || ! wait_for 10 ip netns exec "$C" wg show "$IC"; then
	fail "p2p-tunnel starts on a and c"
	cat "$T/a.log" "$T/c.log"
	exit 1
fi

# ---- wrong keys: no response at all ----
t_start=$(date +%s)
# wrong_key LABEL: c pings a once (c's p2p-tunnel retransmits the initiation
# every 250 ms); a must receive several initiations and send nothing.
wrong_key() {
	_in=$(udp "$A" InDatagrams) _out=$(udp "$A" OutDatagrams)
	quiet ip netns exec "$C" ping -c 1 -W 1 10.100.0.1
	if ! wait_for 10 ge "udp $A InDatagrams" $((_in + 4)); then
		fail "$1: c's initiations reach a ($(($(udp "$A" InDatagrams) - _in)) received)"
		return
	fi
	_sent=$(($(udp "$A" OutDatagrams) - _out))
	check "$1: a received $(($(udp "$A" InDatagrams) - _in)) initiations and sent nothing ($_sent)" \
		[ "$_sent" -eq 0 ]
	check "$1: c has no handshake" [ "$(peer_field "$IC" "$C" "${2:-$pub_a}" 5)" = 0 ]
}
wrong_key "unknown initiator key (a does not know c)"

# a knows c now, but c has the wrong public key for a (MAC1 and the
# encryption of c's static key are both for another key).
ip netns exec "$A" wg set "$IA" peer "$pub_c" allowed-ips 10.100.0.3/32 &&
	ip netns exec "$C" wg set "$IC" peer "$pub_a" remove peer "$pub_x" \
		allowed-ips 10.100.0.1/32 endpoint 10.99.1.1:51820 ||
	fail "wg set for the wrong responder key"
wrong_key "wrong responder key at the initiator (a knows c)" "$pub_x"

# Control: with the right key the same initiator gets an answer.
ip netns exec "$C" wg set "$IC" peer "$pub_x" remove peer "$pub_a" \
	allowed-ips 10.100.0.1/32 endpoint 10.99.1.1:51820 || fail "wg set for the right key"
out0=$(udp "$A" OutDatagrams)
check "control: with the right keys c's ping is answered" \
	wait_for 10 quiet ip netns exec "$C" ping -c 1 -W 1 10.100.0.1
check "control: a sent UDP to c then ($(($(udp "$A" OutDatagrams) - out0)) datagrams)" \
	[ "$(udp "$A" OutDatagrams)" -gt "$out0" ]
ip netns exec "$A" wg set "$IA" peer "$pub_c" remove || fail "removing c from a"
stop_peer "$pid_c" "p2p-tunnel on c"

# ---- replayed handshake initiation ----
ip netns exec "$B" /usr/bin/python3 "$T/relay.py" 10.99.0.1 51820 10.99.0.2 5000 \
	127.0.0.1 5001 5002 "$T/relay.ctl" 2>"$T/relay.log" &
pids="$pids $!"
wait_for 10 relay ping || { fail "the relay starts"; cat "$T/relay.log"; exit 1; }
relay hold 1 >/dev/null
ip netns exec "$B" wireguard-go -f "$IB" >"$T/b.log" 2>&1 &
pid_b=$!
pids="$pids $pid_b"
if ! wait_for 10 ip netns exec "$B" wg show "$IB" ||
	! ip netns exec "$B" wg setconf "$IB" "$T/b.conf" ||
	! ip -n "$B" addr add 10.100.0.2/24 dev "$IB" || ! ip -n "$B" link set "$IB" up; then
	fail "wireguard-go starts on b"
	cat "$T/b.log"
	exit 1
fi
# b's first initiation is held by the relay; its ping waits for the handshake.
ip netns exec "$B" ping -c 1 -W 5 10.100.0.1 >/dev/null 2>&1 &
check "relay holds b's first handshake initiation" wait_for 10 held
relay inject >/dev/null
check "the held initiation, delivered once, is answered" wait_for 5 ge "relay_count a2b 2" 1
check "the handshake completes: b pings a" wait_for 10 b_ping
resp0=$(relay_count a2b 2)
hs0=$(peer_field "$IA" "$A" "$pub_b" 5)
relay inject >/dev/null      # the same initiation again: a replay
relay inject-alt >/dev/null  # and again, from another address
check "b pings a after the replayed initiation" b_ping
check "replayed initiation: no handshake response from a ($(relay_count a2b 2) in all)" \
	[ "$(relay_count a2b 2)" -eq "$resp0" ]
check "replayed initiation: a's endpoint for b unchanged" \
	[ "$(peer_field "$IA" "$A" "$pub_b" 3)" = 10.99.0.2:5000 ]
check "replayed initiation: a's latest handshake unchanged" \
	[ "$(peer_field "$IA" "$A" "$pub_b" 5)" = "$hs0" ]

# ---- replayed data packet ----
relay hold 4 >/dev/null
quiet ip netns exec "$B" ping -c 1 -W 1 10.100.0.1
check "relay holds a data packet from b ($(relay held))" wait_for 5 held
rx0=$(tun_rx)
relay inject >/dev/null
check "the held data packet, delivered once, reaches a's TUN device" wait_for 5 ge tun_rx $((rx0 + 1))
rx1=$(tun_rx)
relay inject >/dev/null
relay inject-alt >/dev/null
check "b pings a after the replayed data packet" b_ping
check "replayed data packet: a's TUN rx moved only by the later ping ($rx1 -> $(tun_rx))" \
	[ "$(tun_rx)" -eq $((rx1 + 1)) ]
check "replayed data packet: a's endpoint for b unchanged" \
	[ "$(peer_field "$IA" "$A" "$pub_b" 3)" = 10.99.0.2:5000 ]

# ---- inner source outside the sender's AllowedIPs ----
ip -n "$B" addr add 10.100.0.99/24 dev "$IB" || fail "adding 10.100.0.99 on b"
rx0=$(tun_rx)
bytes0=$(peer_field "$IA" "$A" "$pub_b" 6)
if quiet ip netns exec "$B" ping -c 3 -i 0.2 -W 1 -I 10.100.0.99 10.100.0.1; then
	fail "ping from 10.100.0.99 (not in a's AllowedIPs for b) gets no reply"
else
	ok "ping from 10.100.0.99 (not in a's AllowedIPs for b) gets no reply"
fi
# Three 84-byte pings are 3 x 128 bytes of transport data.
check "the spoofed-source packets reached a and authenticated" \
	wait_for 5 ge "peer_field $IA $A $pub_b 6" $((bytes0 + 384))
check "b pings a from 10.100.0.2" b_ping
check "spoofed source: a's TUN rx moved only by the later ping ($rx0 -> $(tun_rx))" \
	[ "$(tun_rx)" -eq $((rx0 + 1)) ]

# ---- handshake flood ----
stop_peer "$pid_b" "wireguard-go on b"
# Forget b's handshake on a: its latest handshake reads 0 until a new one.
ip netns exec "$A" wg set "$IA" peer "$pub_b" remove &&
	ip netns exec "$A" wg set "$IA" peer "$pub_b" allowed-ips 10.100.0.2/32 ||
	fail "resetting b on a"
check "a's latest handshake for b is reset" [ "$(peer_field "$IA" "$A" "$pub_b" 5)" = 0 ]
cookies_b0=$(relay_count a2b 3)
inits_b0=$(relay_count b2a 1)
mac2_b0=$(relay_count b2a_mac2 -)
flood_json() {
	/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
		"$T/flood.json" "$1" 2>/dev/null
}
ip netns exec "$C" /usr/bin/python3 "$T/flood.py" 10.99.1.1 51820 "$pub_a" 1000 60 \
	"$T/flood.json" "$T/flood.stop" 2>"$T/flood.log" &
pid_f=$!
pids="$pids $pid_f"
check "the flood draws cookie replies" wait_for 10 ge "flood_json cookies" 100
ip netns exec "$B" wireguard-go -f "$IB2" >"$T/b2.log" 2>&1 &
pid_b=$!
pids="$pids $pid_b"
if ! wait_for 10 ip netns exec "$B" wg show "$IB2" ||
	! ip netns exec "$B" wg setconf "$IB2" "$T/b.conf" ||
	! ip -n "$B" addr add 10.100.0.2/24 dev "$IB2" || ! ip -n "$B" link set "$IB2" up; then
	fail "wireguard-go restarts on b"
	cat "$T/b2.log"
fi
ip netns exec "$B" ping -c 1 -W 30 10.100.0.1 >/dev/null 2>&1 &
pids="$pids $!"
check "under the flood b completes a handshake with a" wait_for 30 handshake_set
check "under the flood b pings a" b_ping
flood_alive=no
alive "$pid_f" && flood_alive=yes
touch "$T/flood.stop"
wait_for 10 gone "$pid_f"
check "the flood ran until stopped" [ "$flood_alive" = yes ]
sent=$(flood_json sent) cookies=$(flood_json cookies) other=$(flood_json other)
secs=$(flood_json seconds)
rate=$(/usr/bin/python3 -c 'import sys; print(int(float(sys.argv[1]) / float(sys.argv[2])))' "$sent" "$secs")
echo "# flood: $sent initiations in $secs s ($rate/s), $cookies cookie replies, $other other replies"
check "the flood rate was above 64/s ($rate/s)" [ "$rate" -gt 64 ]
check "most flood initiations drew a cookie reply ($cookies of $sent)" [ $((cookies * 2)) -ge "$sent" ]
check "nothing but cookie replies came back to the flood ($other)" [ "$other" -eq 0 ]
echo "# legitimate peer during the flood: $(($(relay_count b2a 1) - inits_b0)) initiations" \
	"($(($(relay_count b2a_mac2 -) - mac2_b0)) with MAC2), $(($(relay_count a2b 3) - cookies_b0)) cookie replies"

stop_peer "$pid_b" "wireguard-go on b"
check "p2p-tunnel on a still runs" alive "$pid_a"
stop_peer "$pid_a" "p2p-tunnel on a"
if grep -qi 'error\|fatal' "$T/a.log"; then sed 's/^/# a: /' "$T/a.log" | tail -n 10; fi
echo "# tunnel-security: $(($(date +%s) - t_start)) s"
finish
