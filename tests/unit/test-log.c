/* test: lib */
/* test-log.c: lib/log.c, the one-line-per-event stderr log that s6-log
 * timestamps. What a sysadmin sees: "PROG: level: text", one line per event
 * even when the text holds newlines or is huge, debug only with -vv, and the
 * exit codes of log_fatal and log_usage. stderr is captured by pointing fd 2
 * at a pipe (or at a SOCK_SEQPACKET socket, whose packets are the write(2)
 * calls, to count writes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

#define CAP_MAX 65536
#define PACKETS_MAX 16

struct capture {
	int saved;     /* the real stderr */
	int rfd;
	int packets;   /* SOCK_SEQPACKET: one per write(2) */
	size_t len;
	size_t packet_len[PACKETS_MAX];
	char buf[CAP_MAX + 1];
};

static struct capture cap;

/* Point fd 2 at a pipe, or at a SOCK_SEQPACKET socket when SEQPACKET. No
 * assertion may run between capture_start and capture_end, so that a
 * failure's message reaches the real stderr. */
static void capture_start(int seqpacket)
{
	int p[2];

	memset(&cap, 0, sizeof cap);
	if (seqpacket)
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p), 0);
	else
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fflush(stderr);
	cap.saved = dup(STDERR_FILENO);
	assert_true(cap.saved >= 0);
	assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
	close(p[1]);
	cap.rfd = p[0];
}

/* Restore stderr and read everything that was written (the write end is
 * closed now, so the read ends at EOF). */
static void capture_end(void)
{
	ssize_t n;

	assert_int_equal(dup2(cap.saved, STDERR_FILENO), STDERR_FILENO);
	close(cap.saved);
	while ((n = read(cap.rfd, cap.buf + cap.len, CAP_MAX - cap.len)) > 0) {
		if (cap.packets < PACKETS_MAX)
			cap.packet_len[cap.packets] = (size_t)n;
		cap.packets++;
		cap.len += (size_t)n;
	}
	assert_int_equal(n, 0);
	cap.buf[cap.len] = '\0';
	close(cap.rfd);
}

static size_t count_char(const char *s, size_t len, char c)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += s[i] == c;
	return n;
}

static int setup(void **ctx)
{
	(void)ctx;
	log_init("/usr/local/bin/p2p-test");
	log_set_verbosity(0);
	return 0;
}

static void test_prog_is_basename(void **ctx)
{
	(void)ctx;
	assert_string_equal(log_prog(), "p2p-test");
	log_init("p2p-other");
	assert_string_equal(log_prog(), "p2p-other");
	log_init("/usr/local/bin/p2p-test");
}

static void test_exact_format(void **ctx)
{
	(void)ctx;
	capture_start(0);
	log_error("unable to bind %s: %s", "/run/p2p/mapd.sock", "Address already in use");
	log_warning("map version %d kept", 7);
	capture_end();
	assert_string_equal(cap.buf,
			    "p2p-test: error: unable to bind /run/p2p/mapd.sock: Address already in use\n"
			    "p2p-test: warning: map version 7 kept\n");
}

static void test_one_write_per_line(void **ctx)
{
	(void)ctx;
	capture_start(1);
	log_error("first %s", "event");
	log_warning("second");
	log_error("%s", "");
	capture_end();
	assert_int_equal(cap.packets, 3);
	assert_int_equal(cap.packet_len[0], strlen("p2p-test: error: first event\n"));
	assert_int_equal(cap.packet_len[1], strlen("p2p-test: warning: second\n"));
	assert_int_equal(cap.packet_len[2], strlen("p2p-test: error: \n"));
	assert_string_equal(cap.buf, "p2p-test: error: first event\n"
				     "p2p-test: warning: second\n"
				     "p2p-test: error: \n");
}

static void test_newlines_folded(void **ctx)
{
	(void)ctx;
	capture_start(1);
	log_error("peer said: %s", "line one\nline two\r\nline three\n");
	capture_end();
	assert_int_equal(cap.packets, 1);
	assert_string_equal(cap.buf, "p2p-test: error: peer said: line one line two  line three \n");
}

