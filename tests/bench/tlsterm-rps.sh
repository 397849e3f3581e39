#!/bin/sh
# tests/bench/tlsterm-rps.sh: p2p-tlsterm against nginx with one worker, in
# one run, same certificate (ECDSA P-256), same upstream, loopback only.
#
#   h2load --h1 ──TLS──> p2p-tlsterm 127.77.2.1:PT ──┐
#                        (asks p2p-authz, p2p-audit)   ├──> nginx upstream 127.0.0.1:UP ("ok")
#   h2load --h1 ──TLS──> nginx (1 worker) 127.0.0.1:PN ┘    (1 worker, keep-alive)
#
#   requests   HTTPS/1.1 requests per second over kept-alive connections
#              (BENCH_CONNS connections, BENCH_REQUESTS requests)
#   h2         the same over HTTP/2 (10 streams per connection)
#   handshakes new TLS handshakes per second (openssl s_time -new, one at a
#              time; TLS 1.2, ECDHE-ECDSA-AES128-GCM)
#   checks     the cost of policy and audit, in requests per second and
#              in the CPU the servers spent for the same requests:
#              p2p-tlsterm as above (a p2p-authz check and a p2p-audit
#              record, fsync'd in groups, for every request) against the
#              same program built without them
#              (BUILD/bench/p2p-tlsterm-nochecks, make bench)
#   idle       memory per idle kept-alive TLS connection (the growth of the
#              proxy's RSS over BENCH_IDLE connections, one request each)
# BENCH_HOLD=1 starts the servers, prints their pids and addresses, and keeps
# them up until interrupted (for perf or strace by hand).
# Every server (both proxies, the upstream, p2p-mapd, p2p-authz, p2p-audit)
# runs on the last core and the load tools on the first (taskset), so a
# proxy's figure is what one core does with everything it needs. Each
# figure is the best of BENCH_ROUNDS (6) rounds, the proxies taking turns
# (in the other order every second round); the
# ratios and costs are also given as the median of the rounds' own ratios
# ("paired"), each round measuring both sides a few seconds apart, which a
# shared machine's slow minutes disturb less than the best of each side.
# Exit 1 when a response is not 200.
set -u
: "${P2P_TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${P2P_BUILD:=$P2P_TOP/build}"
PATH="$P2P_BUILD/bin:$PATH"
requests=${BENCH_REQUESTS:-40000}
conns=${BENCH_CONNS:-16}
rounds=${BENCH_ROUNDS:-6}
seconds=${BENCH_SECONDS:-4}
idle=${BENCH_IDLE:-1000}

say() { echo "tlsterm-rps.sh: $*" >&2; }
die() { say "$*"; exit 1; }
for t in nginx h2load openssl taskset setsid /usr/bin/python3; do
	command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || die "needs $t (make bench installs nginx and nghttp2-client)"
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for f in bin/p2p-tlsterm bin/p2p-mapd bin/p2p-authz bin/p2p-audit bench/p2p-tlsterm-nochecks; do
	[ -x "$P2P_BUILD/$f" ] || die "$P2P_BUILD/$f is not built (make bench)"
done
# The servers on the last core, the load on the first.
cores=$(nproc)
if [ "$cores" -ge 2 ]; then
	SERVER="taskset -c $((cores - 1))" LOAD="taskset -c 0"
