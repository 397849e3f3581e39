#!/bin/sh
# tests/bench/dnsd-qps.sh: split DNS queries per second, p2p-dnsd against
# unbound in the same run, loopback only, no root needed:
#
#   p2p-mapd -f T/map.json ── T/run/mapd.sock ──> p2p-dnsd 127.0.0.1:D ──┐ -f
#     (BENCH_NAMES resources rN.example.internal, TTL 30)                 │
#   unbound (resolver) 127.0.0.1:U: local-zone example.internal static,   │
#     the same names and addresses as local-data, TTL 30;                 │
#     forward-zone "." ───────────────────────────────────────────────────┤
#   unbound (authority) 127.0.0.1:A: public.example as local-data <───────┘
#   dnsperf (CPU 0) ── UDP ──> p2p-dnsd or the unbound resolver (CPU 1)
#
#   dnsd-private    A queries for the private names (a third of them in
#                   mixed case): p2p-dnsd answers them from the map, unbound
#                   from its local-data; target: p2p-dnsd >= 1.0x unbound
#   dnsd-forwarded  A queries for names of public.example, cached: p2p-dnsd
#                   with libunbound (-f to the authority; a name asked again
#                   is answered from p2p-dnsd's own cache of its answers),
#                   unbound as a forwarder (forward-zone "." to the same
#                   authority); both warmed with every name first; no target
#   dnsd-cpu        the CPU time each server spent per answered query, the
#                   least of its runs: its cost, whatever the load tool
#                   could send
#
# Fairness and noise. Both servers run one thread (unbound num-threads: 1;
# p2p-dnsd is one event loop, plus libunbound's thread for names it has
# not answered before), pinned to the same CPU (1), with dnsperf pinned to
# the other (0), so neither shares a core with the load and both are
# measured on the same one. The same query file and dnsperf settings go to
# both. This machine is shared with other work, so each measurement runs
# BENCH_ROUNDS times, alternating p2p-dnsd and unbound (a burst of other
# work hurts both alike), and the best of each counts: other work can only
# lower a figure. dnsperf (one core for the load, and the kernel's
# loopback delivery of the queries, charged to it) is near its own limit
# here, so the q/s ratio understates the difference between the servers;
# dnsd-cpu, the CPU time per answered query, does not depend on the load
# tool. Every run's dnsperf must see NOERROR only, and a sample of answers
# is checked with kdig against the map before and after, on both servers.
#
# Figures go to stdout, one line each (ours, unbound's, the ratio);
# diagnostics to stderr. Exit 1 when an answer is wrong, a step fails, or
# dnsd-private's ratio is below 1.0.
#   BENCH_NAMES (1000)  BENCH_SECONDS (10, per run)  BENCH_ROUNDS (3)
#   BENCH_CLIENTS (4, dnsperf -c)  BENCH_OUTSTANDING (100, dnsperf -q)
#   BENCH_PERF=DIR  also record p2p-dnsd with perf during its first run
#                   of each kind (DIR/perf-private.data and
#                   DIR/perf-forwarded.data, their top functions in
#                   DIR/perf-private.txt and DIR/perf-forwarded.txt)
set -u
: "${P2P_TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${P2P_BUILD:=$P2P_TOP/build}"
PATH="$P2P_BUILD/bin:$PATH"
names=${BENCH_NAMES:-1000}
seconds=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-3}
clients=${BENCH_CLIENTS:-4}
outstanding=${BENCH_OUTSTANDING:-100}
perf_dir=${BENCH_PERF:-}
ttl=30

say() { echo "dnsd-qps.sh: $*" >&2; }
die() { say "$*"; exit 1; }

for t in dnsperf unbound unbound-checkconf kdig taskset ss "$P2P_BUILD/bin/p2p-dnsd" \
	"$P2P_BUILD/bin/p2p-mapd" "$P2P_BUILD/bin/p2p"; do
	command -v "$t" >/dev/null 2>&1 || die "$t is missing (libexec/p2p-deps bench; make all)"
