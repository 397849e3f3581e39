#!/bin/sh
# p2p-tunnel driven by wg(8) through the UAPI: show, showconf, set, syncconf,
# setconf, and changes to peers and AllowedIPs that keep the sessions of the
# peers that stay (no new handshake: the latest-handshake time stays put).
#
#   p2p-$$-a (p2p-tunnel ua$$)  veth 10.97.0.1 ── veth 10.97.0.2  p2p-$$-b (p2p-tunnel ub$$)
#        10.102.0.1/24                                                 10.102.0.2/24
# shellcheck disable=SC2317 # cleanup runs from the trap
. "$(dirname "$0")/../lib.sh"

need_root "tunnel-uapi"
for t in wg ping; do
	command -v "$t" >/dev/null 2>&1 || { skip "tunnel-uapi: needs $t (make deps)"; exit 0; }
done
A=p2p-$$-a B=p2p-$$-b IA=ua$$ IB=ub$$ T=$(scratch)
cleanup() {
	for p in ${apid:-} ${bpid:-}; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$A" 2>/dev/null
	ip netns del "$B" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
ip netns add "$A" && ip netns add "$B" &&
	ip link add veth0 netns "$A" type veth peer name veth0 netns "$B" &&
	ip -n "$A" addr add 10.97.0.1/24 dev veth0 && ip -n "$A" link set veth0 up &&
	ip -n "$B" addr add 10.97.0.2/24 dev veth0 && ip -n "$B" link set veth0 up ||
	{ fail "namespaces"; finish; }
ka=$(p2p keygen) kb=$(p2p keygen) kc=$(p2p keygen)
pa=$(echo "$ka" | p2p pubkey) pb=$(echo "$kb" | p2p pubkey) pc=$(echo "$kc" | p2p pubkey)
printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.102.0.2/32\nEndpoint = 10.97.0.2:51820\n' \
	"$ka" "$pb" >"$T/a.conf"
printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.102.0.1/32\n' \
	"$kb" "$pa" >"$T/b.conf"
ip netns exec "$A" p2p-tunnel -U -i "$IA" -c "$T/a.conf" -a 10.102.0.1/24 2>"$T/a.log" & apid=$!
ip netns exec "$B" p2p-tunnel -U -i "$IB" -c "$T/b.conf" -a 10.102.0.2/24 2>"$T/b.log" & bpid=$!
check "both UAPI sockets" wait_for 10 sh -c '[ -S "/var/run/wireguard/$1.sock" ] && [ -S "/var/run/wireguard/$2.sock" ]' sh "$IA" "$IB"
check "ping a -> b" ip netns exec "$A" ping -c 1 -W 3 10.102.0.2
hs() { ip netns exec "$A" wg show "$IA" latest-handshakes | awk -v k="$pb" '$1 == k { print $2 }'; }
t1=$(hs)
check "a has a handshake with b" [ "${t1:-0}" -gt 0 ]

# showconf round-trips through syncconf: nothing changes, the session stays.
ip netns exec "$A" wg showconf "$IA" >"$T/shown.conf"
check "wg showconf: the private key and the peer" \
	sh -c 'grep -q "^PrivateKey = $1" "$3" && grep -q "^PublicKey = $2" "$3"' sh "$ka" "$pb" "$T/shown.conf"
check "wg syncconf of showconf's output" ip netns exec "$A" wg syncconf "$IA" "$T/shown.conf"
# A new peer c and wider AllowedIPs for b, through syncconf and set.
cp "$T/shown.conf" "$T/more.conf"
printf '[Peer]\nPublicKey = %s\nAllowedIPs = 10.102.0.3/32\n' "$pc" >>"$T/more.conf"
check "wg syncconf adding peer c" ip netns exec "$A" wg syncconf "$IA" "$T/more.conf"
check "wg set: b's AllowedIPs widened" \
	ip netns exec "$A" wg set "$IA" peer "$pb" allowed-ips 10.102.0.2/32,10.250.0.0/24
check "wg show lists c and b's new prefix" \
	sh -c 'ip netns exec "$1" wg show "$2" allowed-ips | grep -q "$3" &&
	       ip netns exec "$1" wg show "$2" allowed-ips | grep -q "10.250.0.0/24"' sh "$A" "$IA" "$pc"
check "wg set: remove c" ip netns exec "$A" wg set "$IA" peer "$pc" remove
sleep 1.1 # handshake times have one-second resolution
check "ping a -> b after the changes" ip netns exec "$A" ping -c 1 -W 3 10.102.0.2
check "b's session survived every change (no new handshake)" [ "$(hs)" = "$t1" ]
# setconf replaces all peers, as with the kernel: a new session follows.
check "wg setconf" ip netns exec "$A" wg setconf "$IA" "$T/a.conf"
check "ping after setconf (a new handshake)" ip netns exec "$A" ping -c 1 -W 3 10.102.0.2
check "wg show dump: 8 fields on every peer line" \
	sh -c 'ip netns exec "$1" wg show "$2" dump | awk "NR > 1 && NF != 8 { bad = 1 } END { exit bad }"' sh "$A" "$IA"
check "an unknown UAPI key is refused with errno=-22, as wireguard-go does" \
	sh -c '[ "$(printf "set=1\nfrobnicate=1\n\n" | socat - "UNIX-CONNECT:$1")" = "errno=-22" ]' \
	sh "/var/run/wireguard/$IA.sock"
check "get answers with errno=0 last" \
	sh -c 'printf "get=1\n\n" | socat - "UNIX-CONNECT:$1" | grep -v "^$" | tail -n 1 | grep -qx "errno=0"' \
	sh "/var/run/wireguard/$IA.sock"
kill "$apid" && wait "$apid"
check "SIGTERM: exit 0" [ $? -eq 0 ]
apid=
check "the UAPI socket is gone" [ ! -e "/var/run/wireguard/$IA.sock" ]
finish