else
	SERVER= LOAD=
	say "one core: nothing pinned"
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/p2p-bench.XXXXXX") || exit 1
pids=
cleanup() {
	for p in $pids; do kill -TERM "$p" 2>/dev/null; done
	[ -s "$dir/nginx-up/nginx.pid" ] && kill -QUIT "$(cat "$dir/nginx-up/nginx.pid")" 2>/dev/null
	[ -s "$dir/nginx-px/nginx.pid" ] && kill -QUIT "$(cat "$dir/nginx-px/nginx.pid")" 2>/dev/null
	sleep 0.3
	for p in $pids; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

base=$((20000 + ($$ % 1500) * 8))   # below the ephemeral ports (32768-)
UP=$base PN=$((base + 1)) PT=$((base + 2)) PX=$((base + 3))
R=$dir/run
mkdir -p "$R" "$dir/state" "$dir/audit" "$dir/certs" "$dir/nginx-up/logs" "$dir/nginx-px/logs" || exit 1

# ---- one certificate for both ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/certs/bench.key" \
	-subj "/CN=bench.corp.test" -addext "subjectAltName=DNS:bench.corp.test" -days 2 \
	-out "$dir/certs/bench.crt" 2>/dev/null || die "openssl could not make the certificate"

# ---- nginx: the upstream, and the peer proxy ----
cat >"$dir/nginx-up/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx-up/nginx.pid;
error_log $dir/nginx-up/logs/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP; location / { return 200 "ok\n"; } }
}
EOF
cat >"$dir/nginx-px/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx-px/nginx.pid;
error_log $dir/nginx-px/logs/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$PN ssl http2;
    ssl_certificate $dir/certs/bench.crt;
    ssl_certificate_key $dir/certs/bench.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
$SERVER "$NGINX" -p "$dir/nginx-up" -c "$dir/nginx-up/nginx.conf" 2>"$dir/nginx-up.err" || die "nginx (upstream): $(cat "$dir/nginx-up.err")"
$SERVER "$NGINX" -p "$dir/nginx-px" -c "$dir/nginx-px/nginx.conf" 2>"$dir/nginx-px.err" || die "nginx (proxy): $(cat "$dir/nginx-px.err")"

# ---- p2p-tlsterm with the daemons it asks ----
cat >"$dir/map.json" <<EOF
{ "version": 1, "overlay": "127.77.0.0/16", "dns": { "zones": ["corp.test"] },
  "connectors": { "ny": { "key": "M88tNfFb2kZ9ZQQPVAOTW4v9Bql4Ul0HdlAsdr9SYiI=", "addr": "127.77.0.2" } },
  "resources": { "bench": { "names": ["bench.corp.test"], "addr": "127.77.2.1", "connectors": ["ny"],
                            "upstream": "http://127.0.0.1:$UP" } } }
EOF
cat >"$dir/policy.json" <<EOF
{ "resources": { "bench": { "routes": [ { "prefix": "/", "auth": "none" } ] } } }
EOF
# Each daemon in its own session, as s6-supervise starts a service and as
# nginx puts itself: with the kernel's autogroups (sched_autogroup_enabled)
# the scheduler shares a core between sessions first, so daemons left in
# this script's session would share one part of the core that the nginx
# processes each have whole (it showed as 10 % more context switches of
# p2p-tlsterm than the same binary started on its own).
start() { # NAME COMMAND...
	_n=$1; shift
	rm -f "$dir/$_n.fifo" && mkfifo "$dir/$_n.fifo" || die "mkfifo"
	setsid $SERVER "$@" 3>"$dir/$_n.fifo" 2>>"$dir/daemons.log" &
	pids="$pids $!"
	eval "pid_$_n=\$!"
	timeout 20 sh -c 'read -r _ <"$1"' sh "$dir/$_n.fifo" || die "$_n did not start: $(tail -n 5 "$dir/daemons.log")"
}
start mapd p2p-mapd -d 3 -r "$R" -s "$dir/state" -f "$dir/map.json"
start authz p2p-authz -d 3 -r "$R" -m "$R/mapd.sock" -f "$dir/policy.json"
# as run/connector/p2p-audit runs it: groups gathered for 10 ms
start audit p2p-audit -d 3 -r "$R" -D "$dir/audit" -H bench -w 10
start tlsterm p2p-tlsterm -d 3 -r "$R" -C "$dir/certs" -p "$PT" -P 0
# the same without checks, on its own run directory (its own tlsterm.sock)
mkdir -p "$dir/run-nochecks" || exit 1
start nochecks "$P2P_BUILD/bench/p2p-tlsterm-nochecks" -d 3 -r "$dir/run-nochecks" -m "$R/mapd.sock" \
	-C "$dir/certs" -p "$PX" -P 0