done
for v in "$names" "$seconds" "$rounds" "$clients" "$outstanding"; do
	case $v in '' | *[!0-9]* | 0) die "BENCH_* values are positive numbers, not '$v'" ;; esac
done
[ "$names" -le 60000 ] || die "BENCH_NAMES=$names: at most 60000 (the addresses are 100.100.0.0/16)"

dir=$(mktemp -d "${TMPDIR:-/tmp}/p2p-bench.XXXXXX") || exit 1
pids=
cleanup() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

# CPU pinning: the servers on CPU 1, dnsperf on CPU 0, when there are two.
# A command prefix, not a shell function: $! must be the server's own pid
# (taskset execs it), for its CPU time and its exit status.
if [ "$(nproc)" -ge 2 ]; then
	on_server="taskset -c 1" on_load="taskset -c 0"
	pinning="servers on CPU 1, dnsperf on CPU 0"
else
	on_server= on_load=
	pinning="one CPU: no pinning"
fi

# Three free loopback ports (UDP and TCP), from one derived from our pid.
port_free() {
	[ -z "$(ss -HOnlua "sport = :$1" 2>/dev/null)" ] && [ -z "$(ss -HOnlta "sport = :$1" 2>/dev/null)" ]
}
next_port() {
	p=$1
	while ! port_free "$p"; do
		p=$((p + 1))
		[ "$p" -lt 65000 ] || die "no free loopback port"
	done
	echo "$p"
}
base=$((20000 + ($$ % 20000)))
auth_port=$(next_port "$base")
unbound_port=$(next_port $((auth_port + 1)))
dnsd_port=$(next_port $((unbound_port + 1)))

# ---- the records: the map, the same names as local-data, the public zone ----
key=$(p2p keygen | p2p pubkey) || die "p2p keygen | p2p pubkey failed"
# T/private: NAME ADDRESS, one per resource.
awk -v n="$names" -v key="$key" -v ttl="$ttl" -v list="$dir/private" 'BEGIN {
	printf "{\"version\":1,\"overlay\":\"100.96.0.0/12\",\n"
	printf "\"dns\":{\"zones\":[\"example.internal\"],\"ttl\":%d},\n", ttl
	printf "\"connectors\":{\"c0\":{\"key\":\"%s\"}},\n\"resources\":{", key
	for (i = 0; i < n; i++) {
		addr = sprintf("100.100.%d.%d", int(i / 250), i % 250 + 1)
		printf "%s\n\"r%d\":{\"names\":[\"r%d.example.internal\"],\"addr\":\"%s\",", \
			i ? "," : "", i, i, addr
		printf "\"connectors\":[\"c0\"],\"upstream\":\"http://10.0.0.1:8080\"}"
		print "r" i ".example.internal", addr > list
	}
	printf "}}\n"
}' >"$dir/map.json" || die "unable to write the map"
# T/public: NAME ADDRESS, served by the authority.
awk -v n="$names" 'BEGIN {
	for (i = 0; i < n; i++)
		printf "p%d.public.example 192.0.%d.%d\n", i, 2 + int(i / 250) % 200, i % 250 + 1
}' >"$dir/public" || die "unable to write the public names"

# The same query file for both servers: every name once in turn, every
# third in mixed case ("R3.example.internal", "P3.PUBLIC.EXAMPLE" every
# seventh): both must answer without regard to case.
queries() {
	awk '{
		n = $1
		if (NR % 3 == 0) n = toupper(substr(n, 1, 1)) substr(n, 2)
		if (NR % 7 == 0) n = toupper(n)
		print n, "A"
	}' "$1"
}
queries "$dir/private" >"$dir/q-private"
queries "$dir/public" >"$dir/q-public"

