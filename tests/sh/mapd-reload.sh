#!/bin/sh
# p2p-mapd reloading its map and keeping addresses stable.
#
#   test ── writes T/map.json (rename / in place), SIGHUP, SIGTERM, SIGKILL
#     │
#     ├── socat (one watch connection, kept open) ──┐
#     └── p2p ipc (get, status, lookup) ────────────┴─> T/run/mapd.sock ── p2p-mapd
#                                                        state in T/state
# Part 1: watch events for edits, refused maps, stability across reloads and
#         restarts (also after SIGKILL), explicit addresses that collide.
# Part 2: a /29 overlay with no room to spare, to see the grace period (-g)
#         keep a removed entity's address from newcomers, and -g 0; the map
#         is a symbolic link to a file elsewhere, reloaded by SIGHUP.
. "$(dirname "$0")/../lib.sh"
LC_ALL=C
export LC_ALL

T=$(scratch)
pid='' wpid='' ppid_watch=''
cleanup() {
	for p in $pid $wpid $ppid_watch; do kill -KILL "$p" 2>/dev/null; done
	# When something failed, the daemon's log helps to see why.
	if [ "$_failures" -gt 0 ] && [ -s "$LOG" ]; then sed 's/^/# log: /' "$LOG"; fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

if ! command -v socat >/dev/null 2>&1; then
	skip "mapd-reload: needs socat (apt-get install --no-install-recommends socat)"
	exit 0
fi

R=$T/run S=$T/state MAP=$T/map.json SOCK=$T/run/mapd.sock LOG=$T/log
mkdir -p "$S"

# Start p2p-mapd with the map in $MAP; ready once it has written its
# newline on the fifo (EOF there means it died first).
start() {
	rm -f "$T/ready" && mkfifo "$T/ready" || return 1
	p2p-mapd -v -d 3 -r "$R" -s "$S" "$@" -f "$MAP" 3>"$T/ready" 2>>"$LOG" &
	pid=$!
	timeout 20 sh -c 'read -r _ <"$1"' sh "$T/ready"
}

stop() { # DESC: SIGTERM; the daemon exits 0
	kill -TERM "$pid"
	wait "$pid"
	_rc=$?
	pid=
	check "$1: p2p-mapd exits 0 on SIGTERM" [ "$_rc" -eq 0 ]
}

q() { p2p -r "$R" ipc mapd "$1"; }
jqf() { jq -e "$@" >/dev/null; }   # jq -e, quiet
is() { printf '%s\n' "$1" | jq -e "$2" >/dev/null 2>&1; }
status_is() { is "$(q '{"op":"status"}')" "$1"; }   # JQ-TEST on the status reply
addr_of() { q "{\"op\":\"lookup\",\"name\":\"$1\"}" | jq -r .addr; }

# Every entity and its address, "kind/name addr" sorted, the dns as "dns".
addresses() {
	q '{"op":"get"}' | jq -r 'if .ok then "dns \(.settings.dns.addr)"
		elif .event == "set" then "\(.kind)/\(.name) \(.value.addr)" else empty end' | sort
}

# Replace the map the way deploy tools do: write a temporary, rename it over.
put_rename() { cat >"$MAP.tmp" && mv "$MAP.tmp" "$MAP"; }
# Or the way an editor saving in place does: truncate and write.
put_inplace() { cat >"$MAP"; }

# ---- the watch connection: socat with its input on a fifo held open ----

W=$T/watch.out
watch_open() {
	rm -f "$T/watch.in" && mkfifo "$T/watch.in"
	: >"$W"
	socat -t 1 - "UNIX-CONNECT:$SOCK" <"$T/watch.in" >"$W" &
	wpid=$!
	exec 8>"$T/watch.in"
	printf '{"id":9,"op":"watch"}\n' >&8
}
# The lines of the Nth change event, from "change" to its "end".
block() {
	awk -v want="$1" '/"event":"change"/ { n++ }
		n == want { print } n == want && /"event":"end"/ { exit }' "$W"
}
changes() { grep -c '"event":"change"' "$W"; }
has_block() { block "$1" | grep -q '"event":"end"'; }
# "set kind/name" and "del kind/name" lines of block N, sorted.
block_summary() {
	block "$1" | jq -r 'select(.event == "set" or .event == "del") | "\(.event) \(.kind)/\(.name)"' | sort | tr '\n' ' '
}

wait_change() { # N DESC: the Nth change arrives within a second (else wait on)
	if wait_for 1 has_block "$1"; then ok "$2: the change event arrives within a second"
	elif wait_for 10 has_block "$1"; then fail "$2: the change event took more than a second"
	else fail "$2: no change event"; fi
}

K1=M88tNfFb2kZ9ZQQPVAOTW4v9Bql4Ul0HdlAsdr9SYiI=
K2=qDFXQfj1NQoeY3st0LqzuFpsmm+E8vGR7i5e3lyz4j8=
K3=KFNiqKKdSaH+NJHW8p3aRzpuk5ZZp12vSgqADiqku2Y=
K4=g/ZIJiztS/hqsb+nspSwCjUNbC2SWcudwP45nt9GWSA=
K5=tjw8oukLlUhf0E6LDEkOYhHUyw3XqLc+69r2UCwPlz8=
K6=Dl9ve3t0BjVvk3hGdtc3UjpggmODiDEh/fXB/GPrSjI=
K7=//X8qNifslwdSCo9i+sX6lco/KKFj94VM32zhXNQw38=

cat >"$T/v1.json" <<EOF
{
  "version": 1,
  "dns": { "zones": ["corp.test"] },
  "connectors": {
    "ny": { "key": "$K1" },
    "ldn": { "key": "$K2" }
  },
  "clients": {
    "alice": { "key": "$K3", "user": "alice" },
    "bob": { "key": "$K4" }
  },
  "resources": {
    "vault": { "names": ["vault.corp.test"], "addr": "100.104.0.20", "connectors": ["ny"],
               "upstream": "http://10.0.0.5:8080" },
    "apps": { "names": ["apps.corp.test", "*.apps.corp.test"], "connectors": ["ny", "ldn"],
              "upstream": "http://10.0.0.5:8081" },
    "git": { "names": ["git.corp.test"], "connectors": ["ldn"], "kind": "tcp",
             "upstream": "10.0.0.6:22", "ports": [22] },
    "wiki": { "names": ["wiki.corp.test"], "connectors": ["ny"], "upstream": "http://10.0.0.7" }
  }
}
EOF
edit() { jq "$1" "$T/v1.json"; } # JQ: v1 edited, on stdout

# ==== part 1 ====

put_rename <"$T/v1.json"
check "p2p-mapd starts" start -g 3600
addresses >"$T/addr.v1"
check "v1: 9 entities with an address (dns, 2 connectors, 2 clients, 4 resources)" \
	[ "$(wc -l <"$T/addr.v1")" -eq 9 ]
check "v1: all 9 addresses distinct" [ "$(cut -d' ' -f2 "$T/addr.v1" | sort -u | wc -l)" -eq 9 ]

watch_open
check "watch: the initial dump arrives" wait_for 10 grep -q '"event":"end"' "$W"
check "watch: first line is ok, watch true, version 1, count 8" \
	is "$(head -n 1 "$W")" '.id == 9 and .ok and .watch == true and .version == 1 and .count == 8 and .settings.dns.zones == ["corp.test"]'
check "watch: 8 set lines then the end" \
	[ "$(sed '1d;$d' "$W" | jq -s 'map(select(.id == 9 and .event == "set")) | length')" -eq 8 ]
check "watch: the dump ends with end version 1" is "$(tail -n 1 "$W")" '. == {"id": 9, "event": "end", "version": 1}'
check "status counts the watcher" status_is '.watchers == 1'
printf '{"id":10,"op":"watch"}\n{"id":11,"op":"status"}\n' >&8
check "watch: a second watch on the connection is an error" \
	wait_for 5 jqf -s 'any(.[]; . == {"id": 10, "ok": false, "error": "this connection is already watching"})' "$W"
check "watch: other requests on the watching connection are answered" \
	wait_for 5 jqf -s 'any(.[]; .id == 11 and .ok and .watchers == 1)' "$W"

# -- edit 1, by rename: bump version, add a resource and a client, remove
# -- a resource, change another
edit '.version = 2 | del(.resources.wiki)
	| .resources.new1 = {"names": ["new1.corp.test"], "connectors": ["ny"], "upstream": "http://10.0.0.8"}
	| .clients.carol = {"key": "'"$K5"'"} | .resources.apps.upstream = "http://10.0.0.5:9000"' | put_rename
wait_change 1 "rename"
check "rename: change carries version 2 and the settings" \
	is "$(block 1 | head -n 1)" '.id == 9 and .event == "change" and .version == 2 and .settings.overlay == "100.96.0.0/12"'
check "rename: set lines for the new and the changed, del for the removed, nothing else" \
	[ "$(block_summary 1)" = "del resource/wiki set client/carol set resource/apps set resource/new1 " ]
check "rename: the new entities come with their address" \
	is "$(block 1 | jq -s 'map(select(.event == "set" and (.name == "new1" or .name == "carol")) | .value.addr | type)')" '. == ["string", "string"]'
check "rename: the changed one with its new value" \
	is "$(block 1 | jq -s 'map(select(.name == "apps"))[0]')" '.value.upstream == "http://10.0.0.5:9000" and .id == 9'
check "rename: the block ends with end version 2" is "$(block 1 | tail -n 1)" '. == {"id": 9, "event": "end", "version": 2}'
check "rename: the watch connection is still open" kill -0 "$wpid"
check "rename: status shows version 2, 1 reload, still 1 watcher" \
	status_is '.version == 2 and .reloads == 1 and .refused == 0 and .watchers == 1 and .resources == 4 and .clients == 3'
check "rename: lookups answer from the new map" [ "$(addr_of new1.corp.test)" != null ]
check "rename: the removed name is gone" \
	is "$(q '{"op":"lookup","name":"wiki.corp.test"}')" '.ok == false and .notfound'

# -- edit 2, in place: bump version, remove a client, add a connector and a
# -- resource behind it
edit '.version = 3 | del(.resources.wiki) | del(.clients.bob)
	| .resources.new1 = {"names": ["new1.corp.test"], "connectors": ["ny"], "upstream": "http://10.0.0.8"}
	| .clients.carol = {"key": "'"$K5"'"} | .resources.apps.upstream = "http://10.0.0.5:9000"
	| .connectors.sfo = {"key": "'"$K6"'", "endpoints": ["192.0.2.9:51820"]}
	| .resources.crm = {"names": ["crm.corp.test"], "connectors": ["sfo"], "upstream": "https://10.0.1.2"}' >"$T/v3.json"
put_inplace <"$T/v3.json"
wait_change 2 "in place"
check "in place: change carries version 3" is "$(block 2 | head -n 1)" '.event == "change" and .version == 3'
check "in place: set for the new connector and resource, del for the client" \
	[ "$(block_summary 2)" = "del client/bob set connector/sfo set resource/crm " ]
check "in place: the block ends with end version 3" is "$(block 2 | tail -n 1)" '.event == "end" and .version == 3'
check "in place: the watch connection is still open" kill -0 "$wpid"
check "in place: status shows version 3 and still 1 watcher" status_is '.version == 3 and .reloads == 2 and .watchers == 1'

# (a) stability across reloads that add and remove other entries
addresses >"$T/addr.v3"
join "$T/addr.v1" "$T/addr.v3" >"$T/common"
check "reloads: the 7 entities kept in the map are all still there" [ "$(wc -l <"$T/common")" -eq 7 ]
check "reloads: every entity kept in the map kept its address" \
	sh -c '! awk "\$2 != \$3" "$1" | grep -q .' sh "$T/common"
check "reloads: no two entities share an address" \
	[ "$(cut -d' ' -f2 "$T/addr.v3" | sort | uniq -d | wc -l)" -eq 0 ]
check "reloads: the removed resource's address is reserved in the state file" \
	jqf --argjson now "$(date +%s)" '.addresses["resource/wiki"].released_until > $now + 3000' "$S/mapd-alloc.json"
WIKI=$(grep '^resource/wiki ' "$T/addr.v1" | cut -d' ' -f2)
check "reloads: wiki had an address" [ -n "$WIKI" ]
check "reloads: the reserved address is still the one wiki had" \
	jqf --arg a "$WIKI" '.addresses["resource/wiki"].addr == $a' "$S/mapd-alloc.json"

# -- a bad map: refused by the file watch, and again on SIGHUP
edit '.version = 4 | .resources.vault.addr = "100.97.0.300"' | put_rename
check "bad map: refused (refused=1)" wait_for 10 status_is '.refused == 1'
check "bad map: the status names the path in last_error" \
	status_is '.last_error | test("\\.resources\\.vault\\.addr: 100\\.97\\.0\\.300 is not an IP address")'
check "bad map: the log names the file and the JSON path" \
	grep -q "^p2p-mapd: error: $MAP: .resources.vault.addr: 100.97.0.300 is not an IP address$" "$LOG"
check "bad map: the log says the old version is kept" grep -q "keeping map version 3$" "$LOG"
kill -HUP "$pid"
check "bad map, SIGHUP: refused again (refused=2)" wait_for 10 status_is '.refused == 2'
check "bad map, SIGHUP: the log names the path again" \
	[ "$(grep -c "^p2p-mapd: error: $MAP: .resources.vault.addr: 100.97.0.300 is not an IP address$" "$LOG")" -eq 2 ]
check "bad map: the old map still answers (version 3, its data)" \
	status_is '.version == 3 and .reloads == 2 and .resources == 5'
check "bad map: lookups answer the old data" [ "$(addr_of crm.corp.test)" = "$(grep '^resource/crm ' "$T/addr.v3" | cut -d' ' -f2)" ]
check "bad map: the watch connection is still open" kill -0 "$wpid"

# -- a changed map with the same version, or a lower one
jq '.resources.vault.upstream = "http://10.0.0.99"' "$T/v3.json" | put_rename
check "same version, changed: refused (refused=3)" wait_for 10 status_is '.refused == 3'
check "same version, changed: last_error says why" \
	status_is '.last_error | test("\\.version: 3 is not greater than the loaded 3")'
check "same version, changed: the old data answers" \
	is "$(q '{"op":"get"}' | jq -s 'map(select(.name == "vault"))[0]')" '.value.upstream == "http://10.0.0.5:8080"'
jq '.version = 2 | .resources.vault.upstream = "http://10.0.0.99"' "$T/v3.json" | put_inplace
check "lower version, changed: refused (refused=4)" wait_for 10 status_is '.refused == 4 and .version == 3'

# -- the same map again, reformatted: nothing to do, not refused
jq -c . "$T/v3.json" | put_rename
check "same map, reformatted: seen as unchanged" wait_for 10 grep -q "file changed: version 3 unchanged" "$LOG"
kill -HUP "$pid"
check "same map on SIGHUP: seen as unchanged" wait_for 10 grep -q "SIGHUP: version 3 unchanged" "$LOG"
check "same map: not refused, no reload counted" status_is '.refused == 4 and .reloads == 2 and .version == 3'

# -- a good map after the refusals
jq '.version = 4 | .resources.vault.upstream = "http://10.0.0.99"' "$T/v3.json" >"$T/v4.json"
put_rename <"$T/v4.json"
wait_change 3 "good map after refusals"
check "good map after refusals: version 4, only vault changed" \
	[ "$(block_summary 3)" = "set resource/vault " ]
check "good map after refusals: no change event was sent for the refused or unchanged maps" [ "$(changes)" -eq 3 ]
check "good map after refusals: last_error cleared, refused count kept" \
	status_is '.version == 4 and .reloads == 3 and .refused == 4 and (.last_error == null)'
check "good map after refusals: the watch connection is still open" kill -0 "$wpid"

# -- an explicit address that is another live entity's allocated address
APPS=$(addr_of apps.corp.test)
check "apps has an address in the overlay" [ "${APPS#100.}" != "$APPS" ]
jq --arg a "$APPS" '.version = 5 | .resources.newx = {"names": ["newx.corp.test"], "addr": $a, "connectors": ["ny"], "upstream": "http://10.0.0.9"}' \
	"$T/v4.json" | put_rename
check "explicit address on apps' allocated one: refused" wait_for 10 status_is '.refused == 5 and .version == 4'
check "explicit address collision: the message names the path, the address and the owner" \
	grep -q "^p2p-mapd: error: .*\.resources\.newx\.addr: $APPS is the allocated address of resource/apps" "$LOG"
check "explicit address collision: apps keeps its address" [ "$(addr_of foo.apps.corp.test)" = "$APPS" ]
check "explicit address collision: the state file still gives apps its address" \
	jqf --arg a "$APPS" '.addresses["resource/apps"] == {"addr": $a}' "$S/mapd-alloc.json"
put_rename <"$T/v4.json"
check "back to v4 (unchanged): seen as unchanged" wait_for 10 grep -q "file changed: version 4 unchanged" "$LOG"
check "back to v4: still version 4, no more refusals" status_is '.version == 4 and .refused == 5'

# -- an entity that loses its explicit address keeps it
jq '.version = 6 | del(.resources.vault.addr)' "$T/v4.json" >"$T/v6.json"
put_rename <"$T/v6.json"
wait_change 4 "vault loses its explicit addr"
check "vault loses its explicit addr: it keeps 100.104.0.20" [ "$(addr_of vault.corp.test)" = 100.104.0.20 ]
check "vault loses its explicit addr: nothing served changed, so no set or del line" \
	[ -z "$(block_summary 4)" ]

# -- a new overlay: the addresses outside it are given anew, inside it
addresses >"$T/addr.v6"
jq '.version = 7 | .overlay = "10.100.0.0/16"' "$T/v6.json" | put_rename
wait_change 5 "new overlay"
check "new overlay: the change carries it" is "$(block 5 | head -n 1)" '.version == 7 and .settings.overlay == "10.100.0.0/16"'
check "new overlay: every entity is set again (10 of them)" \
	[ "$(block 5 | jq -s 'map(select(.event == "set")) | length')" -eq 10 ]
addresses >"$T/addr.v7"
check "new overlay: every address is inside 10.100.0.0/16" \
	[ "$(cut -d' ' -f2 "$T/addr.v7" | grep -cv '^10\.100\.')" -eq 0 ]
check "new overlay: as many addresses as before, all distinct" \
	[ "$(cut -d' ' -f2 "$T/addr.v7" | sort -u | wc -l)" -eq "$(wc -l <"$T/addr.v6")" ]
check "new overlay: vault is found at its new address" \
	[ "$(addr_of vault.corp.test)" = "$(grep '^resource/vault ' "$T/addr.v7" | cut -d' ' -f2)" ]

# -- p2p ipc as a watcher: its lines must come out as they arrive
p2p -r "$R" ipc mapd '{"id":5,"op":"watch"}' >"$T/pwatch.out" 2>&1 &
ppid_watch=$!
check "p2p ipc watch: the dump reaches its output without waiting for more" \
	wait_for 5 grep -q '"event":"end"' "$T/pwatch.out"
check "status counts both watchers" wait_for 5 status_is '.watchers == 2'
kill -TERM "$ppid_watch"; wait "$ppid_watch"; ppid_watch=
check "a watcher that goes away is no longer counted" wait_for 5 status_is '.watchers == 1'

# (b) stability across a restart
addresses >"$T/addr.before"
stop "restart"
check "restart: the watch connection ends when the daemon does" wait_for 10 sh -c '! kill -0 "$1"' sh "$wpid"
wait "$wpid"; wpid=
exec 8>&-
check "restart: the socket is gone" [ ! -e "$SOCK" ]
check "restart: p2p-mapd starts again" start -g 3600
addresses >"$T/addr.restart"
check "restart: every address is the same" cmp -s "$T/addr.before" "$T/addr.restart"
check "restart: the reservation of the removed resource survives" \
	jqf '.addresses["resource/wiki"].released_until' "$S/mapd-alloc.json"

# (c) stability across a restart after SIGKILL
kill -KILL "$pid"; wait "$pid"; pid=
check "SIGKILL: the state file is whole" jqf '.version == 1 and (.addresses | length) >= 10' "$S/mapd-alloc.json"
check "SIGKILL: a stale socket is left" [ -S "$SOCK" ]
check "SIGKILL: p2p-mapd starts again over the stale socket" start -g 3600
addresses >"$T/addr.kill"
check "SIGKILL: every address is the same" cmp -s "$T/addr.before" "$T/addr.kill"
stop "end of part 1"

# ==== part 2: the grace period in a /29, reloads by SIGHUP ====
# 10.9.0.0/29 has six usable addresses (.1 to .6): dns, one connector and
# three resources leave exactly one free.

G=$T/g
mkdir -p "$G"
grace_map() { # VERSION RESOURCE...: the /29 map with these resources
	_v=$1; shift
	{
		printf '{"version": %s, "overlay": "10.9.0.0/29", "dns": {"zones": ["g.test"]},\n' "$_v"
		printf ' "connectors": {"c1": {"key": "%s"}},\n "resources": {' "$K7"
		_sep=
		for _r in "$@"; do
			printf '%s\n  "%s": {"names": ["%s.g.test"], "connectors": ["c1"], "upstream": "http://10.0.0.1"}' \
				"$_sep" "$_r" "$_r"
			_sep=,
		done
		printf '}}\n'
	}
}
gaddr() { # RESOURCE: its address in the map served now
	q '{"op":"get"}' | jq -r --arg r "$1" 'select(.event == "set" and .name == $r) | .value.addr'
}
in29() { case $1 in 10.9.0.[1-6]) return 0;; esac; return 1; } # exactly one address
all_six() { printf '10.9.0.%s\n' 1 2 3 4 5 6; }
in_use() { addresses | cut -d' ' -f2 | sort; }

