#!/bin/sh
# libexec/p2p-dns-capture, never on the host's own files: start points
# /etc/resolv.conf at p2p-dnsd keeping the search line and hands the old
# nameservers over as upstreams; start again (a crash) and start after a
# reboot (the state directory gone) keep the original; stop restores it byte
# for byte, a symbolic link as a link, a bind-mounted file in place; a
# resolv.conf that already names p2p-dnsd, or only systemd-resolved's stub
# without resolvectl, is refused (102: a loop); the systemd-resolved mode's
# choices through a fake resolvectl, and with the real one where
# systemd-resolved runs. Last, run/client/p2p-dnsd under s6: captured at
# start (getent resolves a private name through it), kept across a crash and
# a restart (fail closed), given back on s6-svc -d; with (the fake)
# systemd-resolved, the map's zones and reverse zones as routing domains.
#
#   private mount namespace (unshare -m):
#     /etc = overlay ── upper: tmpfs T/ov/upper   (every write lands here)
#                    └─ lower: the real /etc      (never written)
#     /etc/resolv.conf: a file, a link to T/..., or a bind mount of T/bound.conf
#     statedir T/state; T/fake/resolvectl logs its arguments to T/resolvectl.log
#     and answers `resolvectl dns` from T/resolvectl.dns
#
#   real systemd-resolved (only where it runs): tun device pc$$ in the host's
#   network namespace, removed at exit
#
#   the service, in the same mount namespace, /run and /var/log on tmpfs:
#     p2p-mapd -r /run/p2p ──> /run/p2p/mapd.sock <── p2p-dnsd
#     s6-svscan T/scan (own network namespace, lo up) ─ p2p-dnsd/run:
#         p2p-dns-capture start, p2p-dnsd -l 127.0.2.53 <── getent (nsenter)
# shellcheck disable=SC2015,SC2016,SC2317 # "a && b || fail"; sh -c '...' sh ARGS; functions run by check and trap
. "$(dirname "$0")/../lib.sh"

need_root "dns-capture"
for t in unshare mount umount cmp; do
	command -v "$t" >/dev/null 2>&1 || { skip "dns-capture: needs $t"; exit 0; }
done
CAPTURE=$P2P_TOP/libexec/p2p-dns-capture
[ -x "$CAPTURE" ] || { fail "$CAPTURE is not executable"; exit 1; }

# The outer half: this script again in a private mount namespace.
if [ "${P2P_DNS_CAPTURE_INNER:-}" = "" ]; then
	P2P_DNS_CAPTURE_INNER=$(readlink /proc/self/ns/mnt) \
		exec unshare --mount --propagation private -- sh "$0"
fi
if [ "$(readlink /proc/self/ns/mnt)" = "$P2P_DNS_CAPTURE_INNER" ]; then
	fail "not in a mount namespace of our own: refusing to touch /etc"
	exit 1
fi