# unbound's common part: PORT. One thread, in the foreground, in T, no
# chroot, no user change, no syslog, loopback only, default caches.
unbound_server() {
	cat <<EOF
server:
	num-threads: 1
	interface: 127.0.0.1@$1
	port: $1
	do-ip6: no
	do-daemonize: no
	chroot: ""
	username: ""
	directory: "$dir"
	pidfile: ""
	use-syslog: no
	logfile: ""
	verbosity: 0
	access-control: 127.0.0.0/8 allow
EOF
}
{
	unbound_server "$auth_port"
	printf '\tlocal-zone: "public.example." static\n'
	printf '\tlocal-data: "public.example. 3600 IN SOA ns.public.example. hostmaster.public.example. 1 3600 600 86400 60"\n'
	while read -r n a; do printf '\tlocal-data: "%s. 3600 IN A %s"\n' "$n" "$a"; done <"$dir/public"
} >"$dir/authority.conf" || die "unable to write authority.conf"
{
	unbound_server "$unbound_port"
	printf '\tdo-not-query-localhost: no\n'
	printf '\tlocal-zone: "example.internal." static\n'
	printf '\tlocal-data: "example.internal. %d IN SOA dns.example.internal. hostmaster.example.internal. 1 3600 600 86400 10"\n' "$ttl"
	while read -r n a; do printf '\tlocal-data: "%s. %d IN A %s"\n' "$n" "$ttl" "$a"; done <"$dir/private"
	printf 'forward-zone:\n\tname: "."\n\tforward-addr: 127.0.0.1@%d\n' "$auth_port"
} >"$dir/unbound.conf" || die "unable to write unbound.conf"
for c in authority unbound; do
	unbound-checkconf "$dir/$c.conf" >"$dir/check.log" 2>&1 ||
		die "unbound refuses $c.conf: $(tail -n 3 "$dir/check.log")"
done
p2p-mapd -n -s "$dir/state" -f "$dir/map.json" >/dev/null 2>"$dir/check.log" ||
	die "the generated map is refused: $(head -n 3 "$dir/check.log")"

# ---- the servers ----
# kdig at PORT: the answer section's data for NAME (type A), or the status.
dig_a() {
	out=$(kdig @127.0.0.1 -p "$1" +timeout=2 +retry=1 +noall +answer "$2" A 2>&1) ||
		return 1
	echo "$out" | awk '$4 == "A" { print $5 }'
}
dig_status() {
	s=$(kdig @127.0.0.1 -p "$1" +timeout=2 +retry=1 "$2" A 2>&1 |
		sed -n 's/.*status: \([A-Z]*\).*/\1/p' | head -n 1)
	echo "$s"
	[ -n "$s" ]
}
dig_ttl() {
	kdig @127.0.0.1 -p "$1" +timeout=2 +retry=1 +noall +answer "$2" A 2>&1 | awk '$4 == "A" { print $2 }'
}

# PROG ARGS...: start a daemon that says it is ready on fd 3 (-d 3).
start_ready() {
	what=$1
	shift
	rm -f "$dir/ready" && mkfifo "$dir/ready" || die "mkfifo failed"
	"$@" 3>"$dir/ready" 2>>"$dir/$what.log" &
	started=$!
	pids="$pids $started"
	lines=$(timeout 30 head -n 1 "$dir/ready" | wc -l)
	[ "$lines" -eq 1 ] || die "$what did not become ready: $(tail -n 3 "$dir/$what.log")"
}
# NAME CONF PORT: unbound in the foreground, ready once it answers.
start_unbound() {
	$on_server unbound -d -c "$2" >>"$dir/$1.log" 2>&1 &
	started=$!
	pids="$pids $started"
	wait_for 100 dig_status "$3" nothing.example.internal ||
		die "$1 does not answer on port $3: $(tail -n 3 "$dir/$1.log")"
	kill -0 "$started" 2>/dev/null || die "$1 exited: $(tail -n 3 "$dir/$1.log")"
}

mkdir -p "$dir/run" "$dir/state"
start_unbound authority "$dir/authority.conf" "$auth_port"
auth_pid=$started
start_unbound unbound "$dir/unbound.conf" "$unbound_port"
unbound_pid=$started
start_ready p2p-mapd p2p-mapd -d 3 -r "$dir/run" -s "$dir/state" -f "$dir/map.json"
mapd_pid=$started
start_ready p2p-dnsd $on_server p2p-dnsd -d 3 -r "$dir/run" -m "$dir/run/mapd.sock" \
	-l "127.0.0.1:$dnsd_port" -f "127.0.0.1@$auth_port"