for p in "$PT" "$PX"; do
	i=0
	until curl -sk --resolve "bench.corp.test:$p:127.77.2.1" "https://bench.corp.test:$p/" 2>/dev/null | grep -q ok; do
		i=$((i + 1)); [ "$i" -lt 100 ] || die "p2p-tlsterm on port $p does not answer"; sleep 0.05
	done
done
curl -sk "https://127.0.0.1:$PN/" | grep -q ok || die "nginx does not answer"

# ---- measures ----
rps() { # URL [h2load options]: requests per second, or exit on a non-2xx
	[ -z "${BENCH_DEBUG:-}" ] || curl -sk -i -H "Host: bench.corp.test" "$1" >&2
	_u=$1; shift
	$LOAD h2load "$@" -n "$requests" -c "$conns" "$_u" >"$dir/h2load.out" 2>&1
	grep -q "status codes: $requests 2xx" "$dir/h2load.out" ||
		die "not every response was 200 from $_u: $(grep -E 'status codes|requests:' "$dir/h2load.out")"
	sed -n 's/^finished in [0-9.]*m\{0,1\}s, \([0-9.]*\) req\/s.*/\1/p' "$dir/h2load.out" | cut -d. -f1
}
handshakes() { # HOST:PORT: new handshakes per second
	$LOAD openssl s_time -connect "$1" -new -time "$seconds" -cipher ECDHE-ECDSA-AES128-GCM-SHA256 2>/dev/null |
		sed -n 's/^[0-9]* connections in [0-9.]*s; \([0-9.]*\) connections\/user sec.*/\1/p' | head -n 1 |
		cut -d. -f1
}
best() { # NAME VALUE: keep the highest in $dir/NAME
	[ -n "$2" ] || die "no figure for $1"
	if [ ! -s "$dir/$1" ] || [ "$2" -gt "$(cat "$dir/$1")" ]; then echo "$2" >"$dir/$1"; fi
}
T_URL="https://127.77.2.1:$PT/" N_URL="https://127.0.0.1:$PN/" X_URL="https://127.77.2.1:$PX/"
# The CPU time of process $1 in nanoseconds: the scheduler's own count
# (/proc/PID/schedstat), where the clock ticks of /proc/PID/stat would be
# 10 ms steps, a few per cent of a run; the ticks where there is none.
if [ -r "/proc/$$/schedstat" ]; then
	cpu() { read -r _ns _rest <"/proc/$1/schedstat" && echo "$_ns"; }
else
	tick_ns=$((1000000000 / $(getconf CLK_TCK)))
	cpu() { awk -v t="$tick_ns" '{ printf("%.0f\n", ($14 + $15) * t) }' "/proc/$1/stat"; }
fi
# The CPU the servers behind one proxy spent: what policy and audit cost on
# the same load, measured without the load tool's noise (both runs serve
# the same number of requests).
up_worker=$(pgrep -P "$(cat "$dir/nginx-up/nginx.pid")" | head -n 1)
[ -n "$up_worker" ] || die "no worker of the upstream nginx"
servers_cpu() { # PID...
	_s=0
	for _p; do _s=$((_s + $(cpu "$_p"))); done
	echo "$_s"
}
with_checks="$pid_tlsterm $pid_authz $pid_audit $up_worker" without_checks="$pid_nochecks $up_worker"
measured() { # VAR PIDS COMMAND...: run COMMAND (its figure on stdout), VAR = the PIDS' CPU (ns)
	_var=$1 _pids=$2
	shift 2
	_c0=$(servers_cpu $_pids)
	"$@"
	eval "$_var=\$((\$(servers_cpu $_pids) - _c0))"
}
if [ -n "${BENCH_HOLD:-}" ]; then   # for profiling by hand: keep the servers up
	say "holding: tlsterm $pid_tlsterm $T_URL, without checks $pid_nochecks $X_URL, nginx $N_URL; authz $pid_authz, audit $pid_audit"
	while :; do sleep 60; done
