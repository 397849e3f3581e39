#!/bin/sh
# Durability of p2p-audit under s6: a writer sends 100,000 records over
# audit.sock (256 in flight) while p2p-audit is killed with SIGKILL five
# times and restarted by s6-supervise; afterwards every acknowledged record
# is in the files at the seq it was acknowledged with, the chain verifies
# across the rotations (the service runs with -s 1M here), and a line
# changed by hand is named by -V. The test prints how many records were
# sent, acknowledged and found.
#
#   private mount namespace (unshare -m): scratch directories on /etc/p2p,
#   /run, /var/lib and /var/log
#
#   s6-svscan T/scan ─┬─ s6-supervise p2p-audit ──── p2p-audit -d 3 -u p2p ──> /run/p2p/audit.sock
#                     │                                 │ fdatasync            ^
#                     │                                 └──> /var/lib/p2p/audit/audit*.log
#                     └─ s6-supervise p2p-audit/log ── s6-log ──> /var/log/p2p/audit/current
#   writer (python3) ──── 100,000 "log" requests ─────────────────────────────┘
#      └── kill -9 (s6-svstat -o pid) at 1/6, 2/6 ... 5/6 of the acknowledgements
# shellcheck disable=SC2015,SC2016,SC2317 # "a && b || fail"; sh -c '...' sh ARGS; functions run by check and trap
. "$(dirname "$0")/../lib.sh"

need_root "audit-s6-durability"
for t in s6-svscan s6-svscanctl s6-svstat s6-svwait s6-svc s6-log unshare setsid jq /usr/bin/python3; do
	if ! command -v "$t" >/dev/null 2>&1; then
		skip "audit-s6-durability: needs $t (make deps)"
		exit 0
	fi
done
RECORDS=${AUDIT_RECORDS:-100000}
KILLS=5

if [ "${P2P_AUDIT_S6_INNER:-}" != 1 ]; then
	if ! getent passwd p2p >/dev/null; then
		{ getent group p2p >/dev/null || groupadd --system p2p; } &&
			useradd --system --gid p2p --no-create-home --home-dir /nonexistent \
				--shell /usr/sbin/nologin p2p || { fail "creating the p2p user"; exit 1; }
	fi
	made=
	if [ ! -d /etc/p2p ]; then
		mkdir /etc/p2p || { fail "creating the mount point /etc/p2p"; exit 1; }
		made=1
	fi
	P2P_AUDIT_S6_INNER=1 unshare --mount --propagation private -- sh "$0"
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
S=$T/scan/p2p-audit
svscan=

