#!/bin/sh
# p2p-tlsterm as a connector runs it: on the overlay only, bound to the
# tunnel interface, as the p2p user keeping only CAP_NET_BIND_SERVICE, on
# ports 443 and 80, with p2p-mapd, p2p-authz and p2p-audit as p2p too.
#
#    p2p-$$-cli                p2p-$$-conn                                  p2p-$$-lan
#  ┌──────────────────┐      ┌────────────────────────────────────────┐   ┌───────────────────────┐
#  │ curl             │      │ p2p-tlsterm -i p2p0 -u p2p -p 443 -P 80 │   │ curl (a LAN host)     │
#  │ t0 100.96.1.10/12├──────┤ p2p0 100.96.0.2, 100.96.128.20 (apps)   │   │                       │
#  │                  │ veth │ lan0 10.0.10.2/24 ──────────────────────┼───┤ lan0 10.0.10.9/24     │
#  └──────────────────┘      │ lo: tlsterm-app.py 127.0.0.1:8081       │   │ route 100.96.0.0/12   │
#                            │ p2p-mapd, p2p-authz, p2p-audit (as p2p) │   │   via 10.0.10.2       │
#                            └────────────────────────────────────────┘   └───────────────────────┘
#
# p2p0 stands for the tunnel's interface (a veth here: the client side plays
# the tunnel). The LAN host reaches the connector's LAN address and, by its
# route, the resource's overlay address through lan0: both must find
# nothing listening. A resource added to the map is bound at once (after
# the privileges were dropped), and a certificate replaced is read as p2p.
. "$(dirname "$0")/../lib.sh"

need_root tlsterm-overlay
for tool in ip ss curl openssl jq /usr/bin/python3; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		skip "tlsterm-overlay: needs $tool"
		exit 0
	fi
done
need_p2p_user || exit 1

