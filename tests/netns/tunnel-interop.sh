#!/bin/sh
# p2p-tunnel against wireguard-go and against itself: each pair twice, once
# with each side sending the first handshake initiation. In every case: ping
# both ways, iperf3 -t 3 (throughput printed), a 200 MB TCP transfer checked
# with sha256sum, and `wg show` / `wg show dump` on every p2p-tunnel side.
#
#        p2p-$$-a                                    p2p-$$-b
#   ┌──────────────────────┐                  ┌──────────────────────┐
#   │ p2p-tunnel  tiN$$a   │                  │ tiN$$b  wireguard-go │
#   │ 10.100.0.1/24        │                  │ 10.100.0.2/24  (case │
#   │ UDP 51820            │                  │ UDP 51820  1,2) or   │
#   │        veth0 10.99.0.1/24 ─────── veth0 10.99.0.2/24 p2p-tunnel│
#   └──────────────────────┘                  │           (case 3,4) │
#                                             └──────────────────────┘
#
#   case 1: p2p-tunnel initiates, wireguard-go responds
#   case 2: wireguard-go initiates, p2p-tunnel responds
#   case 3: p2p-tunnel a initiates, p2p-tunnel b responds
#   case 4: p2p-tunnel b initiates, p2p-tunnel a responds
#
# "Who initiates" is made certain, not hoped for: the responder is given no
# Endpoint for its peer, so it cannot send an initiation; it learns the
# endpoint from the initiator's authenticated handshake. Every case starts
# fresh processes on fresh interface names (N is the case number), so no
# session carries over. The UAPI sockets /var/run/wireguard/tiN$$[ab].sock
# are shared with the host, hence the unique names. p2p-tunnel runs with
# -U (its userspace WireGuard, which these tests are about) even where the
# kernel module exists.
# shellcheck disable=SC2015,SC2317 # "a && b || fail"; functions run from traps and checks
. "$(dirname "$0")/../lib.sh"

need_root "tunnel-interop"
for t in ip ss wg wireguard-go iperf3 ping socat sha256sum timeout /usr/bin/python3; do
	if ! command -v "$t" >/dev/null 2>&1; then
		skip "tunnel-interop: needs $t (make deps)"
		exit 0
	fi
done
if [ ! -c /dev/net/tun ]; then
	skip "tunnel-interop: needs /dev/net/tun"
	exit 0
fi

P=$$
A=p2p-$P-a
B=p2p-$P-b
T=$(scratch)
SIZE_MB=200
pids=
ifaces=

