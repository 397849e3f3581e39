#!/bin/sh
# Roaming: the peer's address changes in the middle of a transfer, and
# p2p-tunnel follows it, learning the new endpoint from the peer's
# authenticated packets; `wg show` shows the new endpoint.
#
#    p2p-$$-a                   p2p-$$-r (forwarding)                  p2p-$$-b
#  ┌───────────────────┐      ┌──────────────────────┐      ┌─────────────────────────┐
#  │ p2p-tunnel trN$$a │      │ nat.py (case 2)      │      │ trN$$b                  │
#  │ 10.100.0.1/24     │      │  rb1 10.99.1.254/24 ─┼──────┼─ b1 10.99.1.2  (path 1) │
#  │ veth 10.99.0.1/24─┼──────┼─ ra 10.99.0.254/24   │      │ case 1: p2p-tunnel      │
#  │ default via .254  │      │     10.99.0.253/24   │      │ case 2: wireguard-go    │
#  └───────────────────┘      │  rb2 10.99.2.254/24 ─┼──────┼─ b2 10.99.2.2  (path 2) │
#                             └──────────────────────┘      │ 10.100.0.2/24           │
#                                                           └─────────────────────────┘
#
# a has no Endpoint for b: all it knows of b's address it learned from b's
# packets. b moves twice: once while b sends 200 MB to a over TCP (after a
# has received 40 MB; the transfer must complete, sha256 compared, with at
# least 50 MB of it after the move), once while a sends to b with iperf3
# -t 4 (after 30 MB; b then sends only ACKs, and they must be enough for a
# to follow). After each move a's endpoint for b, in `wg show` and `wg show
# dump`, must be b's new address.
#
# A move is make-before-break: b's packets start leaving from the new
# address while the old one still receives; once a has followed, the old
# address goes away and the traffic must go on. (Break-before-make while b
# only sends ACKs can stall any WireGuard: if nothing a sent reaches b after
# the break, b has nothing to answer, and a has nothing to learn from.)
#
# case 1, b is p2p-tunnel and its own address changes: b's route to a goes
#   over path 1 or path 2; moving routes b over the other path; retiring the
#   old path takes its link down and its address away. Endpoints:
#   10.99.1.2:51820 -> 10.99.2.2:51820 -> 10.99.1.2:51820.
# case 2, b is wireguard-go behind a NAT that rebinds: b sends to nat.py on
#   r (10.99.1.254:51820), which forwards to a from an outside socket;
#   moving b sends from a new outside socket (10.99.0.253, then 10.99.0.254,
#   each on a fresh port), retiring closes the old one, as a NAT whose
#   mapping changed does. wireguard-go is not used for case 1: this version
#   (v0.0.20220316) keeps a "sticky" source address and interface for its
#   sends and forgets them only when sendmsg fails with EINVAL; when the
#   address is removed this kernel answers ENETUNREACH, so wireguard-go goes
#   silent until something reaches it at the address it no longer has,
#   which a cannot know. That is wireguard-go's behaviour, not p2p-tunnel's.
# p2p-tunnel runs with -U (its userspace WireGuard, which these tests are
# about) even where the kernel module exists.
# shellcheck disable=SC2015,SC2317 # "a && b || fail"; functions run from traps and checks
. "$(dirname "$0")/../lib.sh"

need_root "tunnel-roaming"
for t in ip ss wg wireguard-go iperf3 ping socat sha256sum timeout /usr/bin/python3; do
	if ! command -v "$t" >/dev/null 2>&1; then
		skip "tunnel-roaming: needs $t (make deps)"
		exit 0
	fi
done
if [ ! -c /dev/net/tun ]; then
	skip "tunnel-roaming: needs /dev/net/tun"
	exit 0
fi

P=$$
A=p2p-$P-a
B=p2p-$P-b
R=p2p-$P-r
T=$(scratch)
SIZE_MB=200
pids=
ifaces=

