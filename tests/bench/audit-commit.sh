#!/bin/sh
# tests/bench/audit-commit.sh: records acknowledged per second over
# p2p-audit's audit.sock, and the latency of an acknowledgement (from
# writing the record to reading its reply), with group commit (the
# default: one write and one fdatasync for all the records of a loop turn)
# and with one fdatasync per record (-b 1), the peer measured in the same
# run on the same disk (a scratch directory under TMPDIR):
#
#   sequential   one connection, one record in flight: a disk flush each
#   concurrent   BENCH_CONNS connections with one record in flight each,
#                then with BENCH_WINDOW in flight each, as a proxy sending
#                a record per request would
#
# Target: with concurrent senders, group commit takes at least twice the
# records per second of a flush per record. Figures go to stdout, one line
# each; diagnostics to stderr. Exit 1 when a check fails or the target is
# missed. BENCH_SECONDS (5), BENCH_CONNS (16), BENCH_WINDOW (16).
set -u
: "${P2P_TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${P2P_BUILD:=$P2P_TOP/build}"
PATH="$P2P_BUILD/bin:$PATH"
seconds=${BENCH_SECONDS:-5}
conns=${BENCH_CONNS:-16}
window=${BENCH_WINDOW:-16}
driver=$P2P_BUILD/bench/audit-load

say() { echo "audit-commit.sh: $*" >&2; }
die() { say "$*"; exit 1; }

for f in "$P2P_BUILD/bin/p2p-audit" "$driver"; do
	[ -x "$f" ] || die "$f is not built (make bench builds it)"
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/p2p-bench.XXXXXX") || exit 1
pid=
cleanup() {
	if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # NAME OPTIONS...
	_name=$1
	shift
	rm -f "$dir/ready" && mkfifo "$dir/ready" || die "mkfifo failed"
	p2p-audit -d 3 -r "$dir/run" -D "$dir/$_name" -H bench "$@" 3>"$dir/ready" 2>>"$dir/audit.log" &
	pid=$!
	[ "$(timeout 30 head -n 1 "$dir/ready" | wc -l)" -eq 1 ] ||
		die "p2p-audit did not become ready: $(tail -n 3 "$dir/audit.log")"
}

stop() { # NAME: stop, and check the chain
	kill -TERM "$pid" && wait "$pid" || die "p2p-audit did not exit 0"
	pid=
	p2p-audit -V "$dir/$1" >"$dir/verify.out" 2>&1 || die "the chain of $1 does not verify: $(tail -n 3 "$dir/verify.out")"
	rm -rf "${dir:?}/$1"
}

# load CONNS WINDOW: sets rate, p50, p99 from the driver's line
load() {
	out=$("$driver" "$dir/run/audit.sock" "$1" "$2" "$seconds") || die "audit-load failed: $out"
	say "$out"
	rate=$(echo "$out" | sed -n 's/.*: \([0-9]*\) records\/s.*/\1/p')
	p50=$(echo "$out" | sed -n 's/.*p50 \([0-9.]*\) ms.*/\1/p')
	p99=$(echo "$out" | sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p')
	[ -n "$rate" ] && [ -n "$p99" ] || die "no figures in: $out"
}

run() { # NAME LABEL OPTIONS...
	_n=$1 _label=$2
	shift 2
	start "$_n" "$@"
	load 1 1
	echo "audit-commit: $_label, sequential: $rate records/s, ack p50 $p50 ms, p99 $p99 ms"
	eval "${_n}_seq=$rate"
	load "$conns" 1
	echo "audit-commit: $_label, $conns connections x 1 in flight: $rate records/s, ack p50 $p50 ms, p99 $p99 ms"
	load "$conns" "$window"
	echo "audit-commit: $_label, $conns connections x $window in flight: $rate records/s, ack p50 $p50 ms, p99 $p99 ms"
	eval "${_n}_conc=$rate"
	stop "$_n"
}

run group "group commit"
run perrecord "fsync per record (-b 1)" -b 1

# shellcheck disable=SC2154 # set by run through eval
ratio=$(awk -v a="$group_conc" -v b="$perrecord_conc" 'BEGIN { printf "%.1f", a / b }')
echo "audit-commit: group commit / fsync per record, concurrent: ${ratio}x (target: at least 2x)"
awk -v r="$ratio" 'BEGIN { exit !(r >= 2) }' || die "group commit is not twice as fast as a flush per record"
