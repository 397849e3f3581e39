#!/bin/sh
# tests/bench/tunnel-throughput.sh: TCP through p2p-tunnel, and through
# wireguard-go in the same run, between two network namespaces:
#
#   netns p2pb-$$-a                                  netns p2pb-$$-b
#   va$$ 198.18.0.1/30 <------------ veth ---------> vb$$ 198.18.0.2/30
#   pass 1: p2p-tunnel  pa$$ 10.201.0.1/24 ....... pb$$ 10.201.0.2/24
#   pass 2: wireguard-go wa$$ 10.202.0.1/24 ...... wb$$ 10.202.0.2/24
#           iperf3 -c (in a) ------- TCP, one stream, 10 s -----> iperf3 -s (in b)
#
# The two passes run one after the other, so they do not share the CPUs.
# Figures on stdout:
#   tunnel: p2p-tunnel X Mbit/s, wireguard-go Y Mbit/s, ratio X/Y
#   tunnel-aead: ... the single-core ChaCha20-Poly1305 limit (openssl speed,
#                16384-byte blocks, and 1420-byte ones: a tunnel packet), the
#                ceiling of one tunnel thread
#   tunnel-rss: idle VmRSS with 100 configured peers, against wireguard-go's
# Diagnostics go to stderr. Exit 1 when a step fails (a tunnel that does not
# come up, a daemon that does not exit 0 on SIGTERM, no figure); the bench
# sets no throughput target.
#   BENCH_SECONDS (10)   iperf3 time per pass
#   BENCH_PERF=DIR       also record both p2p-tunnel daemons with perf during
#                        pass 1 (DIR/perf-a.data, DIR/perf-b.data) and put
#                        their top functions in DIR/perf-{a,b}.txt
set -u
: "${P2P_TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${P2P_BUILD:=$P2P_TOP/build}"
PATH="$P2P_BUILD/bin:$PATH"
seconds=${BENCH_SECONDS:-10}
perf_dir=${BENCH_PERF:-}
peers=100

say() { echo "tunnel-throughput.sh: $*" >&2; }
die() { say "$*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
	echo "tunnel: SKIP: needs root (network namespaces, TUN)"
	exit 1
fi
for t in ip iperf3 wireguard-go wg openssl jq "$P2P_BUILD/bin/p2p-tunnel"; do
	command -v "$t" >/dev/null 2>&1 || die "$t is missing (make deps; make all)"
done
[ -c /dev/net/tun ] || die "/dev/net/tun is missing"
case $seconds in '' | *[!0-9]* | 0) die "BENCH_SECONDS=$seconds is not a number of seconds" ;; esac

nsa=p2pb-$$-a nsb=p2pb-$$-b
va=va$$ vb=vb$$ pa=pa$$ pb=pb$$ wa=wa$$ wb=wb$$
dir=$(mktemp -d "${TMPDIR:-/tmp}/p2p-bench.XXXXXX") || exit 1
pids=
cleanup() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	ip netns del "$nsa" 2>/dev/null
	ip netns del "$nsb" 2>/dev/null
	for i in "$pa" "$pb" "$wa" "$wb"; do rm -f "/var/run/wireguard/$i.sock"; done
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ina() { ip netns exec "$nsa" "$@"; }
inb() { ip netns exec "$nsb" "$@"; }
forget() { # PID: no longer ours to kill at exit
	n=
	for p in $pids; do [ "$p" = "$1" ] || n="$n $p"; done
	pids=$n
}
# Poll until COMMAND succeeds: at most TRIES times, 0.1 s apart.
wait_for() {
	tries=$1
	shift
	while ! "$@" >/dev/null 2>&1; do
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || return 1
		sleep 0.1
	done
}
# SIGTERM, and the exit status must be 0.
stop() {
	kill -TERM "$1" 2>/dev/null || die "$2 (pid $1) is already gone"
	wait "$1"
	rc=$?
	forget "$1"
	[ "$rc" -eq 0 ] || die "$2 exited with status $rc after SIGTERM"
}

# ---- the underlay ----
ip netns add "$nsa" && ip netns add "$nsb" || die "unable to create network namespaces"
ip link add "$va" netns "$nsa" type veth peer name "$vb" netns "$nsb" || die "unable to create the veth pair"
ina ip link set lo up && inb ip link set lo up &&
	ina ip addr add 198.18.0.1/30 dev "$va" && inb ip addr add 198.18.0.2/30 dev "$vb" &&
	ina ip link set "$va" up && inb ip link set "$vb" up || die "unable to configure the veth pair"
wait_for 50 ina ping -c 1 -W 1 198.18.0.2 || die "the veth pair does not pass packets"

