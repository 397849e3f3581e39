/* test: lib */
/* test-loop.c: lib/loop.c, the epoll loop every daemon runs in. Callbacks
 * for ready fds, one-shot timers in due order (cancellable, addable from a
 * callback), signals delivered as ordinary callbacks through signalfd, and
 * no callback for a handler an earlier callback removed in the same batch
 * (a stale event on a reused fd number would hand one connection's input to
 * another). Every loop_run here has a guard timer, so a broken loop fails the
 * test instead of hanging it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

#define GUARD_MS 2000

struct rec {
	int calls;
	int fd;
	uint32_t events;
	int order[16];
	int n;
	int stop;           /* loop_stop from the callback */
	uint64_t at[16];    /* loop_now_ms() at each call */
};

static int guard_fired;

static void on_guard(struct loop *loop, void *arg)
{
	(void)arg;
	guard_fired = 1;
	loop_stop(loop);
}

/* Run LOOP until something stops it, or fail after GUARD_MS. */
static void run(struct loop *loop)
{
	struct loop_timer *guard;

	guard_fired = 0;
	guard = loop_timer_add(loop, GUARD_MS, on_guard, NULL);
	assert_non_null(guard);
	assert_int_equal(loop_run(loop), 0);
	if (guard_fired)
		fail_msg("the loop did not stop within %d ms", GUARD_MS);
	loop_timer_cancel(loop, guard);
}

static void on_stop(struct loop *loop, void *arg)
{
	(void)arg;
	loop_stop(loop);
}

/* Run LOOP for MS milliseconds. */
static void run_for(struct loop *loop, uint64_t ms)
{
	assert_non_null(loop_timer_add(loop, ms, on_stop, NULL));
	run(loop);
}

static void on_fd(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct rec *r = arg;
	char buf[64];

	r->calls++;
	r->fd = fd;
	r->events = events;
	if (events & EPOLLIN)
		(void)!read(fd, buf, sizeof buf);
	if (r->stop)
		loop_stop(loop);
}

static void test_fd_readable(void **ctx)
{
	struct loop *loop = loop_new();
	struct rec r = { .stop = 1 };
	int p[2];

	(void)ctx;
	assert_non_null(loop);
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(loop_add_fd(loop, p[0], EPOLLIN, on_fd, &r), 0);
	/* Nothing to read: no callback. */
	run_for(loop, 30);
	assert_int_equal(r.calls, 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	run(loop);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.fd, p[0]);
	assert_true(r.events & EPOLLIN);
	loop_free(loop);
	close(p[0]);
	close(p[1]);
}

static void test_fd_mod_and_del(void **ctx)
{
	struct loop *loop = loop_new();
	struct rec r = { .stop = 1 };
	int p[2];

	(void)ctx;
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	/* The write end of an empty pipe is writable: EPOLLOUT after mod. */
	assert_int_equal(loop_add_fd(loop, p[1], 0, on_fd, &r), 0);
	run_for(loop, 30);
	assert_int_equal(r.calls, 0);
	assert_int_equal(loop_mod_fd(loop, p[1], EPOLLOUT), 0);
	run(loop);
	assert_int_equal(r.calls, 1);
	assert_true(r.events & EPOLLOUT);
	/* After loop_del_fd, readiness no longer calls it. */
	assert_int_equal(loop_del_fd(loop, p[1]), 0);
	r.stop = 0;
	run_for(loop, 30);
	assert_int_equal(r.calls, 1);
	/* Errors for fds the loop does not know. */
	errno = 0;
	assert_int_equal(loop_del_fd(loop, p[1]), -1);
	assert_int_equal(errno, EBADF);
	errno = 0;
	assert_int_equal(loop_mod_fd(loop, p[0], EPOLLIN), -1);
	assert_int_equal(errno, EBADF);
	errno = 0;
	assert_int_equal(loop_add_fd(loop, -1, EPOLLIN, on_fd, &r), -1);
	assert_int_equal(errno, EBADF);
	loop_free(loop);
	close(p[0]);
	close(p[1]);
}

/* Two readable pipes in one batch: whichever callback runs first removes
 * the other handler (and, in the reuse variant, closes its fd and registers
 * a different handler on the same fd number, not readable). The removed
 * handler's queued event must be dropped. */
struct pair {
	struct loop *loop;
	int fds[2];
	int calls[2];
	int reuse;
	int other_pipe[2];  /* the new fd is dup2'ed onto the old number */
	int new_calls;
};

