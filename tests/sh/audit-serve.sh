#!/bin/sh
# p2p-audit as a writer: records over audit.sock acknowledged with their seq
# (in the order of the requests, after the commit), refused records and bad
# requests, the status op, records from standard input (-i), the chain
# checked by -V and by an independent script that follows p2p-audit(5),
# tampering named by line, recovery of a torn last line after kill -9,
# -n, usage errors, and no record content in the log.
#
#   test ── socat ──> T/run/audit.sock ── p2p-audit -D T/trail ──> T/trail/audit.log
#   test ── printf | p2p-audit -i -D T/pipe ──> T/pipe/audit.log
# shellcheck disable=SC2016 # sh -c '...' sh ARGS
. "$(dirname "$0")/../lib.sh"

T=$(scratch)
pid=
cleanup() {
	if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null; fi
	if [ "$_failures" -gt 0 ] && [ -s "$T/log" ]; then sed 's/^/# log: /' "$T/log"; fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

for t in socat jq /usr/bin/python3; do
	if ! command -v "$t" >/dev/null 2>&1; then
		skip "audit-serve: needs $t (make deps)"
		exit 0
	fi
done

R=$T/run D=$T/trail SOCK=$T/run/audit.sock

start() {
	rm -f "$T/ready" && mkfifo "$T/ready" || return 1
	p2p-audit -v -d 3 -r "$R" -D "$D" -H ny.example "$@" 3>"$T/ready" 2>>"$T/log" &
	pid=$!
	timeout 20 sh -c 'read -r _ <"$1"' sh "$T/ready"
}

stop() { # the daemon exits 0 on SIGTERM and removes its socket
	kill -TERM "$pid"
	wait "$pid"
	_rc=$?
	pid=
	check "SIGTERM: p2p-audit exits 0" [ "$_rc" -eq 0 ]
	check "SIGTERM: the socket is removed" [ ! -e "$SOCK" ]
}

raw() { socat -t 20 - "UNIX-CONNECT:$SOCK"; }

# A request record N, whose path carries a marker the log must never show.
rec() {
	printf '{"type":"request","resource":"vault","method":"GET","path":"/s3cr3t/%s","decision":"allow","status":200,"user":"alice","groups":["eng"],"src":"100.96.0.5:40000","request_id":"r-%s","bytes_out":%s}' "$1" "$1" "$1"
}
logreq() { printf '{"id":%s,"op":"log","record":%s}\n' "$1" "$(rec "$1")"; }

check "p2p-audit starts and says ready" start

# ---- the socket ----
out=$(logreq 1 | raw)
check "log: acknowledged with seq 1" [ "$out" = '{"id":1,"ok":true,"seq":1}' ]
check "the record is in the file when acknowledged" \
	sh -c '[ "$(wc -l <"$1")" -eq 1 ] && grep -q "\"request_id\":\"r-1\"" "$1"' sh "$D/audit.log"

# 200 requests on one connection, sent without waiting, the sending side
# closed at once: every acknowledgement still comes, in order.
i=2
while [ "$i" -le 201 ]; do logreq "$i"; i=$((i + 1)); done >"$T/many"
raw <"$T/many" >"$T/acks"
check "200 pipelined records: 200 acknowledgements" [ "$(wc -l <"$T/acks")" -eq 200 ]
check "the acknowledgements come in the order of the requests, seq = id" \
	sh -c 'jq -r "select(.ok) | \"\(.id) \(.seq)\"" "$1" | awk "\$1 != NR + 1 || \$2 != \$1 { bad = 1 } END { exit bad }"' sh "$T/acks"
check "the file holds 201 records" [ "$(wc -l <"$D/audit.log")" -eq 201 ]

# Refused records get an error naming the member, and nothing is written.
{
	printf '%s\n' '{"id":1,"op":"log","record":{"type":"request","resource":"vault","decision":"allow","method":"GET","path":"/","status":"200"}}'
	printf '%s\n' '{"id":2,"op":"log","record":{"type":"request","resource":"vault","decision":"allow","method":"GET","path":"/","seq":9}}'
	printf '%s\n' '{"id":3,"op":"log","record":{"type":"request","resource":"vault","decision":"allow","method":"GET","path":"/","password":"hunter2"}}'
	printf '%s\n' '{"id":4,"op":"log"}'
	printf '%s\n' '{"id":5,"op":"log","record":[1]}'
	printf '%s\n' '{"id":6,"op":"frobnicate"}'
	printf '%s\n' 'not json'
} | raw >"$T/errs"
check "a bad status: .record.status named" grep -q '"id":1,"ok":false,"error":".record.status: not an integer from 0 to 999"' "$T/errs"
check "seq is p2p-audit's: refused" grep -q '"id":2,"ok":false,"error":".record.seq: written by p2p-audit' "$T/errs"
check "an unknown member: refused, its value not quoted" \
	sh -c 'grep -q "\"id\":3,\"ok\":false,\"error\":\".record.password: unknown member\"" "$1" && ! grep -q hunter2 "$1"' sh "$T/errs"
check "no record: .record: missing" grep -q '"id":4,"ok":false,"error":".record: missing"' "$T/errs"
check "a record that is not an object" grep -q '"id":5,"ok":false,"error":".record: not a JSON object"' "$T/errs"
check "an unknown op" grep -q "\"id\":6,\"ok\":false,\"error\":\"unknown op 'frobnicate'\"" "$T/errs"
check "a line that is not JSON" grep -q '"ok":false,"error":"bad request' "$T/errs"
check "refused records are not written" [ "$(wc -l <"$D/audit.log")" -eq 201 ]

st=$(printf '%s\n' '{"id":9,"op":"status"}' | raw)
check "status: writer, host, seq 201, the last hash, 4 refused" \
	sh -c 'echo "$1" | jq -e ".prog == \"p2p-audit\" and .mode == \"writer\" and .host == \"ny.example\" and .seq == 201 and (.hash | length) == 64 and .refused == 4 and .records == 201" >/dev/null' sh "$st"
check "p2p status lists audit" sh -c 'p2p -r "$1" status | grep -q "^audit *up .*seq=201"' sh "$R"

# ---- verification ----
check "-V: the chain verifies" sh -c 'p2p-audit -V "$1" >"$2"' sh "$D" "$T/v.out"
check "-V says how many records and the last hash" \
	grep -q "^201 records, seq 1 to 201, host ny.example, last hash $(tail -n 1 "$D/audit.log" | jq -r .hash): the chain verifies" "$T/v.out"

# The chain recomputed outside p2p-audit, from the definition in p2p-audit(5).
cat >"$T/verify.py" <<'EOF'
import hashlib, json, sys
prev = "0" * 64
seq = 0
for n, line in enumerate(open(sys.argv[1], "rb"), 1):
    line = line.rstrip(b"\n")
    body, tail = line[:-75], line[-75:]
    assert tail[:9] == b',"hash":"' and tail[-2:] == b'"}', n
    rec = json.loads(line)
    assert rec["seq"] == seq + 1 and rec["prev"] == prev, n
    assert hashlib.sha256(body + b"}").hexdigest() == rec["hash"], n
    prev, seq = rec["hash"], rec["seq"]
print(seq, prev)
EOF
check "an independent script recomputes every hash and link" \
	sh -c '[ "$(/usr/bin/python3 "$1" "$2")" = "201 $(tail -n 1 "$2" | jq -r .hash)" ]' sh "$T/verify.py" "$D/audit.log"

cp "$D/audit.log" "$T/copy.log"
sed -i '57s/"status":200/"status":201/' "$T/copy.log"
p2p-audit -V "$T/copy.log" >/dev/null 2>"$T/v.err"
rc=$?
check "-V: one edited line: exit 1" [ "$rc" -eq 1 ]
check "-V names the line: copy.log:57" grep -q "copy.log:57: seq 57: the hash does not match the line" "$T/v.err"
sed -i '100d' "$T/copy.log"
p2p-audit -V "$T/copy.log" >/dev/null 2>"$T/v.err"
check "-V: a removed line is named too (line 100 holds seq 101)" \
	grep -q "copy.log:100: seq 101 where seq 100 was expected" "$T/v.err"
check "-V: a missing file is a system error (111)" \
	sh -c 'p2p-audit -V "$1/nope" 2>/dev/null; [ $? -eq 111 ]' sh "$T"

# ---- a crash and recovery ----
kill -KILL "$pid"
wait "$pid" 2>/dev/null
pid=
# A crash in the middle of a write leaves half a line.
head -c 150 "$D/audit.log" >"$T/torn" && cat "$T/torn" >>"$D/audit.log"
check "-n: the torn file is still a good configuration, with a warning" \
	sh -c 'p2p-audit -n -D "$1" -H ny 2>&1 >/dev/null | grep -q "warning: .*unfinished line of 150 bytes"' sh "$D"
check "-n changes nothing" sh -c 'tail -c 150 "$1" | grep -qv "}\$"' sh "$D/audit.log"
check "restarted after kill -9 with a torn last line" start
check "the torn line was cut, with a warning" \
	grep -q "p2p-audit: warning: .*/audit.log: cut an unfinished last line of 150 bytes" "$T/log"
out=$(logreq 500 | raw)
check "the chain goes on at seq 202" [ "$out" = '{"id":500,"ok":true,"seq":202}' ]
idreq() { printf '{"id":%s,"op":"log","record":%s}\n' "$1" "$(rec 1)"; }
out=$({ idreq null; idreq -7; idreq 9223372036854775807; } | raw | tr '\n' ' ')
check "acknowledgements of ids null, negative and the largest, as jansson writes them" \
	[ "$out" = '{"id":null,"ok":true,"seq":203} {"id":-7,"ok":true,"seq":204} {"id":9223372036854775807,"ok":true,"seq":205} ' ]
check "-V: the chain verifies after the recovery" sh -c 'p2p-audit -V "$1" >/dev/null' sh "$D"
stop

# A last record that does not verify stops the start (102), naming it.
sed -i '$s/"status":200/"status":299/' "$D/audit.log"
p2p-audit -D "$D" -r "$R" -H ny 2>"$T/bad.err"
rc=$?
check "a changed last record: exit 102" [ "$rc" -eq 102 ]
check "... naming the file and line 205" grep -q "audit.log:205: the last record does not verify" "$T/bad.err"
p2p-audit -n -D "$D" -H ny >/dev/null 2>&1
check "-n finds it too (102)" [ $? -eq 102 ]

# ---- standard input ----
{
	rec 1001; echo
	echo 'not json at all: s3cr3t'
	rec 1002; echo
	printf '%s\n' '{"type":"request","resource":"vault","decision":"allow","method":"GET","path":"/s3cr3t","status":"x"}'
	rec 1003 # no newline at the end
} | p2p-audit -i -D "$T/pipe" -r "$T/run2" -H ny 2>>"$T/log"
rc=$?
check "-i: exits 0 at the end of standard input" [ "$rc" -eq 0 ]
check "-i: the three good records are written" [ "$(wc -l <"$T/pipe/audit.log")" -eq 3 ]
check "-i: the last line without a newline counts" grep -q '"request_id":"r-1003"' "$T/pipe/audit.log"
check "-i: bad lines are logged by number and member" \
	sh -c 'grep -q "standard input: line 2: not JSON: column [0-9]*: .* expected: not written" "$1" && grep -q "standard input: line 4: .status: not an integer" "$1"' sh "$T/log"
check "-i: the chain verifies" sh -c 'p2p-audit -V "$1" >/dev/null' sh "$T/pipe"
p2p-audit -i -D "$T/pipe" -r "$T/run2" -H ny </dev/null 2>>"$T/log"
check "-i from /dev/null: exits 0 at once, nothing added" \
	sh -c '[ $? -eq 0 ] && [ "$(wc -l <"$1")" -eq 3 ]' sh "$T/pipe/audit.log"

# ---- a client gone before its acknowledgements ----
D=$T/gone
check "p2p-audit starts on a new chain" start
i=1
while [ "$i" -le 300 ]; do logreq "$i"; i=$((i + 1)); done | socat -t 0 - "UNIX-CONNECT:$SOCK" >/dev/null
alive() { printf '%s\n' '{"id":1,"op":"status"}' | raw | grep -q '"ok":true'; }
check "a client that went away with acknowledgements to come: p2p-audit carries on" alive
stop
# What p2p-audit read before the client's close is written (a close with
# replies unread resets the connection, which may drop requests not yet
# read: those were never acknowledged).
check "... and what it read is written: the chain verifies" \
	sh -c 'p2p-audit -V "$1" | grep -q "^[0-9]* records, seq 1 to"' sh "$D"

# ---- the log ----
check "no record content reaches the log" sh -c '! grep -q "s3cr3t\|hunter2\|alice" "$1"' sh "$T/log"

# ---- usage ----
for args in "-x" "-V" "-L -i" "-c http://c/ -A a -C c -K k" "-l 127.0.0.1:1" "-C c" "-y h:1" \
	"-w 5000" "-s 100" "-F 24" "extra"; do
	# shellcheck disable=SC2086 # the arguments, split
	p2p-audit $args >/dev/null 2>&1
	rc=$?
	check "usage error: p2p-audit $args: exit 100" [ "$rc" -eq 100 ]
done
p2p-audit -H "bad host" -D "$T/x" -r "$T/run3" -n >/dev/null 2>&1
check "a bad host name: exit 102" [ $? -eq 102 ]

finish