ka=$(wg genkey) && kb=$(wg genkey) && puba=$(echo "$ka" | wg pubkey) &&
	pubb=$(echo "$kb" | wg pubkey) || die "wg genkey failed"
# CONF PRIVATE PORT PEER-PUBLIC PEER-ENDPOINT PEER-ALLOWED
write_conf() {
	printf '[Interface]\nPrivateKey = %s\nListenPort = %s\n\n[Peer]\nPublicKey = %s\nEndpoint = %s\nAllowedIPs = %s\n' \
		"$2" "$3" "$4" "$5" "$6" >"$1" || die "unable to write $1"
}

# Start iperf3 -s in b on ADDR, run the client from a for $seconds; sets
# mbit to the receiver's Mbit/s.
iperf() {
	inb iperf3 -s -1 -B "$1" -p 5201 >"$dir/iperf3-s.log" 2>&1 &
	spid=$!
	pids="$pids $spid"
	wait_for 100 sh -c "ip netns exec $nsb ss -ltn | grep -q '$1:5201'" ||
		die "iperf3 -s does not listen on $1:5201"
	ina timeout $((seconds + 30)) iperf3 -c "$1" -p 5201 -t "$seconds" -J >"$dir/iperf3.json" 2>&1 ||
		die "iperf3 -c $1 failed: $(tail -n 5 "$dir/iperf3.json")"
	wait "$spid"
	forget "$spid"
	bps=$(jq -r '.end.sum_received.bits_per_second' "$dir/iperf3.json") ||
		die "no figure in the iperf3 output"
	case $bps in '' | null) die "no figure in the iperf3 output" ;; esac
	mbit=$(awk -v b="$bps" 'BEGIN { printf "%.0f", b / 1e6 }')
}

# ---- pass 1: p2p-tunnel on both ends ----
write_conf "$dir/a.conf" "$ka" 51820 "$pubb" 198.18.0.2:51820 10.201.0.2/32
write_conf "$dir/b.conf" "$kb" 51820 "$puba" 198.18.0.1:51820 10.201.0.1/32
# NS IFACE CONF ADDR: start p2p-tunnel (userspace: -U) there and wait for
# -d. Its UAPI socket is /var/run/wireguard/IFACE.sock, so wg(8) sees it.
start_p2p() {
	rm -f "$dir/ready" && mkfifo "$dir/ready" || die "mkfifo failed"
	ip netns exec "$1" p2p-tunnel -U -d 3 -i "$2" -c "$3" -a "$4" \
		3>"$dir/ready" 2>>"$dir/p2p-tunnel-$2.log" &
	tpid=$!
	pids="$pids $tpid"
	lines=$(timeout 30 head -n 1 "$dir/ready" | wc -l)
	[ "$lines" -eq 1 ] || die "p2p-tunnel in $1 did not become ready: $(tail -n 3 "$dir/p2p-tunnel-$2.log")"
}
start_p2p "$nsa" "$pa" "$dir/a.conf" 10.201.0.1/24
p2pa=$tpid
start_p2p "$nsb" "$pb" "$dir/b.conf" 10.201.0.2/24
p2pb=$tpid
wait_for 100 ina ping -c 1 -W 1 10.201.0.2 || die "no ping through p2p-tunnel (no handshake?)"
if [ -n "$perf_dir" ]; then
	command -v perf >/dev/null 2>&1 || die "BENCH_PERF: perf is missing"
	mkdir -p "$perf_dir" || die "unable to create $perf_dir"
	perf record -e cpu-clock -g -o "$perf_dir/perf-a.data" -p "$p2pa" -- sleep "$seconds" \
		>/dev/null 2>"$perf_dir/perf-a.log" &
	perfa=$!
	perf record -e cpu-clock -g -o "$perf_dir/perf-b.data" -p "$p2pb" -- sleep "$seconds" \
		>/dev/null 2>"$perf_dir/perf-b.log" &
	perfb=$!
	pids="$pids $perfa $perfb"
fi
iperf 10.201.0.2
p2p_mbit=$mbit
if [ -n "$perf_dir" ]; then
	wait "$perfa"
	wait "$perfb"
	forget "$perfa"
	forget "$perfb"
	for s in a b; do
		perf report -i "$perf_dir/perf-$s.data" --no-children --sort dso,symbol -g none \
			2>/dev/null | grep '%' | head -n 40 >"$perf_dir/perf-$s.txt"
	done
fi
stop "$p2pa" "p2p-tunnel in $nsa"
stop "$p2pb" "p2p-tunnel in $nsb"
say "p2p-tunnel: $p2p_mbit Mbit/s"