fi
if [ -n "${BENCH_CPU:-}" ]; then
	a0=$(cpu "$pid_tlsterm") b0=$(cpu "$pid_authz") c0=$(cpu "$pid_audit")
	if [ -n "${BENCH_PERF:-}" ]; then
		perf record -g -o "$BENCH_PERF" -p "$pid_tlsterm" 2>/dev/null &
		perfpid=$!
		sleep 0.5
	fi
	rps "$T_URL" --h1 >&2
	[ -z "${BENCH_PERF:-}" ] || { kill -INT "$perfpid"; wait "$perfpid"; }
	echo "cpu ns: tlsterm $(($(cpu "$pid_tlsterm") - a0)) authz $(($(cpu "$pid_authz") - b0)) audit $(($(cpu "$pid_audit") - c0))" >&2
	x0=$(cpu "$pid_nochecks")
	rps "$X_URL" --h1 >&2
	echo "cpu ns: tlsterm without checks $(($(cpu "$pid_nochecks") - x0))" >&2
fi
# trio N ORDER OPTIONS...: p2p-tlsterm (t), nginx (n) and p2p-tlsterm
# without checks (x) in ORDER, with the h2load OPTIONS of protocol N (1
# HTTPS/1.1, 2 HTTP/2): their req/s in tN, nN, xN, the CPU of the servers
# behind each p2p-tlsterm in ctN, cxN (ns), p2p-audit's part of ctN in caN
trio() {
	_proto=$1 _order=$2
	shift 2
	for _who in $_order; do
		case $_who in
		t)
			_a0=$(cpu "$pid_audit")
			measured "ct$_proto" "$with_checks" rps "$T_URL" "$@" >"$dir/fig"
			eval "ca$_proto=\$((\$(cpu \"\$pid_audit\") - _a0))"
			;;
		x) measured "cx$_proto" "$without_checks" rps "$X_URL" "$@" >"$dir/fig" ;;
		n) rps "$N_URL" "$@" >"$dir/fig" ;;
		esac
		eval "$_who$_proto=\$(cat \"\$dir/fig\")"
	done
}
us() { awk -v ns="$1" -v n="$requests" 'BEGIN { printf("%.1f", ns / n / 1000) }'; }   # NS: a request, in us
r=0
while [ "$r" -lt "$rounds" ]; do
	# the three servers in turn, in the other order every second round, so
	# that a machine getting faster or slower within a round favours none
	order="t n x"
	[ $((r % 2)) -eq 0 ] || order="x n t"
	trio 1 "$order" --h1
	trio 2 "$order" -m 10
	ths=$(handshakes "127.77.2.1:$PT") nhs=$(handshakes "127.0.0.1:$PN")
	for v in t_h1:$t1 n_h1:$n1 x_h1:$x1 t_h2:$t2 n_h2:$n2 x_h2:$x2 t_hs:$ths n_hs:$nhs; do
		best "${v%%:*}" "${v#*:}"
	done
	echo "$t1 $n1 $x1 $t2 $n2 $x2 $ths $nhs $ct1 $cx1 $ct2 $cx2 $ca1 $ca2" >>"$dir/rounds"
	say "round $((r + 1)): HTTPS/1.1 with $t1, nginx $n1, without $x1 req/s; HTTP/2 with $t2, nginx $n2, without $x2; handshakes $ths, nginx $nhs; servers' CPU a request with/without (p2p-audit's part): HTTPS/1.1 $(us "$ct1")/$(us "$cx1") ($(us "$ca1")) us, HTTP/2 $(us "$ct2")/$(us "$cx2") ($(us "$ca2")) us"
	r=$((r + 1))
done

# ---- memory per idle connection ----
idle_kib() { # PID PORT ADDR: KiB of RSS per idle kept-alive TLS connection
	$LOAD /usr/bin/python3 "$P2P_TOP/tests/tls-idle-kib.py" "$1" "$3" "$2" bench.corp.test "$idle"
}
nginx_worker=$(pgrep -P "$(cat "$dir/nginx-px/nginx.pid")" | head -n 1)
[ -n "$nginx_worker" ] || die "no nginx worker"
t_idle=$(idle_kib "$pid_tlsterm" "$PT" 127.77.2.1) || die "idle connections to p2p-tlsterm"
n_idle=$(idle_kib "$nginx_worker" "$PN" 127.0.0.1) || die "idle connections to nginx"

