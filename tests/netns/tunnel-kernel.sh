#!/bin/sh
# p2p-tunnel -K: the kernel's WireGuard configured through generic netlink
# from a wg.conf, talking to a p2p-tunnel in userspace.
#
#   p2p-$$-k (kernel wg: p2pk$$)  veth 10.98.0.1 ── veth 10.98.0.2  p2p-$$-u (p2p-tunnel: p2pu$$)
#        10.101.0.1/24                                                   10.101.0.2/24
#
# Where the wireguard module is missing (this machine), the test says so
# and counts as skipped.
# shellcheck disable=SC2317 # cleanup runs from the trap
. "$(dirname "$0")/../lib.sh"

need_root "tunnel-kernel"
probe=p2pprobe$$
if ! ip link add "$probe" type wireguard 2>/dev/null; then
	skip "tunnel-kernel: the kernel WireGuard module is missing (ip link add type wireguard fails)"
	exit 0
fi
ip link del "$probe"

K=p2p-$$-k U=p2p-$$-u T=$(scratch)
cleanup() {
	[ -n "${kp:-}" ] && kill "$kp" 2>/dev/null
	[ -n "${up:-}" ] && kill "$up" 2>/dev/null
	wait 2>/dev/null
	ip netns del "$K" 2>/dev/null
	ip netns del "$U" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
ip netns add "$K" && ip netns add "$U" &&
	ip link add veth0 netns "$K" type veth peer name veth0 netns "$U" &&
	ip -n "$K" addr add 10.98.0.1/24 dev veth0 && ip -n "$K" link set veth0 up &&
	ip -n "$U" addr add 10.98.0.2/24 dev veth0 && ip -n "$U" link set veth0 up ||
	{ fail "namespaces"; finish; }
kk=$(p2p keygen) ku=$(p2p keygen)
pk=$(echo "$kk" | p2p pubkey) pu=$(echo "$ku" | p2p pubkey)
printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.101.0.2/32\nEndpoint = 10.98.0.2:51820\n' \
	"$kk" "$pu" >"$T/k.conf"
printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.101.0.1/32\n' \
	"$ku" "$pk" >"$T/u.conf"
ip netns exec "$K" p2p-tunnel -K -i "p2pk$$" -c "$T/k.conf" -a 10.101.0.1/24 2>"$T/k.log" & kp=$!
ip netns exec "$U" p2p-tunnel -U -i "p2pu$$" -c "$T/u.conf" -a 10.101.0.2/24 2>"$T/u.log" & up=$!
check "the kernel device is up" wait_for 10 ip -n "$K" link show "p2pk$$" type wireguard
check "the UAPI socket of the kernel device answers" wait_for 10 [ -S "/var/run/wireguard/p2pk$$.sock" ]
check "ping over the kernel device" ip netns exec "$K" ping -c 2 -W 3 10.101.0.2
check "wg show (netlink) lists the peer with a handshake" \
	sh -c 'ip netns exec "$1" wg show "$2" latest-handshakes | awk "\$2 > 0 {ok=1} END {exit !ok}"' sh "$K" "p2pk$$"
kill "$kp" && wait "$kp"
check "SIGTERM: exit 0" [ $? -eq 0 ]
kp=
check "exit removes the kernel device" sh -c '! ip -n "$1" link show "$2" 2>/dev/null' sh "$K" "p2pk$$"
finish
