#!/bin/sh
# run/connector/p2p-mapd under a real s6-svscan, as on a host: readiness
# through notification-fd, the log through s6-log, the run script making
# /var/lib/p2p for the p2p user, a restart after kill -9 that keeps every
# allocated address, the socket's group, exit 0 on s6-svc -d.
#
#   private mount namespace (unshare -m): scratch directories on /etc/p2p,
#   /run, /var/lib and /var/log (empty: the run scripts make what they need)
#
#   s6-svscan T/scan ─┬─ s6-supervise p2p-mapd ──── p2p-mapd -d 3 -u p2p ──> /run/p2p/mapd.sock
#                     │                                   │ stdout+stderr       ^
#                     └─ s6-supervise p2p-mapd/log ── s6-log ──> /var/log/p2p/mapd/current
#                                                                              │
#   test: s6-svwait, s6-svstat, kill -9, p2p ipc mapd ─────────────────────────┘
# shellcheck disable=SC2015,SC2016,SC2317 # "a && b || fail"; sh -c '...' sh ARGS; functions run by check and trap
. "$(dirname "$0")/../lib.sh"

need_root "s6-mapd"
for t in s6-svscan s6-svscanctl s6-svstat s6-svwait s6-svc s6-log unshare setsid jq; do
	if ! command -v "$t" >/dev/null 2>&1; then
		skip "s6-mapd: needs $t (make deps)"
		exit 0
	fi
done

# The outer half: the p2p user (as p2p-lab makes it) and the mount point
# /etc/p2p on the host, then this script again in a private mount namespace.
if [ "${P2P_S6_MAPD_INNER:-}" != 1 ]; then
	need_p2p_user || exit 1
	made=
	if [ ! -d /etc/p2p ]; then
		mkdir /etc/p2p || { fail "creating the mount point /etc/p2p"; exit 1; }
		made=1
	fi
	P2P_S6_MAPD_INNER=1 unshare --mount --propagation private -- sh "$0"
	rc=$?
	if [ -n "$made" ]; then rmdir /etc/p2p; fi
	exit "$rc"
fi