ratio() { echo "scale=2; $1 / $2" | bc; }
# paired A B: the median over the rounds of column A / column B (ratio), of
# 100 * (1 - A / B) (cost: requests/s with A, without B), of
# 100 * (1 - B / A) (cpucost: CPU with A, without B), or of column A in us
# a request (us: CPU in ns), from $dir/rounds
paired() { # ratio|cost|cpucost|us A [B]
	awk -v kind="$1" -v a="$2" -v b="${3:-0}" -v n="$requests" '{
		if (kind == "ratio") v[NR] = $a / $b
		else if (kind == "cost") v[NR] = 100 * (1 - $a / $b)
		else if (kind == "us") v[NR] = $a / n / 1000
		else v[NR] = 100 * (1 - $b / $a)
	} END {
		for (i = 1; i <= NR; i++) for (j = i + 1; j <= NR; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf(kind == "ratio" ? "%.2f" : "%.1f", m)
	}' "$dir/rounds"
}
cost() { echo "scale=1; 100 * ($2 - $1) / $2" | bc; }   # WITH WITHOUT: percent lost
records=$(wc -l <"$dir/audit/audit.log")
echo "tlsterm-rps: HTTPS/1.1 keep-alive, $conns connections: p2p-tlsterm $(cat "$dir/t_h1") req/s, nginx (1 worker) $(cat "$dir/n_h1") req/s, ratio $(ratio "$(cat "$dir/t_h1")" "$(cat "$dir/n_h1")")"
echo "tlsterm-rps: HTTP/2, $conns connections x 10 streams: p2p-tlsterm $(cat "$dir/t_h2") req/s, nginx $(cat "$dir/n_h2") req/s, ratio $(ratio "$(cat "$dir/t_h2")" "$(cat "$dir/n_h2")")"
echo "tlsterm-rps: new TLS handshakes (s_time, one at a time): p2p-tlsterm $(cat "$dir/t_hs")/s, nginx $(cat "$dir/n_hs")/s, ratio $(ratio "$(cat "$dir/t_hs")" "$(cat "$dir/n_hs")")"
echo "tlsterm-rps: policy + audit: HTTPS/1.1 $(cat "$dir/x_h1") req/s without, $(cat "$dir/t_h1") with: cost $(cost "$(cat "$dir/t_h1")" "$(cat "$dir/x_h1")") %; HTTP/2 $(cat "$dir/x_h2") without, $(cat "$dir/t_h2") with: cost $(cost "$(cat "$dir/t_h2")" "$(cat "$dir/x_h2")") %"
echo "tlsterm-rps: without policy + audit against nginx: HTTPS/1.1 ratio $(ratio "$(cat "$dir/x_h1")" "$(cat "$dir/n_h1")"), HTTP/2 ratio $(ratio "$(cat "$dir/x_h2")" "$(cat "$dir/n_h2")")"
echo "tlsterm-rps: memory per idle kept-alive TLS connection ($idle): p2p-tlsterm $t_idle KiB, nginx $n_idle KiB"
echo "tlsterm-rps: paired (median of $rounds rounds): with policy + audit against nginx: HTTPS/1.1 $(paired ratio 1 2), HTTP/2 $(paired ratio 4 5), handshakes $(paired ratio 7 8); policy + audit cost: HTTPS/1.1 $(paired cost 1 3) %, HTTP/2 $(paired cost 4 6) %; without against nginx: HTTPS/1.1 $(paired ratio 3 2), HTTP/2 $(paired ratio 6 5)"
echo "tlsterm-rps: policy + audit cost in the servers' CPU for the same requests (p2p-tlsterm, p2p-authz, p2p-audit and the upstream against p2p-tlsterm without checks and the upstream; median of $rounds rounds): HTTPS/1.1 $(paired cpucost 9 10) %, HTTP/2 $(paired cpucost 11 12) %; a request with/without: HTTPS/1.1 $(paired us 9)/$(paired us 10) us, HTTP/2 $(paired us 11)/$(paired us 12) us, of which p2p-audit $(paired us 13) and $(paired us 14) us"
echo "tlsterm-rps: (p2p-tlsterm checked every request with p2p-authz and wrote $records audit records)"
