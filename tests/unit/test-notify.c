/* test: lib */
/* test-notify.c: lib/notify.c, s6's readiness notification. "-d FD" must
 * name an open descriptor above 2 (never stdin/stdout/stderr), and readiness
 * is exactly one newline, after which the fd is closed so that the
 * supervisor sees EOF and readiness only once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "notify.h"

static void test_parse_rejects_std_fds(void **ctx)
{
	(void)ctx;
	/* Open, and still refused. */
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0)
			assert_int_equal(open("/dev/null", O_RDWR), fd);
	assert_int_equal(notify_parse_fd("0"), -1);
	assert_int_equal(notify_parse_fd("1"), -1);
	assert_int_equal(notify_parse_fd("2"), -1);
}

static void test_parse_rejects_garbage(void **ctx)
{
	static const char *const bad[] = {
		"", "abc", "3x", "x3", "-1", "-3", "3.0", "0x3", "3 ",
		"99999999999999999999", "2147483648",
	};
	int p[2];

	(void)ctx;
	/* Make sure fd 3 is open, so "3x" is refused for its text only. */
	assert_int_equal(pipe(p), 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (notify_parse_fd(bad[i]) != -1)
			fail_msg("notify_parse_fd(\"%s\") accepted", bad[i]);
	close(p[0]);
	close(p[1]);
}

static void test_parse_rejects_closed_fd(void **ctx)
{
	char arg[16];
	int p[2];

	(void)ctx;
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	close(p[1]);
	snprintf(arg, sizeof arg, "%d", p[1]);
	assert_int_equal(notify_parse_fd(arg), -1);
}

static void test_parse_accepts_open_fd_and_sets_cloexec(void **ctx)
{
	char arg[16];
	int p[2];

	(void)ctx;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(fcntl(p[1], F_GETFD) & FD_CLOEXEC, 0);
	snprintf(arg, sizeof arg, "%d", p[1]);
	assert_int_equal(notify_parse_fd(arg), p[1]);
	/* Helpers the daemon execs must not hold the supervisor's pipe open. */
	assert_int_equal(fcntl(p[1], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(p[0]);
	close(p[1]);
}

static void test_ready_writes_one_newline_and_closes(void **ctx)
{
	char buf[16];
	int p[2];

	(void)ctx;
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);   /* a broken notify_ready fails, not hangs */
	assert_int_equal(notify_ready(p[1]), 0);
	assert_int_equal(read(p[0], buf, sizeof buf), 1);
	assert_int_equal(buf[0], '\n');
	/* EOF: the only write end is closed, so the supervisor's read ends. */
	assert_int_equal(read(p[0], buf, sizeof buf), 0);
	errno = 0;
	assert_int_equal(fcntl(p[1], F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	close(p[0]);
}

static void test_ready_without_fd_is_noop(void **ctx)
{
	(void)ctx;
	assert_int_equal(notify_ready(-1), 0);
}

static void test_ready_reader_gone_fails_and_closes(void **ctx)
{
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	int p[2], rc;

	(void)ctx;
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	rc = notify_ready(p[1]);
	signal(SIGPIPE, old);
	assert_int_equal(rc, -1);
	errno = 0;
	assert_int_equal(fcntl(p[1], F_GETFD), -1);
	assert_int_equal(errno, EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_rejects_std_fds),
		cmocka_unit_test(test_parse_rejects_garbage),
		cmocka_unit_test(test_parse_rejects_closed_fd),
		cmocka_unit_test(test_parse_accepts_open_fd_and_sets_cloexec),
		cmocka_unit_test(test_ready_writes_one_newline_and_closes),
		cmocka_unit_test(test_ready_without_fd_is_noop),
		cmocka_unit_test(test_ready_reader_gone_fails_and_closes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
