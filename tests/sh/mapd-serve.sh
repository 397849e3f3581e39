#!/bin/sh
# p2p-mapd serving mapd.sock: lookup, reverse, get, status, errors, over-long
# and cut-off lines, misbehaving peers, and the p2p front end's exit codes.
#
#   test ── p2p ipc / socat ──> T/run/mapd.sock ── p2p-mapd -f T/map.json
#                                                   state in T/state
. "$(dirname "$0")/../lib.sh"

T=$(scratch)
pid=
cleanup() {
	if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null; fi
	# When something failed, the daemon's log helps to see why.
	if [ "$_failures" -gt 0 ] && [ -s "$T/log" ]; then sed 's/^/# log: /' "$T/log"; fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

if ! command -v socat >/dev/null 2>&1; then
	skip "mapd-serve: needs socat (apt-get install --no-install-recommends socat)"
	exit 0
fi

R=$T/run S=$T/state MAP=$T/map.json SOCK=$T/run/mapd.sock
mkdir -p "$S"

K_NY=M88tNfFb2kZ9ZQQPVAOTW4v9Bql4Ul0HdlAsdr9SYiI=
K_LDN=qDFXQfj1NQoeY3st0LqzuFpsmm+E8vGR7i5e3lyz4j8=
K_ALICE=KFNiqKKdSaH+NJHW8p3aRzpuk5ZZp12vSgqADiqku2Y=
K_BOB=g/ZIJiztS/hqsb+nspSwCjUNbC2SWcudwP45nt9GWSA=
K_CONTROL=IXa2w3cvIIylob3mbYgV/GjVUa7rPatkN40xsoijSSI=
cat >"$MAP" <<EOF
{
  "version": 7,
  "dns": { "zones": ["corp.test", "sub.corp.test"], "ttl": 30 },
  "control": { "key": "$K_CONTROL", "endpoint": "control.example.com:51820" },
  "connectors": {
    "ny": { "key": "$K_NY", "endpoints": ["192.0.2.1:51820"] },
    "ldn": { "key": "$K_LDN", "addr": "100.96.0.10" }
  },
  "clients": {
    "alice": { "key": "$K_ALICE", "addr": "100.97.0.5", "user": "alice", "groups": ["eng", "ops"] },
    "bob": { "key": "$K_BOB" }
  },
  "resources": {
    "vault": { "names": ["vault.corp.test"], "addr": "100.104.0.20", "connectors": ["ny"],
               "upstream": "http://10.0.0.5:8080" },
    "apps": { "names": ["apps.corp.test", "*.apps.corp.test"], "connectors": ["ny", "ldn"],
              "upstream": "http://10.0.0.5:8081" },
    "special": { "names": ["special.apps.corp.test"], "addr": "100.104.0.21", "connectors": ["ny"],
                 "upstream": "https://10.0.0.5:8443" },
    "deep": { "names": ["*.x.apps.corp.test"], "addr": "100.104.0.22", "connectors": ["ny"],
              "upstream": "http://10.0.0.5:8082" },
    "git": { "names": ["git.sub.corp.test"], "connectors": ["ldn"], "kind": "tcp",
             "upstream": "10.0.0.6:22", "ports": [22] }
  }
}
EOF

# Start p2p-mapd; ready once it has written its newline on the fifo (EOF
# there means it died first).
start() {
	rm -f "$T/ready" && mkfifo "$T/ready" || return 1
	p2p-mapd -v -d 3 -r "$R" -s "$S" "$@" -f "$MAP" 3>"$T/ready" 2>>"$T/log" &
	pid=$!
	timeout 20 sh -c 'read -r _ <"$1"' sh "$T/ready"
}

stop() { # SIGNAL: the daemon exits 0 and removes its socket
	kill "-$1" "$pid"
	wait "$pid"
	_rc=$?
	pid=
	check "SIG$1: p2p-mapd exits 0" [ "$_rc" -eq 0 ]
	check "SIG$1: the socket is removed" [ ! -e "$SOCK" ]
}

q() { p2p -r "$R" ipc mapd "$1"; }            # every reply line
raw() { socat -t 10 - "UNIX-CONNECT:$SOCK"; }  # stdin as is; replies out
between() { [ -n "$1" ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; } # N LO HI
jqs() { jq -se "$1" "$2" >/dev/null; }                  # JQ-TEST FILE (all lines)
is() { printf '%s\n' "$1" | jq -e "$2" >/dev/null 2>&1; } # JSON-TEXT JQ-TEST

check "p2p-mapd starts and says it is ready" start
check "the socket is mode 0660" [ "$(stat -c %a "$SOCK")" = 660 ]
check "the missing run directory was made, mode 0755" [ "$(stat -c %a "$R")" = 755 ]

# ---- lookup ----

lookup_is() { # NAME JQ-TEST: the lookup answer passes JQ-TEST
	out=$(q "{\"id\":11,\"op\":\"lookup\",\"name\":\"$1\"}")
	if is "$out" "$2"; then ok "lookup $1: $2"; else fail "lookup $1: $2; got: $out"; fi
}

lookup_is vault.corp.test \
	'.id == 11 and .ok and .addr == "100.104.0.20" and .resource == "vault" and .kind == "https" and .ttl == 30 and .zone == "corp.test"'
lookup_is VAULT.Corp.TEST. '.ok and .addr == "100.104.0.20" and .resource == "vault"'
lookup_is vault.corp.test. '.ok and .resource == "vault"'
APPS=$(q '{"op":"lookup","name":"apps.corp.test"}' | jq -r .addr)
check "apps has an allocated address in the resources' half (100.104.0.0/13)" \
	between "$(echo "$APPS" | sed -n 's/^100\.\([0-9]*\)\.[0-9]*\.[0-9]*$/\1/p')" 104 111
lookup_is foo.apps.corp.test ".ok and .resource == \"apps\" and .addr == \"$APPS\" and .zone == \"corp.test\""
lookup_is a.b.apps.corp.test '.ok and .resource == "apps"'
lookup_is FOO.APPS.CORP.TEST. '.ok and .resource == "apps"'
lookup_is special.apps.corp.test '.ok and .resource == "special" and .addr == "100.104.0.21"'
lookup_is Special.Apps.corp.test. '.ok and .resource == "special"'
lookup_is y.x.apps.corp.test '.ok and .resource == "deep" and .addr == "100.104.0.22"'
lookup_is x.apps.corp.test '.ok and .resource == "apps"'
lookup_is git.sub.corp.test '.ok and .resource == "git" and .kind == "tcp" and .zone == "sub.corp.test"'
lookup_is nothere.corp.test \
	'.id == 11 and .ok == false and .notfound == true and .zone == "corp.test" and .error == "nothere.corp.test: no such name"'
lookup_is corp.test '.ok == false and .notfound and .zone == "corp.test"'
lookup_is nothere.sub.corp.test '.ok == false and .notfound and .zone == "sub.corp.test"'
lookup_is x.vault.corp.test '.ok == false and .notfound and .zone == "corp.test"'
lookup_is www.example.com \
	'.ok == false and .notfound == true and .zone == null and .error == "www.example.com: not in a private zone"'
lookup_is xcorp.test '.ok == false and .notfound and (.zone == null)'
# Bytes no map name has are still inside their zone: a resolver asking
# with them must not be told to look outside.
lookup_is '*.corp.test' '.ok == false and .notfound and .zone == "corp.test"'
lookup_is 'x/y.corp.test' '.ok == false and .notfound and .zone == "corp.test"'
lookup_is 'FOO BAR.Sub.Corp.Test.' '.ok == false and .notfound and .zone == "sub.corp.test"'
out=$(q '{"id":12,"op":"lookup"}')
check "lookup without a name: an error, not a negative answer" \
	is "$out" '.id == 12 and .ok == false and (.error | test("name")) and (.notfound | not)'
out=$(q '{"id":13,"op":"lookup","name":5}')
check "lookup with a number for a name: an error" is "$out" '.id == 13 and .ok == false and (.notfound | not)'

# ---- reverse ----

reverse_is() { # ADDR JQ-TEST
	out=$(q "{\"id\":21,\"op\":\"reverse\",\"addr\":\"$1\"}")
	if is "$out" "$2"; then ok "reverse $1: $2"; else fail "reverse $1: $2; got: $out"; fi
}

reverse_is 100.104.0.20 \
	'.id == 21 and .ok and .kind == "resource" and .name == "vault" and .names == ["vault.corp.test"] and .ttl == 30'
reverse_is "$APPS" '.ok and .kind == "resource" and .name == "apps" and .names == ["apps.corp.test", "*.apps.corp.test"]'
reverse_is 100.97.0.5 \
	".ok and .kind == \"client\" and .name == \"alice\" and .user == \"alice\" and .groups == [\"eng\", \"ops\"] and .key == \"$K_ALICE\""
reverse_is 100.96.0.10 ".ok and .kind == \"connector\" and .name == \"ldn\" and .key == \"$K_LDN\""
reverse_is 100.96.0.99 '.id == 21 and .ok == false and .notfound == true'
reverse_is 10.0.0.5 '.ok == false and .notfound == true'
reverse_is nonsense '.ok == false and (.notfound | not) and (.error | test("nonsense is not an IP address"))'

# ---- get ----

q '{"id":42,"op":"get"}' >"$T/get"; rc=$?
check "get: p2p ipc exits 0" [ "$rc" -eq 0 ]
n=$(wc -l <"$T/get")
first=$(sed -n 1p "$T/get")
count=$(printf '%s\n' "$first" | jq .count)
check "get: first line is ok with the version, settings and count" \
	is "$first" '.id == 42 and .ok and .version == 7 and .watch == false and .count == 10 and .settings.overlay == "100.96.0.0/12" and .settings.dns.zones == ["corp.test", "sub.corp.test"] and .settings.dns.ttl == 30'
check "get: count + 2 lines in all" [ "$n" -eq $((count + 2)) ]
check "get: the last line is the end, with the version" \
	is "$(tail -n 1 "$T/get")" '. == {"id": 42, "event": "end", "version": 7}'
sed '1d;$d' "$T/get" >"$T/sets"
check "get: every middle line is a set with id, kind, name and a value with an address" \
	jqs 'length == 10 and all(.[]; .id == 42 and .event == "set" and (.kind | type) == "string" and (.name | type) == "string" and (.value.addr | type) == "string")' "$T/sets"
check "get: control, 2 connectors, 2 clients, 5 resources" \
	jqs '[.[] | .kind] | group_by(.) | map({(.[0]): length}) | add == {"control": 1, "connector": 2, "client": 2, "resource": 5}' "$T/sets"
check "get: no two entities share an address" \
	jqs '[.[] | .value.addr] | length == (unique | length)' "$T/sets"
check "get: defaults are filled in (kind, probe_port)" \
	jqs 'any(.[]; .name == "vault" and .value.kind == "https") and any(.[]; .name == "ny" and .value.probe_port == 51900)' "$T/sets"
# The pools: connectors and control in the first sixteenth of 100.96.0.0/12,
# clients up to its half, resources in the upper half.
octet2() { jq -se "[.[] | select(.kind == \"$1\" and .name == \"$2\") | .value.addr | split(\".\")[1] | tonumber][0]" "$T/sets"; }
check "get: connector ny got an address in 100.96.0.0/16" [ "$(octet2 connector ny)" -eq 96 ]
check "get: control got an address in 100.96.0.0/16" [ "$(octet2 control control)" -eq 96 ]
b=$(octet2 client bob)
check "get: client bob got an address in 100.97.0.0-100.103.255.255" between "$b" 97 103
g=$(octet2 resource git)
check "get: resource git got an address in 100.104.0.0/13" between "$g" 104 111
BOB=$(jq -sr '.[] | select(.name == "bob") | .value.addr' "$T/sets")
reverse_is "$BOB" '.ok and .kind == "client" and .name == "bob" and (has("user") | not) and (has("groups") | not)'
NY=$(jq -sr '.[] | select(.name == "ny") | .value.addr' "$T/sets")
reverse_is "$NY" '.ok and .kind == "connector" and .name == "ny"'
DNS=$(printf '%s\n' "$first" | jq -r .settings.dns.addr)
reverse_is "$DNS" '.ok and .kind == "dns"'
check "get: the dns address is allocated in 100.96.0.0/16" is "\"$DNS\"" 'startswith("100.96.")'

# ---- status ----

out=$(q '{"id":3,"op":"status"}')
check "status: every field" \
	is "$out" ".id == 3 and .ok and .prog == \"p2p-mapd\" and .version == 7 and .file == \"$MAP\" and .overlay == \"100.96.0.0/12\" and .connectors == 2 and .clients == 2 and .resources == 5 and .watchers == 0 and .connections == 1 and .reloads == 0 and .refused == 0 and has(\"last_error\") and .last_error == null"

# ---- errors ----

out=$(q '{"id":5,"op":"frobnicate"}'); rc=$?
check "unknown op: the error names it" is "$out" ". == {\"id\": 5, \"ok\": false, \"error\": \"unknown op 'frobnicate'\"}"
check "unknown op: p2p ipc exits 1" [ "$rc" -eq 1 ]
out=$(printf 'hello there\n' | raw)
check "garbage line: bad request with id null" \
	is "$out" '.id == null and .ok == false and (.error | startswith("bad request"))'
out=$(printf '{"id":8}\n' | raw)
check "a request without op: bad request, its id echoed" \
	is "$out" '.id == 8 and .ok == false and .error == "bad request: .op: missing"'
out=$(printf '{"id":"eight","op":"status"}\n' | raw)
check "a string id: bad request with id null" is "$out" '.id == null and .ok == false and (.error | test("id"))'
out=$(printf '[1,2]\n' | raw)
check "a JSON array: bad request" is "$out" '.id == null and .ok == false and (.error | test("not a JSON object"))'
printf '{"id":1,"op":"status"}\r\n\n\n{"id":2,"op":"lookup","name":"vault.corp.test"}\n{"id":3,"op":"nope"}\n' | raw >"$T/multi"
check "three requests on one connection (CRLF, blank lines): three replies in order" \
	jqs 'length == 3 and .[0].id == 1 and .[0].ok and .[1].id == 2 and .[1].addr == "100.104.0.20" and .[2].id == 3 and .[2].ok == false' "$T/multi"
out=$(printf '{"id":9,"op":"status"}' | raw)
check "a last request without its newline is still answered" is "$out" '.id == 9 and .ok'

# ---- line length ----

pad() { head -c "$1" /dev/zero | tr '\0' a; }
{ pad 70000; printf '\n{"id":2,"op":"status"}\n'; } | raw >"$T/long"
check "a 70000-byte line: answered line too long, then the next request on the same connection" \
	jqs 'length == 2 and .[0] == {"id": null, "ok": false, "error": "line too long (limit 65536 bytes)"} and .[1].id == 2 and .[1].ok' "$T/long"
{ pad 300000; printf '\n{"id":2,"op":"lookup","name":"vault.corp.test"}\n'; } | raw >"$T/long"
check "a 300000-byte line: one line-too-long answer only, then the next request" \
	jqs 'length == 2 and (.[0].error | startswith("line too long")) and .[1].id == 2 and .[1].addr == "100.104.0.20"' "$T/long"
# The limit counts the newline: 65535 bytes and "\n" fit, one byte more does not.
req='{"id":4,"op":"status","pad":"'
fill=$((65535 - ${#req} - 2))
{ printf '%s' "$req"; pad "$fill"; printf '"}\n'; } | raw >"$T/long"
check "a request of 65535 bytes plus newline is answered" jqs 'length == 1 and .[0].id == 4 and .[0].ok' "$T/long"
{ printf '%s' "$req"; pad $((fill + 1)); printf '"}\n{"id":5,"op":"status"}\n'; } | raw >"$T/long"
check "a request of 65536 bytes plus newline is too long, the next one answered" \
	jqs 'length == 2 and (.[0].error | startswith("line too long")) and .[1].id == 5' "$T/long"

# ---- misbehaving peers ----

connections() { q '{"op":"status"}' | jq -e ".connections == $1" >/dev/null; }

i=0
while [ "$i" -lt 50 ]; do
	socat -u /dev/null "UNIX-CONNECT:$SOCK" 2>/dev/null
	i=$((i + 1))
done
check "50 peers that connect and close at once: the daemon still answers" \
	is "$(q '{"op":"status"}')" '.ok'
check "... and holds no connection for them" wait_for 5 connections 1
printf '{"id":1,"op":"sta' | socat -u - "UNIX-CONNECT:$SOCK"
printf '{"id":1,"op":"get"}\n' | socat -u - "UNIX-CONNECT:$SOCK"
{ pad 100000; } | socat -u - "UNIX-CONNECT:$SOCK"
check "peers gone mid-line, mid-reply and mid-long-line: the daemon still answers" \
	is "$(q '{"op":"lookup","name":"vault.corp.test"}')" '.addr == "100.104.0.20"'
check "... and holds no connection for them" wait_for 5 connections 1

# A peer that sends half a line and waits does not hold up the others.
mkfifo "$T/slow.in"
socat -t 10 - "UNIX-CONNECT:$SOCK" <"$T/slow.in" >"$T/slow.out" &
slow=$!
exec 7>"$T/slow.in"
printf '{"id":77,"op":"sta' >&7
check "a peer stuck mid-line: others are answered" wait_for 5 connections 2
printf 'tus"}\n' >&7
check "the stuck peer's line, finished later, is answered" \
	wait_for 5 jq -e '.id == 77 and .ok' "$T/slow.out"
exec 7>&-
wait "$slow"
check "the stuck peer's connection closes when it does" wait_for 5 connections 1

# ---- p2p front end ----

p2p -r "$R" status >"$T/out"; rc=$?
check "p2p status: exit 0 with mapd up" [ "$rc" -eq 0 ]
check "p2p status: mapd up with its version" grep -q "^mapd  *up prog=p2p-mapd version=7 " "$T/out"
out=$(p2p -r "$R" lookup Foo.Apps.Corp.Test); rc=$?
check "p2p lookup: found: exit 0" [ "$rc" -eq 0 ]
check "p2p lookup: prints the address" [ "$out" = "$APPS" ]
p2p -r "$R" lookup nothere.corp.test >"$T/out" 2>"$T/err"; rc=$?
check "p2p lookup: not found: exit 1" [ "$rc" -eq 1 ]
check "p2p lookup: not found: nothing on stdout" [ ! -s "$T/out" ]
check "p2p lookup: not found: the reason on stderr" grep -q "no such name" "$T/err"
p2p -r "$R" lookup www.example.com >/dev/null 2>&1; rc=$?
check "p2p lookup: outside the zones: exit 1" [ "$rc" -eq 1 ]
out=$(p2p -r "$R" reverse 100.97.0.5); rc=$?
check "p2p reverse: found: exit 0" [ "$rc" -eq 0 ]
check "p2p reverse: found: prints the name" [ "$out" = alice ]
out=$(p2p -r "$R" reverse "$DNS"); rc=$?
check "p2p reverse of the dns address: exit 0" [ "$rc" -eq 0 ]
check "p2p reverse of the dns address: prints its kind" [ "$out" = dns ]
p2p -r "$R" reverse 100.96.0.99 >/dev/null 2>&1; rc=$?
check "p2p reverse: not found: exit 1" [ "$rc" -eq 1 ]

# A socket nobody serves (a dead daemon's) shows as down.
/usr/bin/python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$R/dead.sock"
p2p -r "$R" status >"$T/out"; rc=$?
check "p2p status: a dead daemon's socket: exit 1" [ "$rc" -eq 1 ]
check "p2p status: the dead one shows down" grep -q "^dead  *down$" "$T/out"
check "p2p status: mapd still shows up" grep -q "^mapd  *up " "$T/out"
rm -f "$R/dead.sock"

# ---- a second daemon on the same socket ----

mkdir -p "$T/state2"
p2p-mapd -r "$R" -s "$T/state2" -f "$MAP" 2>"$T/err2"; rc=$?
check "a second p2p-mapd on the same socket: exit 111" [ "$rc" -eq 111 ]
check "a second p2p-mapd: says another one serves it" grep -q "another p2p-mapd" "$T/err2"
check "the first still answers" is "$(q '{"op":"status"}')" '.ok and .version == 7'

stop TERM

# A file that is not a socket where the socket goes is never removed.
echo precious >"$SOCK"
p2p-mapd -r "$R" -s "$S" -f "$MAP" 2>"$T/err2"; rc=$?
check "a plain file at the socket path: exit 111" [ "$rc" -eq 111 ]
check "a plain file at the socket path: says why" grep -q "File exists" "$T/err2"
check "a plain file at the socket path: left alone" [ "$(cat "$SOCK")" = precious ]
rm -f "$SOCK"

p2p -r "$R" lookup vault.corp.test >/dev/null 2>&1; rc=$?
check "p2p lookup with no daemon: exit 111" [ "$rc" -eq 111 ]

# SIGINT stops it as cleanly.
check "p2p-mapd starts again" start
check "same addresses after the restart" \
	[ "$(q '{"op":"lookup","name":"apps.corp.test"}' | jq -r .addr)" = "$APPS" ]
stop INT
check "p2p-mapd starts once more" start
check "it answers" is "$(q '{"op":"status"}')" '.ok and .version == 7 and .reloads == 0'
stop TERM

check "no error or warning logged" sh -c '! grep -E ": (error|warning|fatal): " "$1"' sh "$T/log"

finish