static void test_verbosity_gating(void **ctx)
{
	(void)ctx;
	/* Default: warnings and errors only. */
	assert_true(log_enabled(LOG_ERROR));
	assert_true(log_enabled(LOG_WARNING));
	assert_false(log_enabled(LOG_INFO));
	assert_false(log_enabled(LOG_DEBUG));
	capture_start(0);
	log_debug("hidden debug");
	log_info("hidden info");
	log_warning("shown");
	capture_end();
	assert_string_equal(cap.buf, "p2p-test: warning: shown\n");

	log_set_verbosity(1);
	capture_start(0);
	log_debug("hidden debug");
	log_info("reloaded");
	capture_end();
	assert_string_equal(cap.buf, "p2p-test: info: reloaded\n");

	log_set_verbosity(2);
	assert_true(log_enabled(LOG_DEBUG));
	capture_start(0);
	log_debug("conn %d", 3);
	log_info("reloaded");
	capture_end();
	log_set_verbosity(0);
	assert_string_equal(cap.buf, "p2p-test: debug: conn 3\np2p-test: info: reloaded\n");
}

static void test_ordinary_long_message_intact(void **ctx)
{
	char msg[1501], want[1600];

	(void)ctx;
	memset(msg, 'm', sizeof msg - 1);
	msg[sizeof msg - 1] = '\0';
	snprintf(want, sizeof want, "p2p-test: error: %s\n", msg);
	capture_start(1);
	log_error("%s", msg);
	capture_end();
	assert_int_equal(cap.packets, 1);
	assert_string_equal(cap.buf, want);
}

static void test_huge_message_truncated_one_line(void **ctx)
{
	static char msg[20001];

	(void)ctx;
	memset(msg, 'x', sizeof msg - 1);
	msg[3000] = '\n';   /* past the cut: must not matter */
	msg[sizeof msg - 1] = '\0';
	capture_start(1);
	log_error("%s", msg);
	log_error("after");
	capture_end();
	assert_int_equal(cap.packets, 2);
	/* The first packet: the prefix, x's, one newline at its very end. */
	assert_true(cap.packet_len[0] > 1000);
	assert_true(cap.packet_len[0] < 4096);
	assert_int_equal(count_char(cap.buf, cap.packet_len[0], '\n'), 1);
	assert_int_equal(cap.buf[cap.packet_len[0] - 1], '\n');
	assert_memory_equal(cap.buf, "p2p-test: error: xxxx", 21);
	assert_int_equal(count_char(cap.buf, cap.packet_len[0], 'x'),
			 cap.packet_len[0] - strlen("p2p-test: error: \n"));
	/* The next event is still a line of its own. */
	assert_string_equal(cap.buf + cap.packet_len[0], "p2p-test: error: after\n");
}

static void test_errno_preserved(void **ctx)
{
	(void)ctx;
	capture_start(0);
	errno = EACCES;
	log_error("cannot open %s", "x");
	int e1 = errno;
	errno = ENOENT;
	log_debug("gated off");
	int e2 = errno;
	capture_end();
	assert_int_equal(e1, EACCES);
	assert_int_equal(e2, ENOENT);
}

/* Run FN in a child whose stderr is a pipe; return its stderr and status. */
static int child_output(void (*fn)(void), char *out, size_t size)
{
	int p[2], status;
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		close(p[1]);
		fn();
		_exit(99); /* not reached */
	}
	close(p[1]);
	while (len < size - 1 && (n = read(p[0], out + len, size - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void die_fatal(void)
{
	log_init("p2p-x");
	log_fatal(EXIT_SYSTEM, "unable to create %s: %s", "/run/p2p", "Permission denied");
}

static void die_usage(void)
{
	log_init("p2p-x");
	log_usage("p2p-x [-v] -f map.json");
}

static void test_fatal_exits_with_code(void **ctx)
{
	char out[512];
	int status = child_output(die_fatal, out, sizeof out);

	(void)ctx;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 111);
	assert_string_equal(out, "p2p-x: fatal: unable to create /run/p2p: Permission denied\n");
}

static void test_usage_exits_100(void **ctx)
{
	char out[512];
	int status = child_output(die_usage, out, sizeof out);

	(void)ctx;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 100);
	assert_string_equal(out, "p2p-x: usage: p2p-x [-v] -f map.json\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_prog_is_basename, setup),
		cmocka_unit_test_setup(test_exact_format, setup),
		cmocka_unit_test_setup(test_one_write_per_line, setup),
		cmocka_unit_test_setup(test_newlines_folded, setup),
		cmocka_unit_test_setup(test_verbosity_gating, setup),
		cmocka_unit_test_setup(test_ordinary_long_message_intact, setup),
		cmocka_unit_test_setup(test_huge_message_truncated_one_line, setup),
		cmocka_unit_test_setup(test_errno_preserved, setup),
		cmocka_unit_test_setup(test_fatal_exits_with_code, setup),
		cmocka_unit_test_setup(test_usage_exits_100, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