static void on_new(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct pair *p = arg;

	(void)loop;
	(void)fd;
	(void)events;
	p->new_calls++;
}

static void on_pair(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct pair *p = arg;
	int me = fd == p->fds[0] ? 0 : 1, other = p->fds[!me];
	char buf[8];

	(void)events;
	(void)!read(fd, buf, sizeof buf);
	p->calls[me]++;
	if (p->calls[0] + p->calls[1] > 1)
		return;
	assert_int_equal(loop_del_fd(loop, other), 0);
	if (p->reuse) {
		/* The other fd number now names a quiet pipe with a new handler. */
		assert_int_equal(dup2(p->other_pipe[0], other), other);
		assert_int_equal(loop_add_fd(loop, other, EPOLLIN, on_new, p), 0);
	}
}

static void check_deleted_in_batch(int reuse)
{
	struct pair p = { .reuse = reuse };
	int a[2], b[2];

	p.loop = loop_new();
	assert_non_null(p.loop);
	assert_int_equal(pipe2(a, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(pipe2(b, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(pipe2(p.other_pipe, O_NONBLOCK | O_CLOEXEC), 0);
	p.fds[0] = a[0];
	p.fds[1] = b[0];
	assert_int_equal(loop_add_fd(p.loop, a[0], EPOLLIN, on_pair, &p), 0);
	assert_int_equal(loop_add_fd(p.loop, b[0], EPOLLIN, on_pair, &p), 0);
	/* Both readable before the loop runs: one epoll_wait returns both. */
	assert_int_equal(write(a[1], "x", 1), 1);
	assert_int_equal(write(b[1], "x", 1), 1);
	run_for(p.loop, 50);
	assert_int_equal(p.calls[0] + p.calls[1], 1);
	assert_int_equal(p.new_calls, 0);
	if (reuse) {
		/* The new handler works once its fd is readable. */
		assert_int_equal(write(p.other_pipe[1], "y", 1), 1);
		run_for(p.loop, 50);
		assert_true(p.new_calls >= 1);
	}
	loop_free(p.loop);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	close(p.other_pipe[0]);
	close(p.other_pipe[1]);
}

static void test_deleted_in_batch_not_called(void **ctx)
{
	(void)ctx;
	check_deleted_in_batch(0);
}

static void test_deleted_and_reused_fd_not_called(void **ctx)
{
	(void)ctx;
	check_deleted_in_batch(1);
}

/* loop_close_fd: the fd is closed and forgotten (its number, reused by the
 * next pipe, is taken again and called for that pipe only; the loop
 * refuses a number it still has), and one the loop never had is closed
 * all the same. */
static void test_close_fd(void **ctx)
{
	struct loop *loop = loop_new();
	struct rec r = { 0 }, r2 = { .stop = 1 };
	int p[2], q[2], fd;

	(void)ctx;
	assert_non_null(loop);
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	fd = p[0];
	assert_int_equal(loop_add_fd(loop, fd, EPOLLIN, on_fd, &r), 0);
	assert_int_equal(loop_close_fd(loop, fd), 0);
	errno = 0;
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	run_for(loop, 30);
	assert_int_equal(r.calls, 0);
	assert_int_equal(pipe2(q, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(q[0], fd);   /* the lowest free number: the one closed */
	assert_int_equal(loop_add_fd(loop, q[0], EPOLLIN, on_fd, &r2), 0);
	assert_int_equal(write(q[1], "y", 1), 1);
	run(loop);
	assert_int_equal(r2.calls, 1);
	assert_int_equal(r.calls, 0);
	assert_int_equal(loop_close_fd(loop, q[1]), 0);   /* never in the loop */
	errno = 0;
	assert_int_equal(fcntl(q[1], F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(loop_close_fd(loop, q[0]), 0);
	loop_free(loop);
	close(p[1]);
}

/* A timer's argument: the record to append the tag to. */
struct tick {
	struct rec *r;
	int tag;
};

static void on_timer(struct loop *loop, void *arg)
{
	struct tick *t = arg;

	(void)loop;
	t->r->order[t->r->n] = t->tag;
	t->r->at[t->r->n] = loop_now_ms();
	t->r->n++;
}

static void test_timers_fire_in_order(void **ctx)
{
	struct loop *loop = loop_new();
	struct rec r = { 0 };
	struct tick t[6] = { { &r, 0 }, { &r, 1 }, { &r, 2 }, { &r, 3 }, { &r, 4 }, { &r, 5 } };
	uint64_t start = loop_now_ms();

	(void)ctx;
	assert_non_null(loop_timer_add(loop, 63, on_timer, &t[5])); /* due just after 4 */
	assert_non_null(loop_timer_add(loop, 60, on_timer, &t[4]));
	assert_non_null(loop_timer_add(loop, 20, on_timer, &t[1]));
	assert_non_null(loop_timer_add(loop, 40, on_timer, &t[3]));
	assert_non_null(loop_timer_add(loop, 20, on_timer, &t[2])); /* same time: after 1 */
	assert_non_null(loop_timer_add(loop, 0, on_timer, &t[0]));
	run_for(loop, 100);
	assert_int_equal(r.n, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(r.order[i], i);
	/* Never early, not even when woken for the timer just before. */
	assert_true(r.at[1] >= start + 20);
	assert_true(r.at[3] >= start + 40);
	assert_true(r.at[4] >= start + 60);
	assert_true(r.at[5] >= start + 63);
	loop_free(loop);
}

static void test_timer_cancel(void **ctx)
{
	struct loop *loop = loop_new();
	struct rec r = { 0 };
	struct tick one = { &r, 1 }, two = { &r, 2 }, three = { &r, 3 };
	struct loop_timer *t;

	(void)ctx;
	t = loop_timer_add(loop, 10, on_timer, &one);
	assert_non_null(loop_timer_add(loop, 20, on_timer, &two));
	assert_non_null(t);
	loop_timer_cancel(loop, t);
	run_for(loop, 60);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.order[0], 2);
	/* Pending timers are freed with the loop (the sanitizer build checks). */
	assert_non_null(loop_timer_add(loop, 100000, on_timer, &three));
	loop_free(loop);
}

struct chain {
	struct loop_timer *victim;
	int fired_first, fired_added, fired_victim;
	uint64_t first_at, added_at;
};

static void on_added(struct loop *loop, void *arg)
{
	struct chain *c = arg;

	c->fired_added++;
	c->added_at = loop_now_ms();
	loop_stop(loop);
}

static void on_victim(struct loop *loop, void *arg)
{
	struct chain *c = arg;

	(void)loop;
	c->fired_victim++;
}

static void on_first(struct loop *loop, void *arg)
{
	struct chain *c = arg;

	c->fired_first++;
	c->first_at = loop_now_ms();
	/* From a timer callback: cancel a pending timer, add a new one. */
	loop_timer_cancel(loop, c->victim);
	assert_non_null(loop_timer_add(loop, 20, on_added, c));
}

static void test_timer_added_and_cancelled_from_callback(void **ctx)
{
	struct loop *loop = loop_new();
	struct chain c = { 0 };

	(void)ctx;
	assert_non_null(loop_timer_add(loop, 5, on_first, &c));
	c.victim = loop_timer_add(loop, 15, on_victim, &c);
	assert_non_null(c.victim);
	run(loop);
	assert_int_equal(c.fired_first, 1);
	assert_int_equal(c.fired_added, 1);
	assert_int_equal(c.fired_victim, 0);
	assert_true(c.added_at >= c.first_at + 20);
	loop_free(loop);
}

static void on_zero(struct loop *loop, void *arg)
{
	int *n = arg;

	if (++*n < 3)
		assert_non_null(loop_timer_add(loop, 0, on_zero, n));
	else
		loop_stop(loop);
}

static void test_zero_delay_timer_from_callback(void **ctx)
{
	struct loop *loop = loop_new();
	int n = 0;

	(void)ctx;
	assert_non_null(loop_timer_add(loop, 0, on_zero, &n));
	run(loop);
	assert_int_equal(n, 3);
	loop_free(loop);
}

struct sigrec {
	int signo[8];
	int n;
	int stop_after;
};

static void on_signal(struct loop *loop, int signo, void *arg)
{
	struct sigrec *s = arg;

	if (s->n < 8)
		s->signo[s->n] = signo;
	if (++s->n >= s->stop_after)
		loop_stop(loop);
}

static void test_signals_through_signalfd(void **ctx)
{
	struct loop *loop = loop_new();
	struct sigrec s1 = { .stop_after = 1 }, s2 = { .stop_after = 1 };
	sigset_t blocked;

	(void)ctx;
	assert_int_equal(loop_add_signal(loop, SIGUSR1, on_signal, &s1), 0);
	assert_int_equal(loop_add_signal(loop, SIGUSR2, on_signal, &s2), 0);
	/* Blocked now, so a raise() cannot kill us; it waits for the loop. */
	assert_int_equal(sigprocmask(SIG_BLOCK, NULL, &blocked), 0);
	assert_true(sigismember(&blocked, SIGUSR1));
	assert_true(sigismember(&blocked, SIGUSR2));
	assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(s1.n, 0);   /* not from a signal context */
	run(loop);
	assert_int_equal(s1.n, 1);
	assert_int_equal(s1.signo[0], SIGUSR1);
	assert_int_equal(s2.n, 0);
	/* The second signal has its own handler. */
	assert_int_equal(kill(getpid(), SIGUSR2), 0);
	run(loop);
	assert_int_equal(s2.n, 1);
	assert_int_equal(s2.signo[0], SIGUSR2);
	assert_int_equal(s1.n, 1);
	loop_free(loop);
	/* loop_free gives the signals back. */
	assert_int_equal(sigprocmask(SIG_BLOCK, NULL, &blocked), 0);
	assert_false(sigismember(&blocked, SIGUSR1));
	assert_false(sigismember(&blocked, SIGUSR2));
}

static void test_add_signal_rejects_bad_numbers(void **ctx)
{
	struct loop *loop = loop_new();
	struct sigrec s = { .stop_after = 1 };

	(void)ctx;
	errno = 0;
	assert_int_equal(loop_add_signal(loop, 0, on_signal, &s), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(loop_add_signal(loop, _NSIG, on_signal, &s), -1);
	assert_int_equal(errno, EINVAL);
	loop_free(loop);
}

static void test_stop_from_fd_callback(void **ctx)
{
	struct loop *loop = loop_new();
	struct rec r = { .stop = 1 }, t = { 0 };
	struct tick later = { &t, 1 };
	int p[2];

	(void)ctx;
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(loop_add_fd(loop, p[0], EPOLLIN, on_fd, &r), 0);
	assert_non_null(loop_timer_add(loop, 200, on_timer, &later));
	assert_int_equal(write(p[1], "x", 1), 1);
	/* loop_run returns after the callback's loop_stop, before the timer. */
	run(loop);
	assert_int_equal(r.calls, 1);
	assert_int_equal(t.n, 0);
	/* The loop can be run again; what is pending still happens. */
	run_for(loop, 300);
	assert_int_equal(t.n, 1);
	loop_free(loop);
	close(p[0]);
	close(p[1]);
}

static void test_now_is_monotonic_ms(void **ctx)
{
	struct timespec ts = { 0, 30 * 1000000 };
	uint64_t a, b;

	(void)ctx;
	a = loop_now_ms();
	nanosleep(&ts, NULL);
	b = loop_now_ms();
	assert_true(b >= a + 30);
	assert_true(b < a + 5000);
}

/* Adding an fd a second time fails, and the first handler still works. */
static void test_second_add_keeps_the_first(void **ctx)
{
	struct loop *loop = loop_new();
	struct rec first = { 0 }, second = { 0 };
	int p[2];

	(void)ctx;
	assert_non_null(loop);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(loop_add_fd(loop, p[0], EPOLLIN, on_fd, &first), 0);
	assert_int_equal(loop_add_fd(loop, p[0], EPOLLIN, on_fd, &second), -1);
	assert_int_equal(errno, EEXIST);
	first.stop = 1;
	assert_int_equal(write(p[1], "x", 1), 1);
	run(loop);
	assert_int_equal(first.calls, 1);
	assert_int_equal(second.calls, 0);
	loop_del_fd(loop, p[0]);
	close(p[0]);
	close(p[1]);
	loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fd_readable),
		cmocka_unit_test(test_fd_mod_and_del),
		cmocka_unit_test(test_deleted_in_batch_not_called),
		cmocka_unit_test(test_deleted_and_reused_fd_not_called),
		cmocka_unit_test(test_close_fd),
		cmocka_unit_test(test_timers_fire_in_order),
		cmocka_unit_test(test_timer_cancel),
		cmocka_unit_test(test_timer_added_and_cancelled_from_callback),
		cmocka_unit_test(test_zero_delay_timer_from_callback),
		cmocka_unit_test(test_signals_through_signalfd),
		cmocka_unit_test(test_add_signal_rejects_bad_numbers),
		cmocka_unit_test(test_stop_from_fd_callback),
		cmocka_unit_test(test_now_is_monotonic_ms),
		cmocka_unit_test(test_second_add_keeps_the_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
