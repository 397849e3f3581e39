#!/bin/sh
# p2p-lab: up, what works end to end so far, status, exec, up again, a
# half-built lab rebuilt, and down leaving no namespace and no process.
#
#                    p2p-$$-wan (bridge br0, 198.18.0.0/24)
#       ┌──────────────────┬─────────┴────────┬──────────────────┐
#   wan0 .1           wan0 .10           wan0 .11           wan0 .12
#   control            client               ny                 ldn
#                                         lan0 .2            lan0 .3
#                                            └────────┬─────────┘
#                            p2p-$$-lan (bridge br0, 10.0.10.0/24)
#                                                     │
#                                                 lan0 .15
#                                                    app
#                        vault :8080, public :8081, alice :8082, bob :8083
#
# Each of client, ny, ldn and control runs p2p-mapd and p2p-tunnel (WireGuard
# from the map: client <-> ny, client <-> ldn) under its own s6-svscan,
# with its own /etc/p2p, /run/p2p, /var/lib/p2p, /var/log/p2p (state under
# a scratch P2P_LAB_DIR).
# shellcheck disable=SC2016,SC2317 # sh -c '...' sh ARGS; functions run by check and trap
. "$(dirname "$0")/../lib.sh"

need_root "lab"
for t in ip nsenter unshare setsid s6-svscan s6-svstat /usr/bin/python3; do
	if ! command -v "$t" >/dev/null 2>&1; then
		skip "lab: needs $t (make deps)"
		exit 0
	fi
done

T=$(scratch)
P2P_LAB_DIR=$T/labs
export P2P_LAB_DIR
name=$$
state=$P2P_LAB_DIR/$name
P2P_NODES='client ny ldn control'