T=$(scratch)
CLI=p2p-$$-cli CONN=p2p-$$-conn LAN=p2p-$$-lan
. "$P2P_TOP/tests/sh/tlsterm-env"
tlsterm_need tlsterm-overlay
cleanup() {
	tlsterm_cleanup
	for n in $CLI $CONN $LAN; do ip netns del "$n" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# ---- namespaces ----
ip netns add "$CLI" && ip netns add "$CONN" && ip netns add "$LAN" &&
	ip link add t0 netns "$CLI" type veth peer name p2p0 netns "$CONN" &&
	ip link add lan0 netns "$CONN" type veth peer name lan0 netns "$LAN" &&
	ip -n "$CLI" addr add 100.96.1.10/12 dev t0 && ip -n "$CLI" link set t0 up &&
	ip -n "$CLI" link set lo up &&
	ip -n "$CONN" link set lo up && ip -n "$CONN" link set p2p0 up &&
	ip -n "$CONN" addr add 100.96.0.2/32 dev p2p0 && ip -n "$CONN" addr add 100.96.128.20/32 dev p2p0 &&
	ip -n "$CONN" route add 100.96.0.0/12 dev p2p0 &&
	ip -n "$CONN" addr add 10.0.10.2/24 dev lan0 && ip -n "$CONN" link set lan0 up &&
	ip -n "$LAN" addr add 10.0.10.9/24 dev lan0 && ip -n "$LAN" link set lan0 up &&
	ip -n "$LAN" link set lo up && ip -n "$LAN" route add 100.96.0.0/12 via 10.0.10.2
check "namespaces, the overlay link (p2p0) and the LAN link" [ $? -eq 0 ]
ip netns exec "$CONN" sysctl -qw net.ipv4.ip_forward=0

# ---- files readable by p2p ----
chmod 0711 "$T"
make_pki && make_policy
leaf wiki ec wiki.corp.test && cp "$T/pki/wiki.crt" "$T/pki/wiki.key" "$T/certs/"
cat >"$T/map.json" <<EOF
{
  "version": 1,
  "dns": { "zones": ["corp.test"] },
  "connectors": { "ny": { "key": "M88tNfFb2kZ9ZQQPVAOTW4v9Bql4Ul0HdlAsdr9SYiI=", "addr": "100.96.0.2" } },
  "clients": {
    "alice-laptop": { "key": "KFNiqKKdSaH+NJHW8p3aRzpuk5ZZp12vSgqADiqku2Y=", "addr": "100.96.1.10",
                      "user": "alice", "groups": ["eng", "ops"] }
  },
  "resources": {
    "apps": { "names": ["apps.corp.test"], "addr": "100.96.128.20", "connectors": ["ny"],
              "upstream": "http://127.0.0.1:8081" },
    "other": { "names": ["other.corp.test"], "addr": "100.96.128.30", "connectors": ["ldn"],
               "upstream": "http://127.0.0.1:8081" }
  }
}
EOF
sed 's/"connectors": { "ny"/"connectors": { "ldn": { "key": "qDFXQfj1NQoeY3st0LqzuFpsmm+E8vGR7i5e3lyz4j8=" }, "ny"/' \
	"$T/map.json" >"$T/map.tmp" && mv "$T/map.tmp" "$T/map.json"
mkdir -p "$R" "$T/state" "$T/audit" &&
	chgrp p2p "$R" "$T/certs" && chmod 0770 "$R" && chmod 0750 "$T/certs" &&
	chgrp p2p "$T/certs"/* && chmod 0640 "$T/certs"/* &&
	chown p2p:p2p "$T/state" "$T/audit" && chmod 0644 "$T/policy.json" "$T/jwks.json" "$T/map.json"
check "the certificates readable by group p2p only" [ $? -eq 0 ]

X="ip netns exec $CONN"
$X $PY -u "$P2P_TOP/tests/sh/tlsterm-app.py" main 8081 >"$T/app.out" 2>>"$LOG" &
pids="$pids $!"
check "the upstream app starts" wait_for 10 grep -q ready "$T/app.out"
check "p2p-mapd starts (as p2p)" start mapd $X p2p-mapd -d 3 -u p2p -r "$R" -s "$T/state" -f "$T/map.json"
check "p2p-authz starts (as p2p)" start authz $X p2p-authz -d 3 -u p2p -r "$R" -m "$R/mapd.sock" \
	-k "$T/state/assert.pem" -f "$T/policy.json"
check "p2p-audit starts (as p2p)" start audit $X p2p-audit -d 3 -u p2p -r "$R" -D "$T/audit" -H ny.test
check "p2p-tlsterm starts: -u p2p -i p2p0 -c ny, ports 443 and 80" \
	start tlsterm $X p2p-tlsterm -v -d 3 -u p2p -r "$R" -i p2p0 -c ny -C "$T/certs"

listening() { $X ss -Hltnp | grep "pid=$pid_tlsterm," | awk '{ print $4 }' | sort | tr '\n' ' '; }
check "ss: p2p-tlsterm listens on the resource's overlay address on p2p0, 443 and 80, and nothing else" \
	wait_for 5 sh -c '[ "$1" = "100.96.128.20%p2p0:443 100.96.128.20%p2p0:80 " ]' sh "$(listening)"
echo "# listening: $(listening)"
check "... not on the address of a resource another connector serves" sh -c '! echo "$1" | grep -q 100.96.128.30' sh "$(listening)"
check "it runs as p2p" [ "$(awk '/^Uid:/ { print $2 }' "/proc/$pid_tlsterm/status")" = "$(id -u p2p)" ]
check "... keeping CAP_NET_BIND_SERVICE alone" \
	[ "$(awk '/^CapEff:/ { print $2 }' "/proc/$pid_tlsterm/status")" = 0000000000000400 ]

from_client() { ip netns exec "$CLI" curl -sS --max-time 10 --cacert "$T/pki/ca.crt" "$@"; }
check "from the overlay (p2p0): https://apps.corp.test/health: 200" \
	sh -c '[ "$(ip netns exec "$1" curl -s -o /dev/null -w "%{http_code}" --max-time 10 --cacert "$2" --resolve apps.corp.test:443:100.96.128.20 https://apps.corp.test/health)" = 200 ]' sh "$CLI" "$T/pki/ca.crt"
from_client --resolve apps.corp.test:443:100.96.128.20 https://apps.corp.test/ops/x >"$T/ops.json"
check "... the WireGuard identity of 100.96.1.10 (alice-laptop, group ops) reaches the upstream" \
	jq -e '[.headers[] | select(.[0] == "X-P2P-Client") | .[1]] == ["alice-laptop"]' "$T/ops.json"
check "from the overlay, port 80: a redirect to https" \
	sh -c 'ip netns exec "$1" curl -s -D - -o /dev/null --max-time 10 -H "Host: apps.corp.test" http://100.96.128.20/x | grep -qi "^Location: https://apps.corp.test/x"' sh "$CLI"
lan_refused() { # ADDR PORT: a LAN host's connection finds nothing
	! ip netns exec "$LAN" timeout 5 $PY -c '
import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)' "$1" "$2" 2>/dev/null
}
check "from the LAN: the connector's LAN address, 443: nothing" lan_refused 10.0.10.2 443
check "from the LAN: the connector's LAN address, 80: nothing" lan_refused 10.0.10.2 80
check "from the LAN, routed to the overlay address through lan0: nothing (bound to p2p0)" lan_refused 100.96.128.20 443
check "... and the same address answers from the overlay (the refusal is the interface's)" \
	sh -c 'ip netns exec "$1" '"$PY"' -c "import socket; socket.create_connection((\"100.96.128.20\", 443), timeout=3)"' sh "$CLI"

# ---- the map adds a resource: bound as p2p, with the capability kept ----
ip -n "$CONN" addr add 100.96.128.21/32 dev p2p0
sed -e 's/"version": 1/"version": 2/' -e 's|"resources": {|"resources": {\n    "wiki": { "names": ["wiki.corp.test"], "addr": "100.96.128.21", "connectors": ["ny"], "upstream": "http://127.0.0.1:8081" },|' \
	"$T/map.json" >"$T/map.tmp" && chmod 0644 "$T/map.tmp" && mv "$T/map.tmp" "$T/map.json"
kill -HUP "$pid_mapd"
has_wiki() { listening | grep -q "100.96.128.21%p2p0:443"; }
check "a resource added to the map: its address bound on 443 at once" wait_for 10 has_wiki
check "... and served (its policy: none, 403 by default)" \
	sh -c '[ "$(ip netns exec "$1" curl -s -o /dev/null -w "%{http_code}" --max-time 10 --cacert "$2" --resolve wiki.corp.test:443:100.96.128.21 https://wiki.corp.test/)" = 403 ]' sh "$CLI" "$T/pki/ca.crt"

# ---- a certificate replaced, read as p2p ----
DAYS=10 leaf apps2 ec apps.corp.test
cp "$T/pki/apps2.key" "$T/certs/apps-ec.key.tmp" && cp "$T/pki/apps2.crt" "$T/certs/apps-ec.crt.tmp" &&
	chgrp p2p "$T/certs/apps-ec.key.tmp" "$T/certs/apps-ec.crt.tmp" &&
	chmod 0640 "$T/certs/apps-ec.key.tmp" "$T/certs/apps-ec.crt.tmp" &&
	mv "$T/certs/apps-ec.key.tmp" "$T/certs/apps-ec.key" && mv "$T/certs/apps-ec.crt.tmp" "$T/certs/apps-ec.crt"
served_days() {
	ip netns exec "$CLI" sh -c 'echo | openssl s_client -connect 100.96.128.20:443 -servername apps.corp.test -sigalgs ecdsa_secp256r1_sha256 2>/dev/null' |
		openssl x509 -noout -enddate 2>/dev/null
}
new_end=$(openssl x509 -in "$T/pki/apps2.leaf" -noout -enddate)
cert_is_new() { [ "$(served_days)" = "$new_end" ]; }
check "a replaced certificate is read by p2p-tlsterm as p2p and served" wait_for 10 cert_is_new
check "no warning or error from p2p-tlsterm" sh -c '! grep -E "^p2p-tlsterm: (error|fatal|warning): " "$1"' sh "$LOG"
finish