T=$(scratch)
TUN=pc$$
made_tun='' svscan='' mapd=''
alive() {
	_st=$(sed -n 's/^[0-9]* (.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
	[ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}
gone() { ! alive "$1"; }
cleanup() {
	if [ -n "$svscan" ]; then
		s6-svscanctl -t "$T/scan" 2>/dev/null
		wait_for 10 gone "$svscan" || kill -KILL "$svscan" 2>/dev/null
	fi
	if [ -n "$mapd" ]; then kill "$mapd" 2>/dev/null; wait "$mapd" 2>/dev/null; fi
	umount /var/log 2>/dev/null
	umount /run 2>/dev/null
	if [ -n "$made_tun" ]; then ip link del "$TUN" 2>/dev/null; fi
	umount /etc/resolv.conf 2>/dev/null
	umount /etc 2>/dev/null
	umount "$T/ov" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# /etc as an overlay whose upper layer is a tmpfs: the real /etc is only
# read. A bind mount on /etc/resolv.conf (a container's) is dropped first,
# in this namespace only, so that the file seen is the overlay's.
while grep -q ' /etc/resolv.conf ' /proc/self/mountinfo; do
	umount /etc/resolv.conf || { fail "unmounting /etc/resolv.conf in our namespace"; exit 1; }
done
real_link=$(readlink /etc/resolv.conf 2>/dev/null) || real_link=''
if [ -z "$real_link" ] && [ -e /etc/resolv.conf ]; then cp -p /etc/resolv.conf "$T/real.conf"; fi
mkdir "$T/ov" && mount -t tmpfs tmpfs "$T/ov" && mkdir "$T/ov/upper" "$T/ov/work" ||
	{ fail "a tmpfs on $T/ov"; exit 1; }
if ! mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/ov/upper,workdir=$T/ov/work" /etc; then
	skip "dns-capture: cannot mount an overlay on /etc here (overlayfs)"
	exit 0
fi

S=$T/state
R=/etc/resolv.conf
mkdir "$T/fake" "$T/run" || { fail "setting up $T"; exit 1; }
cat >"$T/fake/resolvectl" <<'EOF'
#!/bin/sh
# A stand-in for resolvectl: logs its arguments, answers status with
# $FAKE_STATUS and `resolvectl dns` from $FAKE_DNS.
echo "$*" >>"$FAKE_LOG"
case $1 in
status) exit "${FAKE_STATUS:-0}" ;;
dns) [ $# -gt 1 ] || cat "$FAKE_DNS" ;;
esac
exit 0
EOF
chmod 755 "$T/fake/resolvectl"
FAKE_LOG=$T/resolvectl.log FAKE_DNS=$T/resolvectl.dns
export FAKE_LOG FAKE_DNS

# The capture, as the run script calls it: stdout and stderr in T/out, the
# exit status in T/rc. with_fake: the fake resolvectl first on PATH;
# fake_status: what its `status` answers.
cap_path=$PATH fake_status=0
cap() {
	FAKE_STATUS=$fake_status PATH=$cap_path "$CAPTURE" "$@" -s "$S" >"$T/out" 2>&1
	echo $? >"$T/rc"
	cat "$T/out"
}
with_fake() { cap_path=$T/fake:$PATH; "$@"; cap_path=$PATH; }
rc() { [ "$(cat "$T/rc")" = "$1" ]; }
said() { grep -q -- "$1" "$T/out"; }

# A fresh start: no state, /etc/resolv.conf the file $1 (or a link, below).
reset() {
	if grep -q ' /etc/resolv.conf ' /proc/self/mountinfo; then umount "$R"; fi
	rm -rf "$S" "$R" "$FAKE_LOG"
	if [ $# -gt 0 ]; then cp -p "$1" "$R"; fi
}
nameservers() { awk '$1 == "nameserver" { print $2 }' "$1" | tr '\n' ' '; }

# ---- a plain file ----

printf '# the host'"'"'s resolver\nsearch corp.example example.internal\nnameserver 192.0.2.1\nnameserver 192.0.2.2\noptions timeout:1 attempts:2\n' >"$T/orig"
chmod 0640 "$T/orig"
reset "$T/orig"
cap start
check "start: exit 0" rc 0
check "start names the mode: info: mode resolv.conf" said "^p2p-dns-capture: info: mode resolv.conf: "
check "start: resolv.conf's only nameserver is 127.0.2.53" [ "$(nameservers "$R")" = "127.0.2.53 " ]
check "start: the search line is kept" grep -qx 'search corp.example example.internal' "$R"
check "start: the options line is kept" grep -qx 'options timeout:1 attempts:2' "$R"
check "start: upstream.conf holds the original nameservers, nameserver lines only" \
	[ "$(cat "$S/upstream.conf")" = "$(printf 'nameserver 192.0.2.1\nnameserver 192.0.2.2')" ]
check "start: the original is saved" cmp -s "$T/orig" "$S/resolv.conf.orig"
cap status
check "status: exit 0" rc 0
check "status: the mode and the upstream file" \
	sh -c 'grep -qx "mode resolv.conf" "$1/out" && grep -qx "upstream $2/upstream.conf" "$1/out"' sh "$T" "$S"

# A crash: start again while resolv.conf is ours.
cp "$R" "$T/ours"
cap start
check "start again (a crash): exit 0, says it keeps the saved original" \
	sh -c '[ "$(cat "$1/rc")" = 0 ] && grep -q "keeping the saved original" "$1/out"' sh "$T"
check "start again: the saved original is still the original, not our file" cmp -s "$T/orig" "$S/resolv.conf.orig"
check "start again: upstream.conf unchanged" \
	[ "$(cat "$S/upstream.conf")" = "$(printf 'nameserver 192.0.2.1\nnameserver 192.0.2.2')" ]
check "start again: resolv.conf still names only 127.0.2.53" [ "$(nameservers "$R")" = "127.0.2.53 " ]

cap stop
check "stop: exit 0" rc 0
check "stop: resolv.conf restored byte for byte" cmp -s "$T/orig" "$R"
check "stop: resolv.conf's mode restored (0640)" [ "$(stat -c %a "$R")" = 640 ]
check "stop: the saved copy, upstream.conf and the mode are gone" \
	sh -c '! ls "$1"/resolv.conf.orig* "$1/upstream.conf" "$1/mode" 2>/dev/null' sh "$S"
cap status
check "status after stop: mode none, exit 1" sh -c '[ "$(cat "$1/rc")" = 1 ] && grep -qx "mode none" "$1/out"' sh "$T"
cap stop
check "stop again: nothing to do, exit 0, file untouched" sh -c '[ "$(cat "$1/rc")" = 0 ] && cmp -s "$1/orig" "$2"' sh "$T" "$R"

# ---- a reboot: /run (the state directory) is gone, resolv.conf is ours ----

# An awkward original: no final newline, an empty line, a backslash, a line
# that looks like ours.
printf 'nameserver 192.0.2.7\n\n# a \\ backslash\n#p2p-orig:not really\nsearch lab.example' >"$T/odd"
reset "$T/odd"
cap start >/dev/null
rm -rf "$S"
cap start
check "start after a reboot: exit 0, the original rebuilt from resolv.conf" \
	sh -c '[ "$(cat "$1/rc")" = 0 ] && grep -q "original rebuilt" "$1/out"' sh "$T"
check "start after a reboot: the rebuilt original is byte for byte the original" cmp -s "$T/odd" "$S/resolv.conf.orig"
check "start after a reboot: upstream.conf from the original" [ "$(cat "$S/upstream.conf")" = "nameserver 192.0.2.7" ]
cap stop
check "stop: restores the odd original byte for byte" cmp -s "$T/odd" "$R"
cap start >/dev/null
rm -rf "$S"
cap stop
check "stop with the state directory gone: restores from resolv.conf itself" \
	sh -c '[ "$(cat "$1/rc")" = 0 ] && cmp -s "$1/odd" "$2"' sh "$T" "$R"

# ---- rewritten behind our back (DHCP) ----

printf 'nameserver 198.51.100.7\n' >"$T/dhcp"
reset "$T/orig"
cap start >/dev/null
cp "$T/dhcp" "$R"
cap start
check "start after a rewrite: takes the new file as the original (warning)" \
	sh -c '[ "$(cat "$1/rc")" = 0 ] && grep -q "warning: .*rewritten" "$1/out"' sh "$T"
check "start after a rewrite: its nameserver is the upstream" [ "$(cat "$S/upstream.conf")" = "nameserver 198.51.100.7" ]
cap stop
check "stop: restores the rewritten file" cmp -s "$T/dhcp" "$R"
reset "$T/orig"
cap start >/dev/null
cp "$T/dhcp" "$R"
cap stop
check "stop after a rewrite: leaves the new file alone (warning)" \
	sh -c 'grep -q "warning: .*leaving it" "$1/out" && cmp -s "$1/dhcp" "$2"' sh "$T" "$R"

# ---- a symbolic link ----

printf 'search linked.example\nnameserver 192.0.2.9\n' >"$T/target.conf"
cp -p "$T/target.conf" "$T/target.before"
reset
ln -s "$T/target.conf" "$R"
cap start
check "link: start exit 0, mode resolv.conf" sh -c '[ "$(cat "$1/rc")" = 0 ] && grep -q "mode resolv.conf" "$1/out"' sh "$T"
check "link: resolv.conf is now our own file, the link's target untouched" \
	sh -c '[ ! -L "$1" ] && [ "$(awk "\$1 == \"nameserver\" { print \$2 }" "$1")" = 127.0.2.53 ] &&
		cmp -s "$2/target.conf" "$2/target.before"' sh "$R" "$T"
check "link: the target's search line is kept" grep -qx 'search linked.example' "$R"
check "link: upstream.conf from the target" [ "$(cat "$S/upstream.conf")" = "nameserver 192.0.2.9" ]
cap start >/dev/null
cap stop
check "link: stop puts the link back" sh -c '[ -L "$1" ] && [ "$(readlink "$1")" = "$2/target.conf" ]' sh "$R" "$T"
check "link: its target never changed" cmp -s "$T/target.conf" "$T/target.before"
# After a reboot, too.
cap start >/dev/null
rm -rf "$S"
cap stop
check "link: stop with the state gone puts the link back" \
	sh -c '[ -L "$1" ] && [ "$(readlink "$1")" = "$2/target.conf" ]' sh "$R" "$T"

# ---- a bind-mounted file (containers, the lab's nodes): written in place ----

cp -p "$T/orig" "$T/bound.conf"
cp -p "$T/orig" "$T/bound.before"
reset "$T/orig"
mount --bind "$T/bound.conf" "$R" || fail "bind-mounting $T/bound.conf on $R"
ino=$(stat -c %i "$T/bound.conf")
cap start
check "bind mount: start exit 0" rc 0
check "bind mount: the mounted file itself now names 127.0.2.53 (written in place)" \
	sh -c '[ "$(awk "\$1 == \"nameserver\" { print \$2 }" "$1")" = 127.0.2.53 ] && [ "$(stat -c %i "$1")" = "$2" ]' \
	sh "$T/bound.conf" "$ino"
cap stop
check "bind mount: stop restores the mounted file byte for byte" cmp -s "$T/bound.before" "$T/bound.conf"
umount "$R"

# ---- loops ----

printf 'search example.internal\nnameserver 127.0.2.53\n' >"$T/loop"
reset "$T/loop"
cap start
check "already pointing at 127.0.2.53 only: start refuses, exit 102" rc 102
check "the refusal names the loop" said "fatal: .*127\.0\.2\.53.*loop"
check "the refusal changes nothing: resolv.conf as it was, nothing saved" \
	sh -c 'cmp -s "$1/loop" "$2" && [ ! -e "$3/resolv.conf.orig" ] && [ ! -e "$3/upstream.conf" ]' sh "$T" "$R" "$S"

printf 'nameserver 10.0.0.53\nnameserver 127.0.2.53\nnameserver 192.0.2.1\n' >"$T/mixed"
reset "$T/mixed"
cap start -a 10.0.0.53 -a 127.0.2.53
check "every -a address is left out of the upstreams" \
	sh -c '[ "$(cat "$1/rc")" = 0 ] && [ "$(cat "$2/upstream.conf")" = "nameserver 192.0.2.1" ]' sh "$T" "$S"
check "the first -a address is the one resolv.conf names" [ "$(nameservers "$R")" = "10.0.0.53 " ]
cap stop >/dev/null
check "and stop restores it" cmp -s "$T/mixed" "$R"

# NetBird #5199: NetworkManager's file naming resolved's stub, resolvectl not
# answering: rewriting it would make resolved forward to p2p-dnsd and back.
printf '# Generated by NetworkManager\nsearch home.example\nnameserver 127.0.0.53\noptions edns0 trust-ad\n' >"$T/nm"
reset "$T/nm"
fake_status=1
with_fake cap start
fake_status=0
check "stub 127.0.0.53 only, resolvectl not answering: refused, exit 102" rc 102
check "the refusal names systemd-resolved's stub and the loop" said "fatal: .*127\.0\.0\.53.*systemd-resolved.*loop"
check "the refusal changes nothing" cmp -s "$T/nm" "$R"

reset
ln -s ../run/systemd/resolve/stub-resolv.conf "$R"
cap start
check "a dangling link to resolved's stub file, no resolvectl: refused (no nameserver), exit 102" rc 102
check "and the link is left as it was" [ "$(readlink "$R")" = ../run/systemd/resolve/stub-resolv.conf ]

# ---- systemd-resolved's mode, through the fake resolvectl ----

cat >"$FAKE_DNS" <<'EOF'
Global: 198.51.100.53#dns.example
Link 1 (lo): 127.0.2.53
Link 2 (eth0): 192.0.2.1 127.0.0.53 [2001:db8::1]:5353 fe80::1%eth0 2001:DB8::53
EOF
reset
ln -s ../run/systemd/resolve/stub-resolv.conf "$R"
with_fake cap start -i lo -z example.internal -z corp.example.
check "fake resolved: start exit 0" rc 0
check "fake resolved: names the mode: info: mode systemd-resolved" said "^p2p-dns-capture: info: mode systemd-resolved: "
check "fake resolved: DNS of the interface is 127.0.2.53" grep -qx "dns lo 127.0.2.53" "$FAKE_LOG"
check "fake resolved: routing domains for the private zones only" \
	grep -qx "domain lo ~example.internal ~corp.example" "$FAKE_LOG"
check "fake resolved: the interface is not the default route" grep -qx "default-route lo false" "$FAKE_LOG"
check "fake resolved: upstreams are resolved's servers on the other links, never its stub or p2p-dnsd" \
	[ "$(cat "$S/upstream.conf")" = "$(printf 'nameserver 198.51.100.53\nnameserver 192.0.2.1\nnameserver 2001:db8::53')" ]
check "fake resolved: resolv.conf is left alone" [ "$(readlink "$R")" = ../run/systemd/resolve/stub-resolv.conf ]
cap status
check "fake resolved: status says the mode and the interface" \
	sh -c 'grep -qx "mode systemd-resolved" "$1/out" && grep -qx "iface lo" "$1/out" &&
		grep -qx "upstream $2/upstream.conf" "$1/out"' sh "$T" "$S"
: >"$FAKE_LOG"
with_fake cap stop
check "fake resolved: stop is resolvectl revert IFACE" sh -c '[ "$(cat "$1/rc")" = 0 ] && grep -qx "revert lo" "$2"' sh "$T" "$FAKE_LOG"
check "fake resolved: stop leaves resolv.conf alone" [ "$(readlink "$R")" = ../run/systemd/resolve/stub-resolv.conf ]

# NetworkManager's file naming 127.0.0.53 counts as resolved's too.
reset "$T/nm"
with_fake cap start -i lo -z example.internal
check "fake resolved: a file naming 127.0.0.53 with resolvectl answering is resolved's mode" \
	sh -c '[ "$(cat "$1/rc")" = 0 ] && grep -q "mode systemd-resolved" "$1/out" && cmp -s "$1/nm" "$2"' sh "$T" "$R"
with_fake cap stop >/dev/null

printf 'Global:\nLink 2 (eth0): 127.0.0.53\nLink 1 (lo): 127.0.2.53\n' >"$FAKE_DNS"
reset
ln -s ../run/systemd/resolve/stub-resolv.conf "$R"
with_fake cap start -i lo -z example.internal
check "fake resolved: only the stub and p2p-dnsd as servers: refused, exit 102" rc 102
check "fake resolved: the refusal names the loop" said "fatal: .*loop"
check "fake resolved: the refusal configures nothing" sh -c '! grep -q "^dns lo" "$1"' sh "$FAKE_LOG"

printf 'Link 2 (eth0): 192.0.2.1\n' >"$FAKE_DNS"
with_fake cap start -i nosuch$$ -z example.internal
check "fake resolved: a missing interface: exit 111, named" \
	sh -c '[ "$(cat "$1/rc")" = 111 ] && grep -q "nosuch$2: no such interface" "$1/out"' sh "$T" $$

# Captured in resolv.conf mode while resolvectl did not answer (resolved's
# resolv.conf, listing its real upstream); now it answers: start puts
# resolved's link back first, then takes the resolved mode.
mkdir -p "$T/run/systemd/resolve" &&
	printf 'nameserver 192.0.2.1\n' >"$T/run/systemd/resolve/resolv.conf"
reset
ln -s "$T/run/systemd/resolve/resolv.conf" "$R"
fake_status=1
with_fake cap start -i lo -z example.internal
fake_status=0
check "resolvectl silent: resolved's link is captured in resolv.conf mode" \
	sh -c '[ "$(cat "$1/rc")" = 0 ] && grep -q "mode resolv.conf" "$1/out" && [ ! -L "$2" ]' sh "$T" "$R"
with_fake cap start -i lo -z example.internal
check "resolvectl answering again: the link is put back, then resolved's mode" \
	sh -c '[ "$(cat "$1/rc")" = 0 ] && grep -q "mode systemd-resolved" "$1/out" &&
		[ "$(readlink "$2")" = "$1/run/systemd/resolve/resolv.conf" ] && [ ! -e "$3/resolv.conf.orig" ]' sh "$T" "$R" "$S"
with_fake cap stop >/dev/null

# ---- the real systemd-resolved ----

# The host's /etc/resolv.conf as it was (in the overlay still).
reset
if [ -n "$real_link" ]; then ln -s "$real_link" "$R"; elif [ -e "$T/real.conf" ]; then cp -p "$T/real.conf" "$R"; fi
if ! command -v resolvectl >/dev/null 2>&1 || ! resolvectl status >/dev/null 2>&1; then
	skip "dns-capture: systemd-resolved mode with the real resolved: systemd-resolved is not running"
else
	ip tuntap add dev "$TUN" mode tun && made_tun=1 &&
		ip addr add 100.127.255.1/32 dev "$TUN" && ip link set "$TUN" up ||
		fail "a tun device $TUN for the real resolved"
	zone=p2p-test-$$.internal
	cap start -i "$TUN" -z "$zone"
	if ! said "mode systemd-resolved"; then
		skip "dns-capture: systemd-resolved runs, but this host's /etc/resolv.conf is not its own"
		cap stop >/dev/null
	else
		check "real resolved: start exit 0" rc 0
		check "real resolved: $TUN's DNS server is 127.0.2.53" sh -c 'resolvectl dns "$1" | grep -q "127\.0\.2\.53"' sh "$TUN"
		check "real resolved: $TUN routes ~$zone" sh -c 'resolvectl domain "$1" | grep -q "~$2"' sh "$TUN" "$zone"
		check "real resolved: upstream.conf never names the stub nor p2p-dnsd" \
			sh -c '[ -s "$1" ] && ! grep -q -e "127\.0\.0\.5[34]" -e "127\.0\.2\.53" "$1"' sh "$S/upstream.conf"
		cap stop
		check "real resolved: stop reverts $TUN" sh -c '! resolvectl dns "$1" | grep -q "127\.0\.2\.53"' sh "$TUN"
	fi
fi

# ---- run/client/p2p-dnsd under s6 ----

service() {
	for t in p2p-dnsd p2p-mapd s6-svscan s6-svscanctl s6-svstat s6-svwait s6-svc s6-log setsid nsenter getent ip; do
		command -v "$t" >/dev/null 2>&1 || { echo "needs $t"; return 1; }
	done
}
if ! why=$(service); then
	skip "dns-capture: run/client/p2p-dnsd under s6: $why (make; make deps)"
	finish
fi
D=$T/scan/p2p-dnsd
reset "$T/orig"
mkdir "$T/scan" "$T/lib" && cp -R "$P2P_TOP/run/client/p2p-dnsd" "$D" &&
	rm -rf "$D/supervise" "$D/log/supervise" &&
	mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/log || { fail "setting up the service"; finish; }
# As on a client: p2p-mapd as p2p, so p2p-dnsd (also p2p) may use its socket.
need_p2p_user || finish
chown p2p "$T/lib"
p2p-mapd -u p2p -r /run/p2p -s "$T/lib" -f "$P2P_TOP/etc/p2p/map.json" 2>"$T/mapd.log" &
mapd=$!
check "p2p-mapd serves /run/p2p/mapd.sock" wait_for 10 [ -S /run/p2p/mapd.sock ]
# setsid -f, not &: s6 needs SIGINT and SIGQUIT not ignored. unshare without
# --fork execs, so $$ is s6-svscan, and its network namespace the service's.
# The fake resolvectl is on its PATH (for the resolved part, at the end).
PATH=$T/fake:$PATH FAKE_STATUS=0 setsid -f unshare --net -- sh -c 'ip link set lo up && echo $$ >"$1/svscan.pid" && exec s6-svscan "$1/scan"' \
	sh "$T" </dev/null >"$T/svscan.log" 2>&1
wait_for 10 [ -s "$T/svscan.pid" ] && svscan=$(cat "$T/svscan.pid")
check "s6-svscan runs" [ -n "$svscan" ]
wait_for 10 [ -p "$D/supervise/control" ]
in_ns() { nsenter --net="/proc/$svscan/ns/net" "$@"; }
if s6-svwait -U -t 20000 "$D"; then
	ok "s6-svwait -U: p2p-dnsd is up and ready"
else
	fail "s6-svwait -U: p2p-dnsd is up and ready"
	cat "$T/svscan.log" /var/log/p2p/dnsd/current 2>/dev/null | sed 's/^/# /'
	finish
fi
check "the run script captured: resolv.conf names only 127.0.2.53, search line kept" \
	sh -c '[ "$(awk "\$1 == \"nameserver\" { print \$2 }" "$1")" = 127.0.2.53 ] &&
		grep -qx "search corp.example example.internal" "$1"' sh "$R"
check "p2p-dnsd forwards to the original nameservers" \
	[ "$(cat /run/p2p/dns/upstream.conf)" = "$(printf 'nameserver 192.0.2.1\nnameserver 192.0.2.2')" ]
getent_vault() { [ "$(in_ns getent hosts vault.example.internal | awk '{ print $1 }')" = 100.96.128.20 ]; }
check "getent hosts vault.example.internal: 100.96.128.20, through the captured resolv.conf" getent_vault

# A crash: s6 runs finish (keeps the capture), then run again. (A down
# service's pid is -1: never kill that.)
pid1=$(s6-svstat -o pid "$D")
case $pid1 in '' | *[!0-9]*) fail "p2p-dnsd has a pid ($pid1)"; finish ;; esac
kill -KILL "$pid1"
restarted() {
	# shellcheck disable=SC2046 # two words: pid and ready
	set -- $(s6-svstat -o pid,ready "$D")
	[ "$1" != "$pid1" ] && [ "$1" != -1 ] && [ "$2" = true ]
}
check "after kill -9, s6 starts p2p-dnsd again" wait_for 10 restarted
check "the crash did not give the host's DNS back (fail closed)" \
	sh -c '[ "$(awk "\$1 == \"nameserver\" { print \$2 }" "$1")" = 127.0.2.53 ]' sh "$R"
check "the saved original is still the original" cmp -s "$T/orig" /run/p2p/dns/resolv.conf.orig
check "getent after the restart" getent_vault
pid1=$(s6-svstat -o pid "$D")
s6-svc -r "$D"
check "s6-svc -r: p2p-dnsd starts again" wait_for 10 restarted
check "s6-svc -r: the host's DNS is still captured" sh -c 'head -n 1 "$1" | grep -q "^# p2p-dns-capture:"' sh "$R"
check "s6-svc -r: p2p-dnsd exited 0 on SIGTERM" \
	wait_for 10 grep -q "p2p-dnsd: info: exit 0: s6 starts it again" /var/log/p2p/dnsd/current

# Taken down: finish gives the original back, byte for byte.
s6-svc -d "$D"
check "s6-svc -d: p2p-dnsd goes down" s6-svwait -D -t 10000 "$D"
check "s6-svc -d: p2p-dnsd exited 0" [ "$(s6-svstat -o exitcode "$D")" = 0 ]
check "s6-svc -d: finish restored resolv.conf byte for byte" wait_for 10 cmp -s "$T/orig" "$R"
check "s6-svc -d: the state is cleared" wait_for 10 sh -c '[ ! -e /run/p2p/dns/mode ] && [ ! -e /run/p2p/dns/upstream.conf ]'

# The run script with systemd-resolved (the fake): the map's zones and the
# overlay's reverse zones (100.96.0.0/12) become p2p0's routing domains.
printf 'Link 2 (eth0): 192.0.2.1\n' >"$FAKE_DNS"
reset
ln -s ../run/systemd/resolve/stub-resolv.conf "$R"
rm -f "$FAKE_LOG"
if ! in_ns ip tuntap add dev p2p0 mode tun 2>"$T/tun.err"; then
	skip "dns-capture: run/client/p2p-dnsd with resolved: no tun device p2p0: $(cat "$T/tun.err")"
else
	in_ns ip link set p2p0 up
	s6-svc -u "$D"
	check "resolved: p2p-dnsd is up and ready" s6-svwait -U -t 20000 "$D"
	check "resolved: the run script's capture set p2p0's DNS to 127.0.2.53" grep -qx "dns p2p0 127.0.2.53" "$FAKE_LOG"
	domains="domain p2p0 ~example.internal"
	for v in 96 97 98 99 100 101 102 103 104 105 106 107 108 109 110 111; do
		domains="$domains ~$v.100.in-addr.arpa"
	done
	check "resolved: routing domains are the map's zone and the overlay's 16 reverse zones" grep -qx "$domains" "$FAKE_LOG"
	check "resolved: p2p-dnsd forwards to resolved's other servers" [ "$(cat /run/p2p/dns/upstream.conf)" = "nameserver 192.0.2.1" ]
	s6-svc -d "$D"
	check "resolved: s6-svc -d: p2p-dnsd goes down" s6-svwait -D -t 10000 "$D"
	check "resolved: finish reverts p2p0" wait_for 10 grep -qx "revert p2p0" "$FAKE_LOG"
	check "resolved: resolv.conf was never touched" [ "$(readlink "$R")" = ../run/systemd/resolve/stub-resolv.conf ]
fi
echo "--- /var/log/p2p/dnsd/current"
cat /var/log/p2p/dnsd/current

finish