dnsd_pid=$started
say "ports: authority $auth_port, unbound $unbound_port, p2p-dnsd $dnsd_port; $pinning"

# ---- the same answers from both ----
# FILE: every 37th name of FILE and its last, as asked in the query file
# (mixed case included), must get its address from both servers.
check_sample() {
	checked=0
	while read -r n a; do
		for port in "$dnsd_port" "$unbound_port"; do
			got=$(dig_a "$port" "$n")
			[ "$got" = "$a" ] || die "$n at port $port: '$got', the records say $a"
		done
		checked=$((checked + 1))
	done <<EOF
$(awk 'NR == FNR { q[FNR] = $1; next } FNR % 37 == 1 { print q[FNR], $2 } END { print q[FNR], $2 }' \
		"$2" "$1")
EOF
	[ "$checked" -gt 1 ] || die "no names checked in $1"
}
check_answers() {
	check_sample "$dir/private" "$dir/q-private"
	check_sample "$dir/public" "$dir/q-public"
	for port in "$dnsd_port" "$unbound_port"; do
		s=$(dig_status "$port" nothing.example.internal)
		[ "$s" = NXDOMAIN ] || die "nothing.example.internal at port $port: '$s', not NXDOMAIN"
		t=$(dig_ttl "$port" r0.example.internal)
		[ "$t" = "$ttl" ] || die "r0.example.internal at port $port has TTL '$t', not $ttl"
	done
}
check_answers
say "answers agree (a sample of $names private and $names public names, NXDOMAIN, TTL $ttl)"

# ---- dnsperf ----
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# PORT QUERIES PID: one dnsperf run; sets qps, done_n (answered) and
# cpu_us (server CPU per answered query, microseconds). Dies on an
# answer other than NOERROR.
dnsperf_run() {
	c0=$(cpu_ticks "$3") || die "pid $3 is gone"
	$on_load dnsperf -s 127.0.0.1 -p "$1" -d "$2" -c "$clients" -q "$outstanding" -l "$seconds" \
		>"$dir/dnsperf.out" 2>&1 || die "dnsperf failed: $(tail -n 5 "$dir/dnsperf.out")"
	c1=$(cpu_ticks "$3") || die "pid $3 is gone"
	qps=$(sed -n 's/^ *Queries per second: *\([0-9]*\).*/\1/p' "$dir/dnsperf.out")
	done_n=$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' "$dir/dnsperf.out")
	lost=$(sed -n 's/^ *Queries lost: *\([0-9]*\).*/\1/p' "$dir/dnsperf.out")
	codes=$(sed -n 's/^ *Response codes: *//p' "$dir/dnsperf.out")
	[ -n "$qps" ] && [ -n "$done_n" ] && [ "$done_n" -gt 0 ] ||
		die "no figure from dnsperf: $(tail -n 5 "$dir/dnsperf.out")"
	case $codes in
	"NOERROR $done_n (100.00%)") ;;
	*) die "port $1, $2: answers other than NOERROR: $codes" ;;
	esac
	cpu_us=$(awk -v t=$((c1 - c0)) -v hz="$hz" -v n="$done_n" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
	say "port $1, ${2##*/}: $qps q/s, $done_n answered, $lost lost, server CPU $cpu_us us/query"
}