cleanup() {
	for pid in $pids; do kill "$pid" 2>/dev/null; done
	# Anything still running in our namespaces is ours (a listener of an
	# interrupted transfer, say).
	for n in "$A" "$B" "$R"; do ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null; done
	for n in "$A" "$B" "$R"; do ip netns del "$n" 2>/dev/null; done
	for i in $ifaces; do rm -f "/var/run/wireguard/$i.sock"; done
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
listening() { [ -n "$(ip netns exec "$1" ss -Hltn "sport = :$2")" ]; }
ge() { [ "$($1)" -ge "$2" ] 2>/dev/null; }  # ge "COMMAND ARGS" N
stop_peer() { # PID NAME: SIGTERM, exit status 0
	kill -TERM "$1" 2>/dev/null
	if ! wait_for 10 gone "$1"; then
		fail "$2 exits on SIGTERM"
		kill -KILL "$1" 2>/dev/null
	fi
	wait "$1"
	check "$2 exits 0 on SIGTERM" [ "$?" -eq 0 ]
}
# a_field N: field N of a's `wg show dump` line for b (3 endpoint, 6 rx, 7 tx).
a_field() {
	ip netns exec "$A" wg show "$ia" dump | awk -F'\t' -v k="$pub_b" -v n="$1" 'NR > 1 && $1 == k { print $n }'
}
a_rx() { a_field 6; }
a_tx() { a_field 7; }
endpoint_is() { [ "$(a_field 3)" = "$1" ]; }
nat() { echo "$*" | timeout 5 socat - "UNIX-CONNECT:$T/nat.ctl"; }

# use_path N: route b to a over path N, then take the other path away.
use_path() {
	_o=$((3 - $1))
	ip -n "$B" link set "b$1" up &&
		ip -n "$B" addr replace "10.99.$1.2/24" dev "b$1" &&
		ip -n "$B" route replace 10.99.0.0/24 via "10.99.$1.254" dev "b$1" &&
		ip -n "$B" link set "b$_o" down &&
		ip -n "$B" addr flush dev "b$_o"
}

# move MODE N: case 1 (path): b's traffic to a over path N; case 2 (nat):
# the NAT sends from a new socket on 10.99.0.253 (N 2) or 10.99.0.254 (N 1).
# Sets "moved_to" to the endpoint a should now see.
move() {
	if [ "$1" = path ]; then
		ip -n "$B" link set "b$2" up &&
			ip -n "$B" addr replace "10.99.$2.2/24" dev "b$2" &&
			ip -n "$B" route replace 10.99.0.0/24 via "10.99.$2.254" dev "b$2" &&
			moved_to=10.99.$2.2:51820
	else
		moved_to=$(nat rebind "10.99.0.25$((5 - $2))") && [ -n "$moved_to" ]
	fi
}
# retire MODE N: after a move to N, the old address goes away.
retire() {
	if [ "$1" = path ]; then use_path "$2"; else [ "$(nat expire)" = "$moved_to" ]; fi
}

# wg_show_endpoint LABEL EP: the human-readable `wg show` agrees.
wg_show_endpoint() {
	_out=$(ip netns exec "$A" wg show "$ia")
	case $_out in
	*"peer: $pub_b"*"endpoint: $2"*) ok "$1: wg show $ia: endpoint: $2" ;;
	*) fail "$1: wg show $ia: endpoint: $2: $_out" ;;
	esac
}

cat >"$T/nat.py" <<'EOF'
# nat.py INSIDE_ADDR INSIDE_PORT OUTSIDE_ADDR DEST_ADDR DEST_PORT CTL
# Forwards b's datagrams (to INSIDE) to DEST from an outside socket, and the
# replies back. "rebind ADDR": send from a new outside socket on ADDR (a
# fresh port), the old ones still receive; "expire": close the old ones.
# Every command answers with the current outside socket's ADDR:PORT.
import select, socket, sys