lab() { p2p-lab -n "$name" "$@"; }
cleanup() {
	lab down >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# The body at URL, fetched from NODE (no proxy: straight over the lab's links).
fetch() {
	lab exec "$1" -- /usr/bin/python3 -c 'import sys, urllib.request as u
o = u.build_opener(u.ProxyHandler({}))
sys.stdout.write(o.open(sys.argv[1], timeout=5).read().decode())' "$2"
}

# A TCP connection from NODE to ADDR PORT: "open", "refused" (the host is
# reachable), or why not ("Network is unreachable", "timed out").
probe() {
	lab exec "$1" -- /usr/bin/python3 -c 'import socket, sys
s = socket.socket()
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("open")
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print(e.strerror or "timed out")' "$2" "$3"
}

json_get() { # FILE PYTHON-SUBSCRIPT
	/usr/bin/python3 -c 'import json, sys; print(eval("json.load(open(sys.argv[1]))" + sys.argv[2]))' "$1" "$2"
}

alive() {
	_st=$(sed -n 's/^[0-9]* (.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
	[ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}

svscan_pids() {
	for n in $P2P_NODES app; do cat "$state/nodes/$n/svscan.pid"; done
}

all_ready() {
	for n in $P2P_NODES; do
		[ "$(s6-svstat -o ready "$state/nodes/$n/service/p2p-mapd")" = true ] || return 1
	done
}

# ---- up ----

if lab up >"$T/up.out" 2>&1; then
	ok "p2p-lab up"
	cat "$T/up.out"
else
	fail "p2p-lab up"
	cat "$T/up.out"
	exit 1
fi
check "up makes 7 namespaces p2p-$name-*" \
	[ "$(ip netns list | grep -c "^p2p-$name-")" -eq 7 ]
check "map prints the lab map" [ "$(lab map)" = "$state/map.json" ]

# ---- the map daemon in every node ----

out=$(lab exec client -- p2p lookup vault.example.internal)
check "client: p2p lookup vault.example.internal prints 100.96.128.20" [ "$out" = 100.96.128.20 ]
for n in ny ldn control; do
	check "$n: p2p lookup vault.example.internal" \
		[ "$(lab exec "$n" -- p2p lookup vault.example.internal)" = 100.96.128.20 ]
done
for n in $P2P_NODES; do
	check "$n: its own mapd.sock in its own /run/p2p" [ -S "$state/nodes/$n/run/mapd.sock" ]
done
check "client: p2p status says mapd up" sh -c '"$@" | grep -q "^mapd  *up "' sh \
	p2p-lab -n "$name" exec client -- p2p status
check "client: the lab map is /etc/p2p/map.json" \
	sh -c '"$@" | cmp -s - "$0"' "$state/map.json" p2p-lab -n "$name" exec client -- cat /etc/p2p/map.json
check "ny: its own /etc/resolv.conf" \
	sh -c '"$@" | grep -q "node ny"' sh p2p-lab -n "$name" exec ny -- cat /etc/resolv.conf
check "ny: its private key is 0600" [ "$(stat -c %a "$state/nodes/ny/etc/private.key")" = 600 ]
check "ny: the map holds the public key of ny's private key" \
	[ "$(lab exec ny -- sh -c 'p2p pubkey </etc/p2p/private.key')" = \
	  "$(json_get "$state/map.json" '["connectors"]["ny"]["key"]')" ]
check "client: user alice, groups eng" \
	[ "$(json_get "$state/map.json" '["clients"]["client"]["user"]')" = alice ]

# ---- the tunnels: client <-> ny and client <-> ldn, from the map ----

addr_of() { json_get "$state/nodes/$1/lib/mapd-alloc.json" "[\"addresses\"][\"connector/$1\"][\"addr\"]"; }
for n in ny ldn; do
	a=$(lab exec client -- p2p ipc mapd '{"op":"get"}' |
		/usr/bin/python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("name") == sys.argv[1]:
        print(m["value"]["addr"])' "$n")
	check "client: ping $n's overlay address $a through the tunnel" \
		lab exec client -- ping -c 1 -W 3 "$a"
	check "$n: wg show p2p0 lists the client with a handshake" \
		sh -c '"$@" | awk "\$2 != 0 { found = 1 } END { exit !found }"' sh \
		p2p-lab -n "$name" exec "$n" -- wg show p2p0 latest-handshakes
done
tpid=$(s6-svstat -o pid "$state/nodes/ny/service/p2p-tunnel")
check "ny: p2p-tunnel runs as p2p" [ "$(stat -c %U "/proc/$tpid")" = p2p ]
check "ny: p2p-tunnel keeps only CAP_NET_ADMIN" \
	[ "$(awk '/^CapEff:/ { print $2 }' "/proc/$tpid/status")" = 0000000000001000 ]
check "client: vault's address 100.96.128.20 answers through the tunnel" \
	lab exec client -- ping -c 1 -W 3 100.96.128.20
check "client: the overlay prefix is routed to p2p0" \
	sh -c '"$@" | grep -q "^100.96.0.0/12 dev p2p0"' sh p2p-lab -n "$name" exec client -- ip route
check "ny: vault's address is local on p2p0" \
	sh -c '"$@" | grep -q "inet 100.96.128.20/32"' sh p2p-lab -n "$name" exec ny -- ip addr show p2p0

# ---- split DNS on the client: p2p-dnsd through the client's resolv.conf ----

check "client: getent hosts vault.example.internal gives 100.96.128.20 (p2p-dnsd)" \
	sh -c '"$@" | grep -q "^100.96.128.20 "' sh p2p-lab -n "$name" exec client -- getent hosts vault.example.internal
check "client: a public name resolves through p2p-dnsd to the lab's internet DNS" \
	sh -c '"$@" | grep -q "^198.18.0.80 "' sh p2p-lab -n "$name" exec client -- getent hosts www.public.example
lab exec client -- getent hosts nosuch >/dev/null 2>&1 # the search list adds .example.internal
check "no private name reached the lab's internet DNS" \
	sh -c '! grep -i "example\.internal" "$1"' sh "$state/nodes/control/log/lab-dns.queries"

# ---- the private applications, over the site LAN ----

fetch ny http://10.0.10.15:8080/x >"$T/vault.html" 2>&1
check "ny: the vault answers at 10.0.10.15:8080 over the LAN" \
	grep -q "vault — lab app at 10\.0\.10\.15:8080" "$T/vault.html"
check "the vault page names the method, the path and the peer (ny)" \
	grep -q "GET /x from 10\.0\.10\.2:" "$T/vault.html"
check "ldn: /health answers ok" [ "$(fetch ldn http://10.0.10.15:8080/health)" = ok ]
port=8081
for app in public alice bob; do
	fetch ny "http://10.0.10.15:$port/" >"$T/$app.html" 2>&1
	check "ny: $app answers at 10.0.10.15:$port" \
		grep -q "$app — lab app at 10\.0\.10\.15:$port" "$T/$app.html"
	port=$((port + 1))
done
check "client: the WAN reaches ny (198.18.0.11 refuses TCP 51820)" \
	[ "$(probe client 198.18.0.11 51820)" = refused ]
check "client: the WAN reaches control (198.18.0.1)" [ "$(probe client 198.18.0.1 51820)" = refused ]
check "client: the site LAN is out of reach" \
	[ "$(probe client 10.0.10.15 8080)" = "Network is unreachable" ]
check "app: the WAN is out of reach" [ "$(probe app 198.18.0.11 51820)" = "Network is unreachable" ]

# ---- exec ----

lab exec ldn -- sh -c 'exit 7'
check "exec: the command's exit status" [ $? -eq 7 ]
check "exec: P2P_LAB_NODE" [ "$(lab exec ldn -- sh -c 'echo "$P2P_LAB_NODE"')" = ldn ]
check "exec: PATH starts with the directory of p2p-lab" \
	[ "$(lab exec ldn -- sh -c 'echo "${PATH%%:*}"')" = "$(cd -P "$(dirname "$(command -v p2p-lab)")" && pwd)" ]
check "exec: the working directory is kept" [ "$(cd "$T" && lab exec client -- pwd)" = "$T" ]
lab exec nosuchnode -- true 2>/dev/null
check "exec: an unknown node is a usage error (100)" [ $? -eq 100 ]
p2p-lab frobnicate 2>/dev/null
check "an unknown command is a usage error (100)" [ $? -eq 100 ]

# ---- status ----

lab status >"$T/status" 2>&1
check "status exits 0 when everything is up" [ $? -eq 0 ]
cat "$T/status"
for n in $P2P_NODES; do
	check "status: $n p2p-mapd up and ready" grep -Eq "^$n +p2p-mapd +up .*ready" "$T/status"
done
for app in vault public alice bob; do
	check "status: app $app up" grep -Eq "^app +$app +up " "$T/status"
done

# ---- up again; a half-built lab ----

svscan_pids >"$T/svscan.before"
check "up again: harmless" sh -c '"$@" | grep -q "already up"' sh p2p-lab -n "$name" up
svscan_pids >"$T/svscan.after"
check "up again: the same s6-svscan processes" cmp -s "$T/svscan.before" "$T/svscan.after"

kill -KILL "$(cat "$state/nodes/ldn/svscan.pid")"
lab status >"$T/status" 2>&1
check "status exits 1 with a node down" [ $? -eq 1 ]
check "status: ldn down" grep -Eq "^ldn .* down" "$T/status"
check "up on a half-built lab rebuilds it" sh -c '"$@" 2>&1 | grep -q "half built"' sh \
	p2p-lab -n "$name" up
check "the rebuilt lab: every mapd ready" all_ready
check "the rebuilt lab: ldn looks up vault" \
	[ "$(lab exec ldn -- p2p lookup vault.example.internal)" = 100.96.128.20 ]

# ---- down ----

# Every process of the lab: the s6-svscans, the services by s6-svstat, and
# whatever runs in the lab's namespaces (s6-supervise too).
{
	svscan_pids
	for s in "$state"/nodes/*/service/*/ "$state"/nodes/*/service/*/log/; do
		s6-svstat -o pid "$s"
	done
	for n in $P2P_NODES app; do ip netns pids "p2p-$name-$n"; done
} | grep -v '^-1$' | sort -u >"$T/pids"
# 5 s6-svscan, and for every service and every logger an s6-supervise and
# the process it runs.
nsvc=$(ls -d "$state"/nodes/*/service/*/ "$state"/nodes/*/service/*/log/ | wc -l)
check "the lab's processes are known ($(wc -l <"$T/pids") of them, $nsvc services)" \
	[ "$(wc -l <"$T/pids")" -eq $((5 + 2 * nsvc)) ]
check "p2p-lab down" lab down
check "down: no namespace p2p-$name-* left" sh -c '! ip netns list | grep "^p2p-$1-"' sh "$name"
left=
while read -r pid; do
	if alive "$pid"; then left="$left $pid"; fi
done <"$T/pids"
check "down: no process of the lab left${left:+:$left}" [ -z "$left" ]
no_process_names() { ! pgrep -af "$1"; }
check "down: no process names the state directory" no_process_names "$P2P_LAB_DIR"
check "down: the state directory is gone" [ ! -e "$state" ]
check "down again: harmless" lab down
lab exec client -- true 2>/dev/null
check "exec on a lab that is down fails (111)" [ $? -eq 111 ]

finish
