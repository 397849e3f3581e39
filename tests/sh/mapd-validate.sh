#!/bin/sh
# p2p-mapd's map checks: every rule refuses a bad map with exit 102 and a
# "p2p-mapd: error: FILE: PATH: why" line naming the JSON path of the
# mistake; the example map passes; -n never writes the allocation state;
# bad usage exits 100; a daemon given a bad map at start exits 102.
#
# Each bad map is the good base map below with one jq edit (or a hand-made
# text for syntax errors), checked with `p2p-mapd -n`.
. "$(dirname "$0")/../lib.sh"

T=$(scratch)
pid=
cleanup() {
	if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null; fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

R=$T/run S=$T/state
mkdir -p "$S"
BASE=$T/base.json BAD=$T/bad.json ERR=$T/err

K1=M88tNfFb2kZ9ZQQPVAOTW4v9Bql4Ul0HdlAsdr9SYiI=
K2=KFNiqKKdSaH+NJHW8p3aRzpuk5ZZp12vSgqADiqku2Y=
cat >"$BASE" <<EOF
{
  "version": 1,
  "overlay": "100.96.0.0/12",
  "dns": { "zones": ["corp.test"] },
  "connectors": {
    "ny": { "key": "$K1", "endpoints": ["192.0.2.1:51820"] }
  },
  "clients": {
    "alice": { "key": "$K2", "user": "alice", "groups": ["eng"] }
  },
  "resources": {
    "vault": { "names": ["vault.corp.test"], "addr": "100.104.0.20", "connectors": ["ny"],
               "upstream": "http://10.0.0.5:8080", "routes": [{ "path": "/a", "strip": true }] },
    "ssh": { "names": ["ssh.corp.test"], "connectors": ["ny"], "kind": "tcp",
             "upstream": "10.0.0.6:22", "ports": [22] }
  }
}
EOF

mapd_check() { # FILE: run p2p-mapd -n on it, stderr in $ERR, sets $rc
	p2p-mapd -n -r "$R" -s "$S" -f "$1" >"$T/out" 2>"$ERR"
	rc=$?
}

# The error lines about $BAD, without their "p2p-mapd: error: FILE: ".
reported() { sed -n "s|^p2p-mapd: error: $BAD: ||p" "$ERR"; }

has_error() { # TEXT: some reported line starts with TEXT
	reported | awk -v t="$1" 'index($0, t) == 1 { found = 1 } END { exit !found }'
}

# refuse DESC JQ-EDIT EXPECTED: the base map with JQ-EDIT applied is refused
# (exit 102) with a line "EXPECTED..." (PATH: why).
refuse() {
	jq "$2" "$BASE" >"$BAD" || { fail "$1: jq edit $2"; return; }
	refuse_file "$1" "$3"
}

refuse_file() { # DESC EXPECTED, with the map already in $BAD
	mapd_check "$BAD"
	if [ "$rc" -eq 102 ] && has_error "$2"; then
		ok "$1: refused: $2"
	else
		fail "$1: want exit 102 and \"$BAD: $2...\"; got exit $rc:"
		sed 's/^/#   /' "$ERR"
	fi
}

# ---- the good maps ----

mapd_check "$BASE"
check "the base map is accepted (exit 0)" [ "$rc" -eq 0 ]
check "the base map prints configuration OK" grep -qx "configuration OK" "$T/out"
mapd_check "$P2P_TOP/etc/p2p/map.json"
check "etc/p2p/map.json is accepted (exit 0)" [ "$rc" -eq 0 ]
check "etc/p2p/map.json prints configuration OK" grep -qx "configuration OK" "$T/out"
check "etc/p2p/map.json: nothing on stderr" [ ! -s "$ERR" ]
check "-n wrote no allocation state" [ ! -e "$S/mapd-alloc.json" ]
check "-n created no socket" [ ! -e "$R/mapd.sock" ]

# ---- JSON itself ----

printf '{"version": 1,\n  "dns": {,}\n}\n' >"$BAD"
mapd_check "$BAD"
check "JSON syntax error: exit 102" [ "$rc" -eq 102 ]
check "JSON syntax error: named as FILE:LINE:COLUMN" \
	grep -q "^p2p-mapd: error: $BAD:2:11: " "$ERR"

printf '[{"version": 1}]\n' >"$BAD"
refuse_file "not an object" "the map is an array, not a JSON object"

printf '"version"' >"$BAD"
mapd_check "$BAD"
check "a bare string: exit 102" [ "$rc" -eq 102 ]
check "a bare string: named as FILE:LINE:COLUMN" grep -q "^p2p-mapd: error: $BAD:1:[0-9]*: " "$ERR"

: >"$BAD"
mapd_check "$BAD"
check "an empty file: exit 102" [ "$rc" -eq 102 ]

printf '{"version": 1, "dns": {"zones": ["corp.test"]}, "version": 2}\n' >"$BAD"
mapd_check "$BAD"
check "a member given twice: exit 102" [ "$rc" -eq 102 ]
check "a member given twice: named as FILE:LINE:COLUMN and the key" \
	grep -q "^p2p-mapd: error: $BAD:1:[0-9]*: duplicate object key.*version" "$ERR"

mapd_check "$T/nonexistent.json"
check "a missing map file: exit 102" [ "$rc" -eq 102 ]
check "a missing map file: the error names the file" grep -qF "$T/nonexistent.json" "$ERR"

# ---- top level ----

refuse "missing version" 'del(.version)' '"version" is missing'
refuse "version 0" '.version = 0' '.version: 0 is not a version'
refuse "negative version" '.version = -3' '.version: -3 is not a version'
refuse "unknown top-level member" '.conectors = {}' 'unknown member "conectors"'
refuse "overlay not a prefix" '.overlay = "100.96.0.0"' '.overlay: 100.96.0.0 is not a prefix'
refuse "overlay garbage" '.overlay = "overlay"' '.overlay: overlay is not a prefix'
refuse "overlay length over 32" '.overlay = "100.96.0.0/33"' '.overlay: 100.96.0.0/33 is not a prefix'
refuse "overlay host bits set" '.overlay = "100.96.0.1/12"' '.overlay: 100.96.0.1/12 is not a prefix'
refuse "overlay too small" '.overlay = "100.104.0.20/31"' '.overlay: 100.104.0.20/31: a prefix needs 2 to 64 host bits'

# ---- dns ----

refuse "missing dns" 'del(.dns)' '"dns" is missing'
refuse "missing dns.zones" 'del(.dns.zones)' '.dns: "zones" is missing'
refuse "empty dns.zones" '.dns.zones = []' '.dns.zones: is empty'
refuse "duplicate zone (other case, trailing dot)" '.dns.zones = ["corp.test", "CORP.test."]' \
	'.dns.zones[1]: corp.test is listed twice'
refuse "a zone that is not a name" '.dns.zones = ["corp.test", "bad zone"]' \
	'.dns.zones[1]: bad zone is not a DNS name'
refuse "a wildcard zone" '.dns.zones = ["*.corp.test"]' '.dns.zones[0]: *.corp.test is not a DNS name'
refuse "dns.ttl out of range" '.dns.ttl = 90000' '.dns.ttl: 90000 is not a TTL'
refuse "unknown member of dns" '.dns.zone = "corp.test"' '.dns: unknown member "zone"'
refuse "dns.addr not an IP" '.dns.addr = "dns.corp.test"' '.dns.addr: dns.corp.test is not an IP address'

# ---- addresses ----

refuse "address outside the overlay" '.resources.vault.addr = "10.1.2.3"' \
	'.resources.vault.addr: 10.1.2.3 is outside the overlay 100.96.0.0/12'
refuse "IPv6 address in an IPv4 overlay" '.connectors.ny.addr = "fd00::1"' \
	'.connectors.ny.addr: fd00::1 is outside the overlay 100.96.0.0/12'
refuse "the overlay's first address" '.resources.vault.addr = "100.96.0.0"' \
	'.resources.vault.addr: 100.96.0.0 is the first or last address of the overlay'
refuse "the overlay's last address" '.clients.alice.addr = "100.111.255.255"' \
	'.clients.alice.addr: 100.111.255.255 is the first or last address of the overlay'
# An IPv6 overlay: the first and the last (all ones) addresses are kept
# free as in IPv4, also in a /64, whose size does not fit in 64 bits.
refuse "IPv6 /64 overlay: its first address" '.overlay = "fd00::/64" | .resources.vault.addr = "fd00::"' \
	'.resources.vault.addr: fd00:: is the first or last address of the overlay'
refuse "IPv6 /64 overlay: its last address" \
	'.overlay = "fd00::/64" | .resources.vault.addr = "fd00::ffff:ffff:ffff:ffff"' \
	'.resources.vault.addr: fd00::ffff:ffff:ffff:ffff is the first or last address of the overlay'
jq '.overlay = "fd00::/64" | .resources.vault.addr = "fd00::ffff:ffff:ffff:fffe"' "$BASE" >"$T/v6.json"
mapd_check "$T/v6.json"
check "IPv6 /64 overlay: the address before the last is accepted" [ "$rc" -eq 0 ]
jq '.overlay = "fd00:1:2:3::/64" | del(.resources.vault.addr)' "$BASE" >"$T/v6.json"
mapd_check "$T/v6.json"
check "IPv6 /64 overlay with every address allocated: accepted" [ "$rc" -eq 0 ]
refuse "bad IP text" '.resources.vault.addr = "100.97.0.300"' \
	'.resources.vault.addr: 100.97.0.300 is not an IP address'
refuse "address of the wrong type" '.resources.vault.addr = 12' \
	'.resources.vault.addr: an integer is not an IP address'
refuse "duplicate addresses" '.connectors.ny.addr = "100.104.0.20"' \
	'.resources.vault.addr: 100.104.0.20 is also the address of connector/ny'
refuse "dns address taken by a resource" '.dns.addr = "100.104.0.20"' \
	'.resources.vault.addr: 100.104.0.20 is also the address of dns'

# ---- keys ----

refuse "duplicate keys" '.clients.alice.key = .connectors.ny.key' \
	'.clients.alice.key: the same key as .connectors.ny'
refuse "undecodable key" '.connectors.ny.key = "not a key"' '.connectors.ny.key: not a WireGuard public key'
refuse "key with a stray bit (non-canonical)" \
	'.connectors.ny.key = "M88tNfFb2kZ9ZQQPVAOTW4v9Bql4Ul0HdlAsdr9SYiJ="' \
	'.connectors.ny.key: not a WireGuard public key'
refuse "missing key" 'del(.clients.alice.key)' '.clients.alice: "key" is missing'

# ---- names ----

refuse "name outside every zone" '.resources.vault.names = ["vault.other.test"]' \
	'.resources.vault.names[0]: vault.other.test is in no zone of .dns.zones'
refuse "name that only ends like a zone" '.resources.vault.names = ["vaultcorp.test"]' \
	'.resources.vault.names[0]: vaultcorp.test is in no zone of .dns.zones'
refuse "the same name in two resources" '.resources.ssh.names = ["ssh.corp.test", "VAULT.corp.test."]' \
	'.resources.ssh.names[1]: vault.corp.test is already a name of resource vault'
refuse "the same wildcard in two resources" \
	'.resources.vault.names += ["*.x.corp.test"] | .resources.ssh.names += ["*.X.corp.test"]' \
	'.resources.ssh.names[1]: *.x.corp.test is already a name of resource vault'
refuse "not a DNS name" '.resources.vault.names = ["vault..corp.test"]' \
	'.resources.vault.names[0]: vault..corp.test is not a DNS name'
refuse "a resource without names" '.resources.vault.names = []' '.resources.vault.names: is empty'

# ---- resources ----

refuse "resource with an unknown connector" '.resources.vault.connectors = ["ny", "nowhere"]' \
	'.resources.vault.connectors[1]: no connector named "nowhere"'
refuse "a connector listed twice" '.resources.vault.connectors = ["ny", "ny"]' \
	'.resources.vault.connectors[1]: "ny" is listed twice'
refuse "resource without connectors" '.resources.vault.connectors = []' \
	'.resources.vault.connectors: is empty'
refuse "bad kind" '.resources.vault.kind = "udp"' '.resources.vault.kind: "udp" is neither "https" nor "tcp"'
refuse "tcp without ports" 'del(.resources.ssh.ports)' '.resources.ssh: "ports" is missing'
refuse "tcp with empty ports" '.resources.ssh.ports = []' '.resources.ssh.ports: is empty'
refuse "port out of range" '.resources.ssh.ports = [22, 65536]' '.resources.ssh.ports[1]: not a port'
refuse "bad upstream URL scheme" '.resources.vault.upstream = "ftp://10.0.0.5/"' \
	'.resources.vault.upstream: ftp://10.0.0.5/ is not an http:// or https:// URL'
refuse "upstream URL without a host" '.resources.vault.upstream = "http:///x"' \
	'.resources.vault.upstream: http:///x is not an http:// or https:// URL'
refuse "upstream URL with a bad port" '.resources.vault.upstream = "http://10.0.0.5:99999"' \
	'.resources.vault.upstream: http://10.0.0.5:99999 is not an http:// or https:// URL'
refuse "upstream URL with a space" '.resources.vault.upstream = "http://10.0.0.5/a b"' \
	'.resources.vault.upstream: http://10.0.0.5/a b is not an http:// or https:// URL'
refuse "tcp upstream that is a URL" '.resources.ssh.upstream = "http://10.0.0.6:22"' \
	'.resources.ssh.upstream: http://10.0.0.6:22 is not HOST:PORT'
refuse "missing upstream" 'del(.resources.vault.upstream)' '.resources.vault: "upstream" is missing'
refuse "bad route path" '.resources.vault.routes[0].path = "a"' \
	'.resources.vault.routes[0].path: "a" does not start with'
refuse "route without a path" '.resources.vault.routes += [{"strip": true}]' \
	'.resources.vault.routes[1]: "path" is missing'
refuse "bad route upstream" '.resources.vault.routes[0].upstream = "10.0.0.7:80"' \
	'.resources.vault.routes[0].upstream: 10.0.0.7:80 is not an http:// or https:// URL'
refuse "unknown member of a route" '.resources.vault.routes[0].stirp = true' \
	'.resources.vault.routes[0]: unknown member "stirp"'
refuse "unknown member of a resource" '.resources.vault.conectors = ["ny"]' \
	'.resources.vault: unknown member "conectors"'

# ---- entity names, endpoints, ports ----

refuse "entity name with upper case" '.clients["Alice"] = .clients.alice | del(.clients.alice)' \
	'.clients.Alice: "Alice" is not a valid name'
refuse "entity name with a space" '.clients["al ice"] = .clients.alice | del(.clients.alice)' \
	'.clients.al ice: "al ice" is not a valid name'
refuse "entity name starting with -" '.connectors["-ny"] = .connectors.ny' \
	'.connectors.-ny: "-ny" is not a valid name'
refuse "entity name of 64 characters" \
	'.clients["a123456789012345678901234567890123456789012345678901234567890123"] = .clients.alice | del(.clients.alice)' \
	'.clients.a123456789012345678901234567890123456789012345678901234567890123: "a1234567890'
jq '.clients["a12345678901234567890123456789012345678901234567890123456789012"] = .clients.alice | del(.clients.alice)' \
	"$BASE" >"$T/name63.json"
mapd_check "$T/name63.json"
check "entity name of 63 characters is accepted" [ "$rc" -eq 0 ]
refuse "endpoint without a port" '.connectors.ny.endpoints = ["192.0.2.1"]' \
	'.connectors.ny.endpoints[0]: 192.0.2.1 is not a valid HOST:PORT endpoint'
refuse "endpoint with port 0" '.connectors.ny.endpoints = ["192.0.2.1:51820", "ny.example.com:0"]' \
	'.connectors.ny.endpoints[1]: ny.example.com:0 is not a valid HOST:PORT endpoint'
refuse "endpoint with an unbracketed IPv6 address" '.connectors.ny.endpoints = ["2001:db8::1"]' \
	'.connectors.ny.endpoints[0]: 2001:db8::1 is not a valid HOST:PORT endpoint'
jq '.connectors.ny.endpoints = ["[2001:db8::1]:51820", "ny.example.com:51820"]' "$BASE" >"$T/ep.json"
mapd_check "$T/ep.json"
check "bracketed IPv6 and DNS-name endpoints are accepted" [ "$rc" -eq 0 ]
refuse "probe_port over 65535" '.connectors.ny.probe_port = 70000' \
	'.connectors.ny.probe_port: 70000 is not a port'
refuse "probe_port 0" '.connectors.ny.probe_port = 0' '.connectors.ny.probe_port: 0 is not a port'
refuse "control url not https" '.control = {"key": "qDFXQfj1NQoeY3st0LqzuFpsmm+E8vGR7i5e3lyz4j8=", "url": "http://c.example.com"}' \
	'.control.url: http://c.example.com is not an https:// URL'
refuse "control endpoint not HOST:PORT" '.control = {"key": "qDFXQfj1NQoeY3st0LqzuFpsmm+E8vGR7i5e3lyz4j8=", "endpoint": "c.example.com"}' \
	'.control.endpoint: c.example.com is not HOST:PORT'
refuse "unknown member of a client" '.clients.alice.group = "eng"' '.clients.alice: unknown member "group"'

# ---- wrong types ----

refuse "version as a string" '.version = "1"' '.version: is a string, not an integer'
refuse "version as a real" '.version = 1.5' '.version: is a number, not an integer'
refuse "overlay as a number" '.overlay = 12' '.overlay: is an integer, not a string'
refuse "dns as an array" '.dns = ["corp.test"]' '.dns: is an array, not an object'
refuse "dns.zones as a string" '.dns.zones = "corp.test"' '.dns.zones: is a string, not an array'
refuse "dns.ttl as a string" '.dns.ttl = "5"' '.dns.ttl: is a string, not an integer'
refuse "resources as an array" '.resources = []' '.resources: is an array, not an object'
refuse "a client as a string" '.clients.alice = "alice"' '.clients.alice: is a string, not an object'
refuse "groups as a string" '.clients.alice.groups = "eng"' '.clients.alice.groups: is a string, not an array'
refuse "a group as a number" '.clients.alice.groups = ["eng", 7]' '.clients.alice.groups[1]: is an integer, not a string'
refuse "key as a number" '.connectors.ny.key = 1' '.connectors.ny.key: is an integer, not a string'
refuse "names as a string" '.resources.vault.names = "vault.corp.test"' '.resources.vault.names: is a string, not an array'
refuse "strip as a string" '.resources.vault.routes[0].strip = "yes"' '.resources.vault.routes[0].strip: is a string, not a boolean'
refuse "a route as a string" '.resources.vault.routes = ["/a"]' '.resources.vault.routes[0]: is a string, not an object'
refuse "probe_port as a string" '.connectors.ny.probe_port = "51900"' '.connectors.ny.probe_port: is a string, not an integer'
refuse "a port as a string" '.resources.ssh.ports = ["22"]' '.resources.ssh.ports[0]: not a port'
refuse "null where an object belongs" '.connectors = null' '.connectors: is null, not an object'

# ---- size ----

refuse "an entity over 60000 bytes of JSON" \
	'.clients.alice.groups = [range(7000) | "group\(.)"]' '.clients.alice: is '
jq '.clients.alice.groups = [range(5000) | "group\(.)"]' "$BASE" >"$T/big.json"
mapd_check "$T/big.json"
check "an entity of about 50000 bytes is accepted" [ "$rc" -eq 0 ]

# ---- every problem in one pass ----

jq '.version = 0 | .resources.vault.kind = "udp" | .clients.alice.groups = "eng"' "$BASE" >"$BAD"
mapd_check "$BAD"
check "three problems: exit 102" [ "$rc" -eq 102 ]
check "three problems: all three reported in one run" \
	[ "$(grep -c "^p2p-mapd: error: $BAD: " "$ERR")" -eq 3 ]

jq '.clients = ([range(60) | {key: "c\(.)", value: {"key": "bad"}}] | from_entries)' "$BASE" >"$BAD"
mapd_check "$BAD"
check "60 problems: exit 102" [ "$rc" -eq 102 ]
check "60 problems: 50 reported, each naming its client" \
	[ "$(grep -c "^p2p-mapd: error: $BAD: \.clients\.c[0-9]*\.key: not a WireGuard public key" "$ERR")" -eq 50 ]
check "60 problems: then a count of the other 10" grep -q "and 10 more problems" "$ERR"

check "after all the refusals: still no allocation state" [ ! -e "$S/mapd-alloc.json" ]

# ---- -n with an existing state: reads it, never changes it ----

mkdir -p "$T/s2"
mkfifo "$T/ready"
p2p-mapd -v -d 3 -r "$R" -s "$T/s2" -f "$BASE" 3>"$T/ready" 2>"$T/log" &
pid=$!
check "the daemon starts with the base map" timeout 20 sh -c 'read -r _ <"$1"' sh "$T/ready"
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
check "the daemon exits 0 on SIGTERM" [ "$rc" -eq 0 ]
check "the daemon wrote the allocation state" [ -s "$T/s2/mapd-alloc.json" ]
cp "$T/s2/mapd-alloc.json" "$T/state.before"
jq '.clients.bob = {"key": "qDFXQfj1NQoeY3st0LqzuFpsmm+E8vGR7i5e3lyz4j8="} | del(.resources.ssh) | .version = 2' \
	"$BASE" >"$T/v2.json"
p2p-mapd -n -r "$R" -s "$T/s2" -f "$T/v2.json" >"$T/out" 2>"$ERR"; rc=$?
check "-n with a state and a map that adds and removes entities: OK" [ "$rc" -eq 0 ]
check "-n left the allocation state as it was" cmp -s "$T/state.before" "$T/s2/mapd-alloc.json"
check "-n left no temporary file in the state directory" \
	[ "$(ls -A "$T/s2")" = "mapd-alloc.json" ]

printf '{"version": 1, "addresses": ' >"$T/s2/mapd-alloc.json"
p2p-mapd -n -r "$R" -s "$T/s2" -f "$BASE" >"$T/out" 2>"$ERR"; rc=$?
check "an unreadable allocation state: -n exits 102" [ "$rc" -eq 102 ]
check "an unreadable allocation state: the error names the state file" \
	grep -qF "$T/s2/mapd-alloc.json" "$ERR"
printf '{"version": 1, "addresses": {"resource/vault": {"addr": "nowhere"}}}' >"$T/s2/mapd-alloc.json"
p2p-mapd -n -r "$R" -s "$T/s2" -f "$BASE" >"$T/out" 2>"$ERR"; rc=$?
check "a bad record in the allocation state: -n exits 102" [ "$rc" -eq 102 ]
check "a bad record in the allocation state: named" grep -qF ".addresses.resource/vault" "$ERR"
printf '{"version": 1, "addresses": {"resource/a": {"addr": "100.104.0.9"}, "resource/b": {"addr": "100.104.0.9"}}}' \
	>"$T/s2/mapd-alloc.json"
p2p-mapd -n -r "$R" -s "$T/s2" -f "$BASE" >"$T/out" 2>"$ERR"; rc=$?
check "two records with one address in the allocation state: -n exits 102" [ "$rc" -eq 102 ]
check "two records with one address in the allocation state: named" \
	grep -qF ".addresses.resource/b: 100.104.0.9 is also the address of resource/a" "$ERR"
printf '{"version": 2, "addresses": {}}' >"$T/s2/mapd-alloc.json"
p2p-mapd -n -r "$R" -s "$T/s2" -f "$BASE" >"$T/out" 2>"$ERR"; rc=$?
check "an allocation state of an unknown version: -n exits 102" [ "$rc" -eq 102 ]

# ---- usage ----

usage() { # DESC ARGS...: exit 100 and a usage line
	_d=$1; shift
	p2p-mapd "$@" >"$T/out" 2>"$ERR"; rc=$?
	if [ "$rc" -eq 100 ] && grep -q "usage\|-d" "$ERR"; then ok "usage: $_d: exit 100"
	else fail "usage: $_d: want exit 100, got $rc"; sed 's/^/#   /' "$ERR"; fi
}
usage "no -f" -n -r "$R" -s "$S"
usage "unknown option" -x -f "$BASE"
usage "an extra argument" -n -f "$BASE" extra
usage "-g negative" -n -g -1 -f "$BASE"
usage "-g not a number" -n -g 1d -f "$BASE"
usage "-g empty" -n -g "" -f "$BASE"
usage "-g over ten years" -n -g 315360001 -f "$BASE"
p2p-mapd -n -r "$R" -s "$S" -g 315360000 -f "$BASE" >"$T/out" 2>"$ERR"; rc=$?
check "-g of ten years (315360000) is accepted" [ "$rc" -eq 0 ]
usage "-d not a descriptor" -d x -f "$BASE"
usage "-d 2 (not above 2)" -d 2 -f "$BASE"
usage "-d of a closed descriptor" -d 9 -f "$BASE"
usage "-f without its argument" -f

# ---- a map refused at start ----

jq '.resources.vault.addr = "100.97.0.300"' "$BASE" >"$BAD"
mkdir -p "$T/s3"
p2p-mapd -r "$R" -s "$T/s3" -f "$BAD" >"$T/out" 2>"$ERR"; rc=$?
check "the daemon with a bad map exits 102" [ "$rc" -eq 102 ]
check "the daemon with a bad map names the JSON path" \
	grep -q "^p2p-mapd: error: $BAD: .resources.vault.addr: 100.97.0.300 is not an IP address" "$ERR"
check "the daemon with a bad map left no socket" [ ! -e "$R/mapd.sock" ]
check "the daemon with a bad map wrote no allocation state" [ ! -e "$T/s3/mapd-alloc.json" ]

p2p-mapd -r "$R" -s "$T/nonexistent" -f "$BASE" >"$T/out" 2>"$ERR"; rc=$?
check "a state directory that does not exist: exit 111 at start" [ "$rc" -eq 111 ]
check "a state directory that does not exist: the error names the state file" \
	grep -qF "$T/nonexistent/mapd-alloc.json" "$ERR"
check "a state directory that does not exist: nothing bound" [ ! -e "$R/mapd.sock" ]

p2p-mapd -r "$R" -s "$T/s3" -u no-such-user-p2p -f "$BASE" >"$T/out" 2>"$ERR"; rc=$?
check "-u with a user that does not exist: exit 102" [ "$rc" -eq 102 ]
check "-u with a user that does not exist: named" grep -q "no-such-user-p2p" "$ERR"
rm -f "$R/mapd.sock" "$T/s3/mapd-alloc.json"

printf 'garbage' >"$T/s3/mapd-alloc.json"
p2p-mapd -r "$R" -s "$T/s3" -f "$BASE" >"$T/out" 2>"$ERR"; rc=$?
check "the daemon with an unreadable state exits 102" [ "$rc" -eq 102 ]
check "the daemon with an unreadable state says why it refuses" grep -q "refusing to start" "$ERR"
check "the daemon with an unreadable state left it alone" [ "$(cat "$T/s3/mapd-alloc.json")" = garbage ]

finish