def udp(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((addr, port))
    s.setblocking(False)
    return s

inside = udp(sys.argv[1], int(sys.argv[2]))
out = udp(sys.argv[3], 0)
dest = (sys.argv[4], int(sys.argv[5]))
ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ctl.bind(sys.argv[6])
ctl.listen(8)
olds = []
b = None

def pump(src, dst, to, learn):
    global b
    for _ in range(256):
        try:
            data, frm = src.recvfrom(65535)
        except BlockingIOError:
            return
        except OSError:
            continue
        if learn:
            b = frm
        if to:
            try:
                dst.sendto(data, to)
            except OSError:
                pass

while True:
    r = select.select([inside, out, ctl] + olds, [], [])[0]
    if inside in r:
        pump(inside, out, dest, True)
    for s in [out] + olds:
        if s in r:
            pump(s, inside, b, False)
    if ctl in r:
        c = ctl.accept()[0]
        cmd = c.recv(256).decode().split() or ["none"]
        if cmd[0] == "rebind" and len(cmd) == 2:
            olds.append(out)
            out = udp(cmd[1], 0)
        elif cmd[0] == "expire":
            for s in olds:
                s.close()
            olds = []
        c.sendall(("%s:%d\n" % out.getsockname()).encode())
        c.close()
EOF

# run_case N KIND MODE: KIND (p2p-tunnel or wireguard-go) on b, moving by
# MODE (path or nat).
run_case() {
	_n=$1 _kind=$2 _mode=$3
	ia=tr$_n${P}a ib=tr$_n${P}b
	ifaces="$ifaces $ia $ib"
	_l="$_n: $_kind roams ($_mode)"
	use_path 1 || { fail "$_l: path 1"; return; }
	_conf=$T/b.conf
	_pn=
	if [ "$_mode" = nat ]; then
		_conf=$T/b-nat.conf
		rm -f "$T/nat.ctl"
		ip netns exec "$R" /usr/bin/python3 "$T/nat.py" 10.99.1.254 51820 10.99.0.254 \
			10.99.0.1 51820 "$T/nat.ctl" 2>"$T/nat.log" &
		_pn=$!
		pids="$pids $_pn"
		wait_for 10 nat where || { fail "$_l: nat.py starts"; cat "$T/nat.log"; return; }
	fi
	ip netns exec "$A" p2p-tunnel -U -i "$ia" -c "$T/a.conf" -a 10.100.0.1/24 2>"$T/$ia.log" &
	_pa=$!
	pids="$pids $_pa"
	if [ "$_kind" = p2p-tunnel ]; then
		ip netns exec "$B" p2p-tunnel -U -i "$ib" -c "$_conf" -a 10.100.0.2/24 2>"$T/$ib.log" &
		_pb=$!
		pids="$pids $_pb"
		wait_for 10 ip netns exec "$B" wg show "$ib"
	else
		ip netns exec "$B" wireguard-go -f "$ib" >"$T/$ib.log" 2>&1 &
		_pb=$!
		pids="$pids $_pb"
		wait_for 10 ip netns exec "$B" wg show "$ib" &&
			ip netns exec "$B" wg setconf "$ib" "$_conf" &&
			ip -n "$B" addr add 10.100.0.2/24 dev "$ib" && ip -n "$B" link set "$ib" up
	fi
	_rc=$?
	if [ "$_rc" -ne 0 ] || ! wait_for 10 ip netns exec "$A" wg show "$ia"; then
		fail "$_l: both sides start"
		tail -n 5 "$T/$ia.log" "$T/$ib.log"
		return
	fi
	if [ "$_mode" = nat ]; then _ep0=$(nat where); else _ep0=10.99.1.2:51820; fi
	check "$_l: b pings a" quiet ip netns exec "$B" ping -c 2 -i 0.2 -W 3 10.100.0.1
	check "$_l: a learned b's endpoint $_ep0" endpoint_is "$_ep0"

	# b -> a, 200 MB; b moves after 40 MB.
	rm -f "$T/recv.sum"
	( ip netns exec "$A" socat -u TCP-LISTEN:5001,reuseaddr - | sha256sum >"$T/recv.sum" ) &
	_rcv=$!
	pids="$pids $_rcv"
	wait_for 10 listening "$A" 5001 || fail "$_l: receiver listens"
	_rx0=$(a_rx)
	timeout 300 ip netns exec "$B" socat -u "OPEN:$T/data" TCP:10.100.0.1:5001 &
	_snd=$!
	pids="$pids $_snd"
	_ep1=none
	if wait_for 60 ge a_rx $((_rx0 + 40 * 1048576)) && alive "$_snd"; then
		_rx1=$(a_rx)
		if move "$_mode" 2; then
			_ep1=$moved_to
			ok "$_l: b moved to $_ep1 after $(((_rx1 - _rx0) / 1048576)) MB"
		else
			fail "$_l: moving b"
		fi
		check "$_l: a follows b to $_ep1 during the transfer" wait_for 10 endpoint_is "$_ep1"
		check "$_l: b's old address goes away" retire "$_mode" 2
	else
		fail "$_l: the transfer reaches 40 MB with the sender still running"
		_rx1=$_rx0
	fi
	wait_for 300 gone "$_snd"
	wait "$_snd"
	_src=$?
	wait_for 30 gone "$_rcv"
	_got=$(cut -d' ' -f1 "$T/recv.sum" 2>/dev/null)
	check "$_l: $SIZE_MB MB b -> a complete across the move, sha256 matches" \
		[ "$_src/$_got" = "0/$data_sum" ]
	_after=$((($(a_rx) - _rx1) / 1048576))
	check "$_l: $_after MB of it came after the move (want 50 or more)" [ "$_after" -ge 50 ]
	check "$_l: wg show dump: endpoint $_ep1" endpoint_is "$_ep1"
	wg_show_endpoint "$_l" "$_ep1"
	check "$_l: a pings b at its new address" quiet ip netns exec "$A" ping -c 2 -i 0.2 -W 2 10.100.0.2

	# a -> b with iperf3; b moves again after 30 MB.
	ip netns exec "$B" iperf3 -s -1 -p 5201 >"$T/iperf-server.log" 2>&1 &
	pids="$pids $!"
	if wait_for 10 listening "$B" 5201; then
		_tx0=$(a_tx)
		timeout 60 ip netns exec "$A" iperf3 -c 10.100.0.2 -p 5201 -t 4 -J >"$T/iperf.json" 2>&1 &
		_ip=$!
		pids="$pids $_ip"
		_ep2=none
		if wait_for 20 ge a_tx $((_tx0 + 30 * 1048576)) && alive "$_ip"; then
			if move "$_mode" 1; then
				_ep2=$moved_to
				ok "$_l: b moved to $_ep2 during iperf3"
			else
				fail "$_l: moving b again"
			fi
			check "$_l: a follows b to $_ep2 from its ACKs" wait_for 10 endpoint_is "$_ep2"
			check "$_l: b's old address goes away" retire "$_mode" 1
		else
			fail "$_l: iperf3 sends 30 MB and still runs"
		fi
		wait_for 60 gone "$_ip"
		wait "$_ip"
		_irc=$?
		_mbps=$(/usr/bin/python3 -c 'import json, sys
print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e6))' "$T/iperf.json" 2>/dev/null)
		check "$_l: iperf3 -t 4 a -> b completes across the move (${_mbps:-?} Mbit/s)" \
			[ "$_irc" -eq 0 ]
		check "$_l: iperf3 throughput is not zero" [ "${_mbps:-0}" -gt 0 ]
		wg_show_endpoint "$_l" "$_ep2"
	else
		fail "$_l: iperf3 server listens"
	fi
	stop_peer "$_pa" "$_l: p2p-tunnel on a"
	stop_peer "$_pb" "$_l: $_kind on b"
	if [ -n "$_pn" ]; then
		kill "$_pn" 2>/dev/null
		wait_for 10 gone "$_pn"
	fi
}