# Here the map is a symbolic link to a file in another directory, which
# the daemon does not watch: every change is loaded by SIGHUP.
mkdir -p "$G/real"
ln -s real/map.json "$G/map.json"
S=$T/gstate MAP=$G/map.json REAL=$G/real/map.json
put_hup() { # the map on stdin into the link's target, then SIGHUP
	cat >"$REAL.tmp" && mv "$REAL.tmp" "$REAL" || return 1
	if [ -n "$pid" ]; then kill -HUP "$pid"; fi
}
mkdir -p "$S"
grace_map 1 r1 r2 r3 | put_hup
check "grace: p2p-mapd starts with -g 3600 and the /29 map" start -g 3600
in_use >"$T/used1"
all_six >"$T/six"
check "grace: 5 distinct addresses" [ "$(sort -u "$T/used1" | wc -l)" -eq 5 ]
check "grace: all of them in 10.9.0.1-6" [ -z "$(comm -23 "$T/used1" "$T/six")" ]
FREE=$(comm -13 "$T/used1" "$T/six")
A3=$(gaddr r3)
echo "# r3 has $A3, $FREE is free"
check "grace: r3 has an address in the /29" in29 "$A3"
check "grace: exactly one address is left free" in29 "$FREE"

grace_map 2 r1 r2 r4 | put_hup
check "grace: r3 removed and r4 added: accepted" wait_for 10 status_is '.version == 2'
R4=$(gaddr r4)
echo "# r4 has $R4"
check "grace: r4 has an address in the /29" in29 "$R4"
check "grace: r4 did not get r3's reserved address" [ "$R4" != "$A3" ]
check "grace: r4 got the one free address" [ "$R4" = "$FREE" ]