alive() {
	_st=$(sed -n 's/^[0-9]* (.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
	[ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}
gone() { ! alive "$1"; }

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
	leftovers >"$T/left"
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
	echo ny >"$T/etc/host" &&
	cp -R "$P2P_TOP/run/connector/p2p-audit" "$S" &&
	rm -rf "$S/supervise" "$S/log/supervise" || { fail "setting up $T"; exit 1; }
# Small files, so that the kills also land around rotations.
sed -i 's/ -s 64M/ -s 1M/' "$S/run"
check "the run script rotates at 1 MiB here" grep -q ' -s 1M' "$S/run"
for m in etc:/etc/p2p run:/run varlib:/var/lib varlog:/var/log; do
	mount --bind "$T/${m%%:*}" "${m#*:}" || { fail "mounting $T/${m%%:*} on ${m#*:}"; exit 1; }
done

setsid -f sh -c 'echo $$ >"$1/svscan.pid" && exec s6-svscan "$1/scan"' sh "$T" \
	</dev/null >"$T/svscan.log" 2>&1
wait_for 10 [ -s "$T/svscan.pid" ] && svscan=$(cat "$T/svscan.pid")
check "s6-svscan runs" [ -n "$svscan" ]
wait_for 10 [ -p "$S/supervise/control" ]
check "s6-svwait -U: p2p-audit is up and ready" s6-svwait -U -t 20000 "$S"
check "ready means serving: audit.sock answers" \
	sh -c 'echo "{\"id\":1,\"op\":\"status\"}" | socat -t 5 - UNIX-CONNECT:/run/p2p/audit.sock | jq -e ".ok and .host == \"ny\"" >/dev/null'
pid1=$(s6-svstat -o pid "$S")
case $pid1 in '' | *[!0-9]* | 0) fail "s6-svstat gives no pid for p2p-audit ($pid1)"; finish ;; esac
check "p2p-audit runs as the p2p user" [ "$(stat -c %U "/proc/$pid1")" = p2p ]
check "audit.sock belongs to the p2p group, mode 0660" \
	[ "$(stat -c '%G %a' /run/p2p/audit.sock 2>&1)" = "$(id -gn p2p) 660" ]
check "the trail is the p2p user's, mode 0750" \
	[ "$(stat -c '%U %a' /var/lib/p2p/audit 2>&1)" = "p2p 750" ]

cat >"$T/writer.py" <<'EOF'
# writer.py SOCKET TOTAL SERVICE KILLS ACKFILE: send TOTAL records with up to
# 256 unacknowledged, reconnecting whenever p2p-audit goes away (records
# in flight then are never sent again), and kill p2p-audit (the pid s6 gives)
# KILLS times, spread over the run. Each acknowledgement goes to ACKFILE
# as "ID SEQ". Prints "sent S acked A kills K".
import json, os, signal, socket, subprocess, sys, time

path, total, service, kills_wanted, ackfile = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
kill_at = {total * k // (kills_wanted + 1) for k in range(1, kills_wanted + 1)}
sent = acked = kills = 0
out = open(ackfile, "w")

def connect():
    deadline = time.time() + 60
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.time() > deadline:
                raise
            time.sleep(0.01)

def kill():
    global kills
    pid = subprocess.run(["s6-svstat", "-o", "pid", service], capture_output=True, text=True).stdout.strip()
    if pid.isdigit() and int(pid) > 1:
        os.kill(int(pid), signal.SIGKILL)
        kills += 1

def record(n):
    return {"type": "request", "resource": "vault", "method": "POST", "path": "/v1/item/%d" % n,
            "decision": "allow", "status": 201, "user": "alice", "groups": ["eng"],
            "src": "100.96.0.5:%d" % (10000 + n % 50000), "bytes_in": n, "request_id": "w-%d" % n}

n = 1
while n <= total:
    s = connect()
    f = s.makefile("rb")
    waiting = set()
    try:
        while n <= total or waiting:
            batch = []
            while n <= total and len(waiting) < 256:
                batch.append(json.dumps({"id": n, "op": "log", "record": record(n)}))
                waiting.add(n)
                n += 1
            if batch:
                sent += len(batch)  # sent, or lost in the attempt
                s.sendall(("\n".join(batch) + "\n").encode())
            line = f.readline()
            if not line:
                raise ConnectionError("closed")
            r = json.loads(line)
            if not r.get("ok"):
                sys.exit("refused: %s" % line)
            waiting.discard(r["id"])
            acked += 1
            out.write("%d %d\n" % (r["id"], r["seq"]))
            if acked in kill_at:
                kill()
    except (ConnectionError, OSError):
        pass
    s.close()
out.close()
print("sent %d acked %d kills %d" % (sent, acked, kills))
EOF

cat >"$T/check.py" <<'EOF'
# check.py DIR ACKFILE: every acknowledged (id, seq) is in DIR's files at that
# seq; prints "found F acknowledged-missing M wrong-seq W duplicates D".
import glob, json, os, sys
d, ackfile = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(os.path.join(d, "audit-*.log"))) + [os.path.join(d, "audit.log")]
where = {}
dups = 0
for name in files:
    for line in open(name, "rb"):
        r = json.loads(line)
        rid = r.get("request_id", "")
        if rid.startswith("w-"):
            if rid in where:
                dups += 1
            where[rid] = r["seq"]
missing = wrong = 0
for line in open(ackfile):
    i, seq = line.split()
    got = where.get("w-" + i)
    if got is None:
        missing += 1
    elif got != int(seq):
        wrong += 1
print("found %d acknowledged-missing %d wrong-seq %d duplicates %d" % (len(where), missing, wrong, dups))
EOF

start=$(date +%s)
/usr/bin/python3 "$T/writer.py" /run/p2p/audit.sock "$RECORDS" "$S" "$KILLS" "$T/acks" >"$T/writer.out" 2>&1
rc=$?
took=$(($(date +%s) - start))
cat "$T/writer.out"
check "the writer finished" [ "$rc" -eq 0 ]
# shellcheck disable=SC2046 # words of the writer's summary
set -- $(cat "$T/writer.out")
sent=${2:-0} acked=${4:-0} kills=${6:-0}
check "p2p-audit was killed $KILLS times during the run" [ "$kills" = "$KILLS" ]
check "s6 brought p2p-audit back: up and ready" s6-svwait -U -t 20000 "$S"
check "every record was sent ($sent)" [ "$sent" -eq "$RECORDS" ]

s6-svc -d "$S"
check "s6-svc -d: p2p-audit goes down" s6-svwait -D -t 10000 "$S"
check "s6-svc -d: p2p-audit exited 0" [ "$(s6-svstat -o exitcode "$S")" = 0 ]

/usr/bin/python3 "$T/check.py" /var/lib/p2p/audit "$T/acks" >"$T/check.out" 2>&1
cat "$T/check.out"
# shellcheck disable=SC2046
set -- $(cat "$T/check.out")
found=${2:-0} missing=${4:-x} wrong=${6:-x} dups=${8:-x}
echo "audit-s6-durability: sent $sent, acknowledged $acked, found $found (kills: $kills, $took s)"
check "every acknowledged record is in the files ($acked acknowledged, $missing missing)" \
	[ "$missing" = 0 ] && [ "$acked" -gt 0 ]
check "each at the seq it was acknowledged with" [ "$wrong" = 0 ]
check "no record twice" [ "$dups" = 0 ]
check "found is between acknowledged and sent" [ "$found" -ge "$acked" ] && [ "$found" -le "$sent" ]
check "only the records in flight at the kills went unacknowledged (at most 256 a kill)" \
	[ $((sent - acked)) -le $((KILLS * 256)) ]
p2p-audit -V /var/lib/p2p/audit >"$T/v.out" 2>&1
rc=$?
cat "$T/v.out"
check "-V: the chain verifies across $(ls /var/lib/p2p/audit/audit-*.log | wc -l) rotated files and audit.log" [ "$rc" -eq 0 ]
check "no restart found a last record that does not verify" \
	sh -c '! grep -q "does not verify" /var/log/p2p/audit/current'

# Tampering with one line of a rotated file, in a copy: named by file and line.
mkdir "$T/copy" && cp /var/lib/p2p/audit/audit*.log "$T/copy/"
victim=$(ls "$T/copy"/audit-*.log | sed -n 3p)
sed -i '1000s/"status":201/"status":200/' "$victim"
p2p-audit -V "$T/copy" >/dev/null 2>"$T/tamper.err"
rc=$?
check "-V: one changed line in $(basename "$victim"): exit 1" [ "$rc" -eq 1 ]
check "-V names it: $(basename "$victim"):1000" grep -q "$(basename "$victim"):1000: seq [0-9]*: the hash does not match" "$T/tamper.err"

echo "--- /var/log/p2p/audit/current"
cat /var/log/p2p/audit/current
finish