cleanup() {
	for pid in $pids; do kill "$pid" 2>/dev/null; done
	# Anything still running in our namespaces is ours (a listener of an
	# interrupted transfer, say).
	for n in "$A" "$B"; do ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null; done
	ip netns del "$A" 2>/dev/null
	ip netns del "$B" 2>/dev/null
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
listening() { [ -n "$(ip netns exec "$1" ss -Hltn "sport = :$2")" ]; }
quiet() { "$@" >/dev/null 2>&1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# start_peer KIND NS IFACE ADDR CONF: p2p-tunnel (KIND p2p) or
# wireguard-go (KIND wg) configured from CONF (wg setconf format) with
# ADDR on IFACE; its pid in "started". Ready when `wg show IFACE` answers.
start_peer() {
	_kind=$1 _ns=$2 _if=$3 _addr=$4 _conf=$5
	ifaces="$ifaces $_if"
	if [ "$_kind" = p2p ]; then
		ip netns exec "$_ns" p2p-tunnel -U -i "$_if" -c "$_conf" -a "$_addr" 2>"$T/$_if.log" &
		started=$!
		pids="$pids $started"
		wait_for 10 ip netns exec "$_ns" wg show "$_if" || return 1
	else
		ip netns exec "$_ns" wireguard-go -f "$_if" >"$T/$_if.log" 2>&1 &
		started=$!
		pids="$pids $started"
		wait_for 10 ip netns exec "$_ns" wg show "$_if" || return 1
		ip netns exec "$_ns" wg setconf "$_if" "$_conf" &&
			ip -n "$_ns" addr add "$_addr" dev "$_if" &&
			ip -n "$_ns" link set "$_if" up
	fi
}

# stop_peer PID NAME: SIGTERM, and the exit status must be 0.
stop_peer() {
	kill -TERM "$1" 2>/dev/null
	if ! wait_for 10 gone "$1"; then
		fail "$2 exits on SIGTERM"
		kill -KILL "$1" 2>/dev/null
	fi
	wait "$1"
	check "$2 exits 0 on SIGTERM" [ "$?" -eq 0 ]
}

# conf FILE PRIV PEERPUB PEERADDR [ENDPOINT]
conf() {
	{
		printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n\n' "$2"
		printf '[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\n' "$3" "$4"
		if [ -n "${5:-}" ]; then printf 'Endpoint = %s\n' "$5"; fi
	} >"$1"
}

# iperf NS_CLIENT NS_SERVER SERVER_ADDR LABEL: a 3-second run; throughput > 0.
iperf() {
	ip netns exec "$2" iperf3 -s -1 -p 5201 >"$T/iperf-server.log" 2>&1 &
	_srv=$!
	pids="$pids $_srv"
	if ! wait_for 10 listening "$2" 5201; then
		fail "$4: iperf3 server listens"
		return
	fi
	timeout 30 ip netns exec "$1" iperf3 -c "$3" -p 5201 -t 3 -J >"$T/iperf.json" 2>&1
	_rc=$?
	wait_for 10 gone "$_srv"
	_bps=$(/usr/bin/python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(int(d["end"]["sum_received"]["bits_per_second"]))' "$T/iperf.json" 2>/dev/null)
	if [ "$_rc" -eq 0 ] && [ "${_bps:-0}" -gt 0 ]; then
		ok "$4: iperf3 -t 3: $((_bps / 1000000)) Mbit/s"
	else
		fail "$4: iperf3 -t 3 (exit $_rc): $(head -c 300 "$T/iperf.json")"
	fi
}

# transfer NS_SENDER NS_RECEIVER RECEIVER_ADDR LABEL: SIZE_MB over TCP,
# sha256 compared.
transfer() {
	rm -f "$T/recv.sum"
	( ip netns exec "$2" socat -u TCP-LISTEN:5001,reuseaddr - | sha256sum >"$T/recv.sum" ) &
	_rcv=$!
	pids="$pids $_rcv"
	if ! wait_for 10 listening "$2" 5001; then
		fail "$4: receiver listens"
		return
	fi
	_t0=$(now_ms)
	timeout 300 ip netns exec "$1" socat -u "OPEN:$T/data" "TCP:$3:5001"
	_rc=$?
	_t1=$(now_ms)
	wait_for 30 gone "$_rcv"
	wait "$_rcv"
	_got=$(cut -d' ' -f1 "$T/recv.sum" 2>/dev/null)
	if [ "$_rc" -eq 0 ] && [ "$_got" = "$data_sum" ]; then
		_ms=$((_t1 - _t0 + 1))
		ok "$4: $SIZE_MB MB over TCP, sha256 matches ($((SIZE_MB * 8000 / _ms)) Mbit/s)"
	else
		fail "$4: $SIZE_MB MB over TCP (socat exit $_rc, sha256 ${_got:-none}, want $data_sum)"
	fi
}

# show_checks IFACE NS MYPUB PEERPUB PEERADDR ENDPOINT DIR LABEL: the
# p2p-tunnel side's `wg show` and `wg show dump`; DIR (rx or tx) is the way
# the 200 MB went, so that counter must have at least that many bytes.
show_checks() {
	_if=$1 _ns=$2 _me=$3 _peer=$4 _paddr=$5 _ep=$6 _dir=$7 _l=$8
	_out=$(ip netns exec "$_ns" wg show "$_if" 2>&1)
	_missing=
	for _want in "interface: $_if" "public key: $_me" "listening port: 51820" \
		"peer: $_peer" "endpoint: $_ep" "allowed ips: $_paddr/32" "latest handshake: " \
		"transfer: "; do
		case $_out in
		*"$_want"*) ;;
		*) _missing="$_missing [$_want]" ;;
		esac
	done
	if [ -z "$_missing" ]; then
		ok "$_l: wg show $_if lists the peer, endpoint $_ep, a handshake, transfer"
	else
		fail "$_l: wg show $_if lacks$_missing: $_out"
	fi
	ip netns exec "$_ns" wg show "$_if" dump >"$T/dump" 2>&1
	_err=$(awk -F'\t' -v me="$_me" -v peer="$_peer" -v ep="$_ep" -v aip="$_paddr/32" \
		-v dir="$_dir" -v min=$((SIZE_MB * 1048576)) -v t0="$case_start" -v now="$(date +%s)" '
		NR == 1 {
			if (NF != 4) { print "interface line has " NF " fields"; exit }
			if ($2 != me) { print "public key " $2 }
			if ($3 != 51820) { print "listen port " $3 }
			if ($4 != "off") { print "fwmark " $4 }
			next
		}
		NR == 2 {
			if (NF != 8) { print "peer line has " NF " fields"; exit }
			if ($1 != peer) print "peer " $1
			if ($2 != "(none)") print "preshared key " $2
			if ($3 != ep) print "endpoint " $3
			if ($4 != aip) print "allowed ips " $4
			if ($5 < t0 || $5 > now) print "latest handshake " $5 " not in [" t0 ", " now "]"
			if ($6 + 0 <= 0 || $7 + 0 <= 0 || (dir == "rx" ? $6 : $7) + 0 < min)
				print "transfer rx " $6 " tx " $7 " (want " dir " >= " min ")"
			if ($8 != "off") print "keepalive " $8
			next
		}
		{ print "extra line " NR }
		END { if (NR != 2) print NR " lines" }' "$T/dump")
	if [ -z "$_err" ]; then
		ok "$_l: wg show $_if dump parses: $(sed -n 2p "$T/dump" | cut -f3,5-7 | tr '\t' ' ')"
	else
		fail "$_l: wg show $_if dump: $(echo "$_err" | tr '\n' ';') in: $(tr '\t\n' ' |' <"$T/dump")"
	fi
}

name() { if [ "$1" = p2p ]; then echo p2p-tunnel; else echo wireguard-go; fi; }

# run_case N KIND_A KIND_B INITIATOR(a|b)
run_case() {
	_n=$1 _ka=$2 _kb=$3 _init=$4
	ia=ti$_n${P}a ib=ti$_n${P}b
	case_start=$(date +%s)
	if [ "$_init" = a ]; then
		conf "$T/a.conf" "$priv_a" "$pub_b" 10.100.0.2 10.99.0.2:51820
		conf "$T/b.conf" "$priv_b" "$pub_a" 10.100.0.1
		_lbl="$_n: $(name "$_ka") on a initiates, $(name "$_kb") on b responds"
		_ins=$A _iaddr=10.100.0.1 _rns=$B _raddr=10.100.0.2
	else
		conf "$T/a.conf" "$priv_a" "$pub_b" 10.100.0.2
		conf "$T/b.conf" "$priv_b" "$pub_a" 10.100.0.1 10.99.0.1:51820
		_lbl="$_n: $(name "$_kb") on b initiates, $(name "$_ka") on a responds"
		_ins=$B _iaddr=10.100.0.2 _rns=$A _raddr=10.100.0.1
	fi
	pa='' pb=''
	if ! { start_peer "$_ka" "$A" "$ia" 10.100.0.1/24 "$T/a.conf" && pa=$started; } ||
		! { start_peer "$_kb" "$B" "$ib" 10.100.0.2/24 "$T/b.conf" && pb=$started; }; then
		fail "$_lbl: both sides start"
		tail -n 5 "$T/$ia.log" "$T/$ib.log"
		return
	fi
	# The first ping is staged until the handshake completes.
	check "$_lbl: ping from the initiator" \
		quiet ip netns exec "$_ins" ping -c 3 -i 0.2 -W 3 -q "$_raddr"
	check "$_lbl: ping from the responder" \
		quiet ip netns exec "$_rns" ping -c 3 -i 0.2 -W 2 -q "$_iaddr"
	iperf "$_ins" "$_rns" "$_raddr" "$_lbl"
	transfer "$_rns" "$_ins" "$_iaddr" "$_lbl"
	# The transfer went from the responder to the initiator.
	if [ "$_init" = a ]; then _da=rx _db=tx; else _da=tx _db=rx; fi
	if [ "$_ka" = p2p ]; then
		show_checks "$ia" "$A" "$pub_a" "$pub_b" 10.100.0.2 10.99.0.2:51820 "$_da" "$_lbl"
	fi
	if [ "$_kb" = p2p ]; then
		show_checks "$ib" "$B" "$pub_b" "$pub_a" 10.100.0.1 10.99.0.1:51820 "$_db" "$_lbl"
	fi
	stop_peer "$pa" "$_lbl: $(name "$_ka") on a"
	stop_peer "$pb" "$_lbl: $(name "$_kb") on b"
	for _f in "$T/$ia.log" "$T/$ib.log"; do
		if grep -qi 'error\|fatal\|panic' "$_f"; then
			echo "# $_f:"
			sed 's/^/#   /' "$_f" | tail -n 10
		fi
	done
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
head -c "${SIZE_MB}M" /dev/urandom >"$T/data" || { fail "writing $SIZE_MB MB of test data"; exit 1; }
data_sum=$(sha256sum "$T/data" | cut -d' ' -f1)

t_start=$(date +%s)
run_case 1 p2p wg a
run_case 2 p2p wg b
run_case 3 p2p p2p a
run_case 4 p2p p2p b
echo "# tunnel-interop: $(($(date +%s) - t_start)) s"
finish