grace_map 3 r1 r2 r3 | put_hup
check "grace: r3 back, r4 removed: accepted" wait_for 10 status_is '.version == 3'
check "grace: r3 got its old address back" [ "$(gaddr r3)" = "$A3" ]
check "grace: r4's address is now reserved" \
	jqf --arg a "$R4" '.addresses["resource/r4"] | .addr == $a and (.released_until | type) == "number"' "$S/mapd-alloc.json"

grace_map 4 r1 r2 r3 r5 | put_hup
check "grace: r5 while r4's address is reserved: refused" wait_for 10 status_is '.refused == 1 and .version == 3'
check "grace: the refusal says no address is left, at r5's path" \
	grep -q "^p2p-mapd: error: .*\.resources\.r5\.addr: no free address left in the overlay 10\.9\.0\.0/29" "$LOG"
check "grace: the refused map changed no address" [ "$(gaddr r3)" = "$A3" ]
stop "grace"

# The reservation is kept in the state file, so it outlives the daemon,
# whatever -g the next one has.
p2p-mapd -r "$R" -s "$S" -g 0 -f "$MAP" 2>"$T/err"; rc=$?
check "grace: a daemon started on the same state refuses r5 (exit 102)" [ "$rc" -eq 102 ]
check "grace: ... saying no address is left" grep -q "no free address left" "$T/err"