T=$(scratch)
case $T in
/run/* | /var/run/* | /var/lib/* | /var/log/*)
	fail "the scratch directory $T is under a directory this test mounts over: set TMPDIR"
	rm -rf "$T"
	exit 1
	;;
esac
S=$T/scan/p2p-mapd
svscan=

alive() {
	_st=$(sed -n 's/^[0-9]* (.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
	[ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}
gone() { ! alive "$1"; }

# Every process of this mount namespace but this shell: what s6 left.
leftovers() {
	_me=$(readlink /proc/$$/ns/mnt)
	for _p in /proc/[0-9]*; do
		_p=${_p#/proc/}
		[ "$_p" != $$ ] && [ "$(readlink "/proc/$_p/ns/mnt" 2>/dev/null)" = "$_me" ] &&
			alive "$_p" && echo "$_p"
	done
}

cleanup() {
	if [ -n "$svscan" ]; then
		s6-svscanctl -t "$T/scan" 2>/dev/null
		wait_for 10 gone "$svscan"
	fi
	leftovers >"$T/left" # not $(...): its subshell would be a leftover
	_left=$(cat "$T/left")
	if [ -n "$_left" ]; then
		echo "killing what is left: $_left"
		# shellcheck disable=SC2086 # a list of pids
		kill -KILL $_left 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

mkdir "$T/etc" "$T/run" "$T/varlib" "$T/varlog" "$T/scan" &&
	cp "$P2P_TOP/etc/p2p/map.json" "$T/etc/map.json" &&
	cp -R "$P2P_TOP/run/connector/p2p-mapd" "$S" &&
	rm -rf "$S/supervise" "$S/log/supervise" || { fail "setting up $T"; exit 1; }
for m in etc:/etc/p2p run:/run varlib:/var/lib varlog:/var/log; do
	mount --bind "$T/${m%%:*}" "${m#*:}" || { fail "mounting $T/${m%%:*} on ${m#*:}"; exit 1; }
done

check "the service directory says notification-fd 3" [ "$(cat "$S/notification-fd")" = 3 ]
check "the log service says notification-fd 3" [ "$(cat "$S/log/notification-fd")" = 3 ]

setsid -f sh -c 'echo $$ >"$1/svscan.pid" && exec s6-svscan "$1/scan"' sh "$T" \
	</dev/null >"$T/svscan.log" 2>&1
wait_for 10 [ -s "$T/svscan.pid" ] && svscan=$(cat "$T/svscan.pid")
check "s6-svscan runs" [ -n "$svscan" ]
wait_for 10 [ -p "$S/supervise/control" ]

# Readiness: s6-svwait -U returns once p2p-mapd wrote its newline on fd 3,
# which it does after binding: the socket must answer at once, no polling.
check "s6-svwait -U: p2p-mapd is up and ready" s6-svwait -U -t 20000 "$S"
check "ready means serving: mapd.sock answers at once" p2p status
check "s6-svstat says ready" sh -c 's6-svstat "$1" | grep -q "^up (pid [0-9]*) .*ready"' sh "$S"
check "s6-svwait -U: the logger is ready" s6-svwait -U -t 10000 "$S/log"

pid1=$(s6-svstat -o pid "$S")
# Never a pid of -1 (service down) to kill: that would signal everything.
case $pid1 in '' | *[!0-9]*) fail "s6-svstat gives no pid for p2p-mapd ($pid1)"; finish ;; esac
check "p2p-mapd runs as the p2p user" [ "$(stat -c %U "/proc/$pid1")" = p2p ]
check "the run script made /run/p2p (root:p2p, 0775)" \
	[ "$(stat -c '%U:%G %a' /run/p2p 2>&1)" = "root:p2p 775" ]
check "the run script made /var/lib/p2p (p2p:p2p, 0750)" \
	[ "$(stat -c '%U:%G %a' /var/lib/p2p 2>&1)" = "p2p:p2p 750" ]
check "the allocation state is in /var/lib/p2p" [ -s /var/lib/p2p/mapd-alloc.json ]
check "mapd.sock belongs to the p2p user's group, mode 0660" \
	[ "$(stat -c '%G %a' /run/p2p/mapd.sock 2>&1)" = "$(id -gn p2p) 660" ]

# Every entity and its address, from the map and from the allocations.
addrs() {
	p2p ipc mapd '{"id":1,"op":"get"}' |
		jq -r 'select(.event == "set") | "\(.kind) \(.name) \(.value.addr)"' | sort
}
addrs >"$T/addrs.before"
check "get lists every entity with an address (ny, ldn, alice-laptop allocated)" \
	sh -c '[ "$(grep -c " 100\.[0-9.]*$" "$1")" -eq 7 ] &&
		grep -q "^connector ny 100\." "$1" && grep -q "^connector ldn 100\." "$1" &&
		grep -q "^client alice-laptop 100\." "$1"' sh "$T/addrs.before"

# p2p-mapd logs nothing at info level without -v; a refused map is an error,
# logged always: it must reach /var/log/p2p/mapd/current through s6-log,
# with s6-log's TAI64N timestamp.
sed -e 's/"version": 1/"version": 2/' -e 's/"100\.96\.128\.20"/"100.97.0.300"/' \
	"$T/etc/map.json" >"$T/bad.json"
cp "$T/etc/map.json" "$T/good.json"
cp "$T/bad.json" /etc/p2p/map.json
log=/var/log/p2p/mapd/current
check "a refused map is logged in $log" \
	wait_for 10 grep -q 'p2p-mapd: error: .*\.resources\.vault\.addr: 100\.97\.0\.300' "$log"
check "s6-log stamped the line" \
	grep -q '^@4000[0-9a-f]\{20\} p2p-mapd: error: .*keeping map version 1' "$log"
check "the old map is still served" sh -c 'p2p status | grep -q " version=1 "'
cp "$T/good.json" /etc/p2p/map.json

# A crash: s6 starts p2p-mapd again, which says ready again and hands out
# the same addresses (the allocation state survived).
kill -KILL "$pid1"
restarted() {
	# shellcheck disable=SC2046 # two words: pid and ready
	set -- $(s6-svstat -o pid,ready "$S")
	[ "$1" != "$pid1" ] && [ "$1" != -1 ] && [ "$2" = true ]
}
check "after kill -9, s6 restarts p2p-mapd: a new pid, ready again" wait_for 10 restarted
check "the restarted p2p-mapd serves" p2p status
addrs >"$T/addrs.after"
if cmp -s "$T/addrs.before" "$T/addrs.after"; then
	ok "every address is unchanged after the restart"
else
	fail "every address is unchanged after the restart"
	diff "$T/addrs.before" "$T/addrs.after"
fi
check "the restarted p2p-mapd runs as p2p too" \
	[ "$(stat -c %U "/proc/$(s6-svstat -o pid "$S")")" = p2p ]

# s6-svc -d sends SIGTERM: p2p-mapd exits 0 (also under the sanitizers).
s6-svc -d "$S"
check "s6-svc -d: p2p-mapd goes down" s6-svwait -D -t 10000 "$S"
check "s6-svc -d: p2p-mapd exited 0" [ "$(s6-svstat -o exitcode "$S")" = 0 ]
check "s6-svc -d: p2p-mapd removed its socket" [ ! -e /run/p2p/mapd.sock ]

echo "--- $log"
cat "$log"
finish
