# tests/lib.sh: sourced by the shell tests (POSIX sh).
#   ok/fail/skip print the lines tests/run counts;
#   check DESC CMD...      ok if CMD succeeds, else not ok;
#   wait_for SECS CMD...   poll CMD every 50 ms for at most SECS seconds;
#   finish                 exit 1 if anything failed (call last).
# P2P_TOP and P2P_BUILD come from tests/run; a test run by hand finds them.
set -u
: "${P2P_TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${P2P_BUILD:=$P2P_TOP/build}"
PATH="$P2P_BUILD/bin:$PATH"
# the tests' Python helpers (jwk.py: JWKs with full-length EC coordinates)
PYTHONPATH="$P2P_TOP/tests${PYTHONPATH:+:$PYTHONPATH}"
export P2P_TOP P2P_BUILD PATH PYTHONPATH
_failures=0

ok() { echo "ok - $*"; }
fail() { echo "not ok - $*"; _failures=$((_failures + 1)); }
skip() { echo "skip - $*"; }

check() {
	_desc=$1; shift
	if "$@"; then ok "$_desc"; else fail "$_desc"; fi
}

wait_for() {
	_limit=$(($1 * 20)); shift
	_i=0
	while [ "$_i" -lt "$_limit" ]; do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.05
		_i=$((_i + 1))
	done
	return 1
}

# The test needs root; otherwise say why and count as skipped.
need_root() {
	if [ "$(id -u)" -ne 0 ]; then skip "$1: needs root"; exit 0; fi
}

# The system user and group p2p, as p2p-lab makes them (the daemons' -u p2p
# in run/); 0, or 1 having said why not.
need_p2p_user() {
	getent passwd p2p >/dev/null && return 0
	{ getent group p2p >/dev/null || groupadd --system p2p; } &&
		useradd --system --gid p2p --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin p2p && return 0
	fail "creating the p2p user"
	return 1
}

# A scratch directory removed at exit (add your own cleanup before it).
scratch() { mktemp -d "${TMPDIR:-/tmp}/p2p-test.XXXXXX"; }

# lab_up: a lab of the test's own (root), in a scratch directory T that
# goes at exit with the lab: P2P_LAB_DIR, name, state (its directory),
# lab ARGS (p2p-lab on it) and on NODE CMD... (p2p-lab exec). When it does
# not come up: fail with p2p-lab's output, and finish.
lab_up() {
	T=$(scratch)
	P2P_LAB_DIR=$T/labs
	export P2P_LAB_DIR
	name=$$
	state=$P2P_LAB_DIR/$name
	trap 'lab down >/dev/null 2>&1; rm -rf "$T"' EXIT
	trap 'exit 1' HUP INT TERM
	if ! lab up >"$T/up.log" 2>&1; then
		fail "p2p-lab up"
		sed 's/^/# /' "$T/up.log"
		finish
	fi
}
lab() { p2p-lab -n "$name" "$@"; }
on() { _n=$1; shift; lab exec "$_n" -- "$@"; }

finish() { [ "$_failures" -eq 0 ]; exit $?; }