# ---- pass 2: wireguard-go on both ends ----
write_conf "$dir/a-wg.conf" "$ka" 51821 "$pubb" 198.18.0.2:51821 10.202.0.2/32
write_conf "$dir/b-wg.conf" "$kb" 51821 "$puba" 198.18.0.1:51821 10.202.0.1/32
# NS IFACE CONF ADDR: start wireguard-go there, configure it with wg(8).
start_wggo() {
	mkdir -p /var/run/wireguard
	ip netns exec "$1" env LOG_LEVEL=error wireguard-go -f "$2" >>"$dir/wireguard-go-$2.log" 2>&1 &
	gpid=$!
	pids="$pids $gpid"
	wait_for 100 test -S "/var/run/wireguard/$2.sock" ||
		die "wireguard-go in $1 did not create its socket: $(tail -n 3 "$dir/wireguard-go-$2.log")"
	ip netns exec "$1" wg setconf "$2" "$3" &&
		ip netns exec "$1" ip addr add "$4" dev "$2" &&
		ip netns exec "$1" ip link set "$2" up || die "unable to configure wireguard-go in $1"
}
start_wggo "$nsa" "$wa" "$dir/a-wg.conf" 10.202.0.1/24
wga=$gpid
start_wggo "$nsb" "$wb" "$dir/b-wg.conf" 10.202.0.2/24
wgb=$gpid
wait_for 100 ina ping -c 1 -W 1 10.202.0.2 || die "no ping through wireguard-go (no handshake?)"
iperf 10.202.0.2
wg_mbit=$mbit
stop "$wga" "wireguard-go in $nsa"
stop "$wgb" "wireguard-go in $nsb"
say "wireguard-go: $wg_mbit Mbit/s"

# ---- the AEAD's single-core limit ----
# BYTES: sets aead to openssl's figure for that block size, in Mbit/s (its
# figures are thousands of bytes per second).
aead_speed() {
	k=$(openssl speed -evp chacha20-poly1305 -seconds 3 -bytes "$1" 2>/dev/null |
		awk '/^ChaCha20-Poly1305/ { v = $NF; sub(/k$/, "", v); print v }')
	[ -n "$k" ] || die "no figure from openssl speed -evp chacha20-poly1305 -bytes $1"
	aead=$(awk -v k="$k" 'BEGIN { printf "%.0f", k * 1000 * 8 / 1e6 }')
}
aead_speed 16384
aead_mbit=$aead
# and for one tunnel packet (the 1420-byte MTU), per-call costs included
aead_speed 1420
aead_pkt_mbit=$aead

# ---- idle memory with $peers peers ----
# CONF PORT: a configuration with $peers peers, random keys, /32 each.
write_many() {
	{
		printf '[Interface]\nPrivateKey = %s\nListenPort = %s\n' "$ka" "$2"
		i=0
		while [ "$i" -lt "$peers" ]; do
			printf '\n[Peer]\nPublicKey = %s\nEndpoint = 198.18.0.2:%d\nAllowedIPs = 10.203.%d.%d/32\n' \
				"$(head -c 32 /dev/urandom | base64)" $((52000 + i)) $((i / 250)) $((i % 250 + 1))
			i=$((i + 1))
		done
	} >"$1" || die "unable to write $1"
}
rss_of() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
write_many "$dir/many.conf" 51830
start_p2p "$nsa" "$pa" "$dir/many.conf" 10.203.255.1/16
n=$(ina wg show "$pa" peers | wc -l)
[ "$n" -eq "$peers" ] || die "p2p-tunnel shows $n peers, not $peers"
p2p_rss=$(rss_of "$tpid")
stop "$tpid" "p2p-tunnel with $peers peers"
write_many "$dir/many-wg.conf" 51831
start_wggo "$nsa" "$wa" "$dir/many-wg.conf" 10.203.255.1/16
n=$(ina wg show "$wa" peers | wc -l)
[ "$n" -eq "$peers" ] || die "wireguard-go shows $n peers, not $peers"
wg_rss=$(rss_of "$gpid")
stop "$gpid" "wireguard-go with $peers peers"
[ -n "$p2p_rss" ] && [ -n "$wg_rss" ] || die "no VmRSS figure"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo "tunnel: p2p-tunnel $p2p_mbit Mbit/s, wireguard-go $wg_mbit Mbit/s, ratio $(ratio "$p2p_mbit" "$wg_mbit") (TCP, one stream, ${seconds} s, veth between two netns, userspace both ends)"
echo "tunnel-aead: ChaCha20-Poly1305 on one core $aead_mbit Mbit/s (openssl speed, 16384-byte blocks; $aead_pkt_mbit Mbit/s in 1420-byte blocks): p2p-tunnel at $(ratio "$p2p_mbit" "$aead_mbit") of it"
echo "tunnel-rss: $peers peers, idle: p2p-tunnel $p2p_rss kB, wireguard-go $wg_rss kB, ratio $(ratio "$p2p_rss" "$wg_rss") (VmRSS)"