min_f() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 < b + 0) ? a : b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# QUERIES LABEL: BENCH_ROUNDS rounds of p2p-dnsd then unbound; sets
# ours/theirs (best q/s) and ours_cpu/theirs_cpu (least CPU per query).
measure() {
	ours=0 theirs=0 ours_cpu= theirs_cpu=
	r=0
	while [ "$r" -lt "$rounds" ]; do
		r=$((r + 1))
		if [ -n "$perf_dir" ] && [ "$r" -eq 1 ]; then
			command -v perf >/dev/null 2>&1 || die "BENCH_PERF: perf is missing"
			mkdir -p "$perf_dir" || die "unable to create $perf_dir"
			perf record -e cpu-clock -g -o "$perf_dir/perf-$2.data" -p "$dnsd_pid" \
				-- sleep "$seconds" >/dev/null 2>"$perf_dir/perf-$2.log" &
			perf_pid=$!
			pids="$pids $perf_pid"
		fi
		dnsperf_run "$dnsd_port" "$1" "$dnsd_pid"
		[ "$qps" -gt "$ours" ] && ours=$qps
		ours_cpu=$(min_f "${ours_cpu:-$cpu_us}" "$cpu_us")
		if [ -n "$perf_dir" ] && [ "$r" -eq 1 ]; then
			wait "$perf_pid"
			forget "$perf_pid"
			perf report -i "$perf_dir/perf-$2.data" --no-children --sort dso,symbol -g none \
				2>/dev/null | grep '%' | head -n 40 >"$perf_dir/perf-$2.txt"
		fi
		dnsperf_run "$unbound_port" "$1" "$unbound_pid"
		[ "$qps" -gt "$theirs" ] && theirs=$qps
		theirs_cpu=$(min_f "${theirs_cpu:-$cpu_us}" "$cpu_us")
	done
}

dnsd_status() { p2p -r "$dir/run" ipc dnsd '{"op":"status"}'; }
status_field() { echo "$1" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }

# Private names: none may leave p2p-dnsd (its forwarded count stays still).
before=$(dnsd_status) || die "no status from p2p-dnsd"
measure "$dir/q-private" private
after=$(dnsd_status) || die "no status from p2p-dnsd"
[ "$(status_field "$before" forwarded)" = "$(status_field "$after" forwarded)" ] ||
	die "p2p-dnsd forwarded private names: $before -> $after"
priv_ours=$ours priv_theirs=$theirs priv_ours_cpu=$ours_cpu priv_theirs_cpu=$theirs_cpu

# Forwarded names: warm both caches with every name once, then measure.
for port in "$dnsd_port" "$unbound_port"; do
	$on_load dnsperf -s 127.0.0.1 -p "$port" -d "$dir/q-public" -n 1 -q 20 >"$dir/warm.out" 2>&1 ||
		die "warming the cache at port $port failed: $(tail -n 5 "$dir/warm.out")"
	grep -q "Response codes: *NOERROR $names (100.00%)" "$dir/warm.out" ||
		die "warming the cache at port $port: $(grep -E 'lost|codes' "$dir/warm.out")"
done
measure "$dir/q-public" forwarded
fwd_ours=$ours fwd_theirs=$theirs fwd_ours_cpu=$ours_cpu fwd_theirs_cpu=$theirs_cpu

# The answers are still the same, and everyone exits cleanly.
check_answers
stop "$dnsd_pid" p2p-dnsd
stop "$mapd_pid" p2p-mapd
stop "$unbound_pid" "unbound (resolver)"
stop "$auth_pid" "unbound (authority)"

how="dnsperf -c $clients -q $outstanding, ${seconds} s a run, best of $rounds alternating; $pinning"
priv_ratio=$(ratio "$priv_ours" "$priv_theirs")
verdict=$(awk -v r="$priv_ratio" 'BEGIN { print (r >= 1.0) ? "ok" : "MISSED" }')
echo "dnsd-private: p2p-dnsd $priv_ours q/s, unbound $priv_theirs q/s, ratio $priv_ratio (A for $names private names from the map vs local-data; $how; target >= 1.0: $verdict)"
echo "dnsd-forwarded: p2p-dnsd $fwd_ours q/s, unbound $fwd_theirs q/s, ratio $(ratio "$fwd_ours" "$fwd_theirs") (A for $names cached public names, libunbound vs unbound as a forwarder; $how; no target)"
echo "dnsd-cpu: server CPU per query, private: p2p-dnsd $priv_ours_cpu us, unbound $priv_theirs_cpu us, ratio $(ratio "$priv_theirs_cpu" "$priv_ours_cpu"); forwarded: p2p-dnsd $fwd_ours_cpu us, unbound $fwd_theirs_cpu us, ratio $(ratio "$fwd_theirs_cpu" "$fwd_ours_cpu") (unbound's / ours: above 1 is cheaper)"
[ "$verdict" = ok ]