# An explicit address may take a reserved one: that ends the reservation.
grace_map 3 r1 r2 r3 | put_hup
check "grace: p2p-mapd starts again with the map of r1 r2 r3" start -g 3600
grace_map 5 r1 r2 r3 r5 | jq --arg a "$R4" '.resources.r5.addr = $a' | put_hup
check "grace: r5 given r4's reserved address explicitly: accepted" wait_for 10 status_is '.version == 5'
check "grace: r5 has it" [ "$(gaddr r5)" = "$R4" ]
check "grace: r4's reservation is gone from the state file" \
	jqf '.addresses | has("resource/r4") | not' "$S/mapd-alloc.json"
stop "grace, explicit"

# -g 0: an address is free again from the reload after its entity left.
S=$T/g0state
mkdir -p "$S"
grace_map 1 r1 r2 r3 | put_hup
check "-g 0: p2p-mapd starts" start -g 0
in_use >"$T/used1"
FREE=$(comm -13 "$T/used1" "$T/six")
A3=$(gaddr r3)
echo "# r3 has $A3, $FREE is free"
check "-g 0: r3 has an address in the /29" in29 "$A3"
check "-g 0: exactly one address is left free" in29 "$FREE"
grace_map 2 r1 r2 | put_hup
check "-g 0: r3 removed: accepted" wait_for 10 status_is '.version == 2 and .resources == 2'
grace_map 3 r1 r2 r4 r5 | put_hup
check "-g 0: r4 and r5 added, using r3's expired address: accepted" wait_for 10 status_is '.version == 3 and .resources == 4'
check "-g 0: r4 and r5 have the free address and r3's old one" \
	[ "$(printf '%s\n%s\n' "$(gaddr r4)" "$(gaddr r5)" | sort | tr '\n' ' ')" = \
	  "$(printf '%s\n%s\n' "$FREE" "$A3" | sort | tr '\n' ' ')" ]
check "-g 0: the expired record is gone from the state file" \
	jqf '.addresses | has("resource/r3") | not' "$S/mapd-alloc.json"
check "-g 0: all six addresses in use, none twice" [ "$(in_use | tr '\n' ' ')" = "$(tr '\n' ' ' <"$T/six")" ]
R5=$(gaddr r5)
check "-g 0: r5 has an address in the /29" in29 "$R5"
grace_map 4 r1 r2 r4 | put_hup
check "-g 0: r5 removed: accepted" wait_for 10 status_is '.version == 4'
grace_map 5 r1 r2 r4 r3 | put_hup
check "-g 0: r3 returns after its record expired: accepted" wait_for 10 status_is '.version == 5 and .refused == 0'
check "-g 0: r3 gets the one free address (r5's, expired)" [ "$(gaddr r3)" = "$R5" ]
stop "-g 0"

check "no warning or fatal logged" sh -c '! grep -E ": (warning|fatal): " "$1"' sh "$LOG"

finish