ip netns add "$A" && ip netns add "$B" && ip netns add "$R" &&
	ip link add veth0 netns "$A" type veth peer name ra netns "$R" &&
	ip link add b1 netns "$B" type veth peer name rb1 netns "$R" &&
	ip link add b2 netns "$B" type veth peer name rb2 netns "$R" &&
	ip -n "$R" addr add 10.99.0.254/24 dev ra && ip -n "$R" addr add 10.99.0.253/24 dev ra &&
	ip -n "$R" addr add 10.99.1.254/24 dev rb1 && ip -n "$R" addr add 10.99.2.254/24 dev rb2 &&
	ip -n "$R" link set ra up && ip -n "$R" link set rb1 up && ip -n "$R" link set rb2 up &&
	ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1 &&
	ip -n "$A" addr add 10.99.0.1/24 dev veth0 && ip -n "$A" link set veth0 up &&
	ip -n "$A" route add default via 10.99.0.254 &&
	ip -n "$A" link set lo up && ip -n "$B" link set lo up && ip -n "$R" link set lo up ||
	{ fail "building the namespaces"; exit 1; }

priv_a=$(wg genkey) && priv_b=$(wg genkey) &&
	pub_a=$(echo "$priv_a" | wg pubkey) && pub_b=$(echo "$priv_b" | wg pubkey) ||
	{ fail "wg genkey"; exit 1; }
printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.100.0.2/32\n' \
	"$priv_a" "$pub_b" >"$T/a.conf"
printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.100.0.1/32\nEndpoint = %s\n' \
	"$priv_b" "$pub_a" 10.99.0.1:51820 >"$T/b.conf"
printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.100.0.1/32\nEndpoint = %s\n' \
	"$priv_b" "$pub_a" 10.99.1.254:51820 >"$T/b-nat.conf"
head -c "${SIZE_MB}M" /dev/urandom >"$T/data" || { fail "writing $SIZE_MB MB of test data"; exit 1; }
data_sum=$(sha256sum "$T/data" | cut -d' ' -f1)

t_start=$(date +%s)
run_case 1 p2p-tunnel path
run_case 2 wireguard-go nat
echo "# tunnel-roaming: $(($(date +%s) - t_start)) s"
finish
