/* loop.c: the event loop. Handlers are kept in a table indexed by fd with a
 * generation number carried in the epoll data, so that a handler removed (and
 * its fd perhaps reused) by an earlier callback in the same batch is never
 * called with a stale event. */
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

struct handler {
	loop_fd_fn *fn;
	void *arg;
	uint32_t gen;
	int used;
};

struct loop_timer {
	uint64_t due;
	loop_timer_fn *fn;
	void *arg;
	struct loop_timer *next;
};

struct signal_handler {
	loop_signal_fn *fn;
	void *arg;
};

struct loop {
	int epfd;
	int sigfd;
	sigset_t sigmask;
	struct handler *handlers;
	size_t nhandlers;
	uint32_t next_gen;
	struct loop_timer *timers; /* sorted by due time */
	struct signal_handler signals[_NSIG];
	int stopped;
};

uint64_t loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct loop *loop_new(void)
{
	struct loop *loop = calloc(1, sizeof *loop);

	if (!loop)
		return NULL;
	loop->sigfd = -1;
	sigemptyset(&loop->sigmask);
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	return loop;
}

void loop_free(struct loop *loop)
{
	struct loop_timer *t, *next;

	if (!loop)
		return;
	for (t = loop->timers; t; t = next) {
		next = t->next;
		free(t);
	}
	if (loop->sigfd >= 0) {
		close(loop->sigfd);
		sigprocmask(SIG_UNBLOCK, &loop->sigmask, NULL);
	}
	close(loop->epfd);
	free(loop->handlers);
	free(loop);
}

static int reserve_handler(struct loop *loop, int fd)
{
	size_t n;
	struct handler *h;

	if ((size_t)fd < loop->nhandlers)
		return 0;
	n = loop->nhandlers ? loop->nhandlers : 64;
	while (n <= (size_t)fd)
		n *= 2;
	h = realloc(loop->handlers, n * sizeof *h);
	if (!h)
		return -1;
	memset(h + loop->nhandlers, 0, (n - loop->nhandlers) * sizeof *h);
	loop->handlers = h;
	loop->nhandlers = n;
	return 0;
}

static uint64_t event_data(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

int loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_fn *fn, void *arg)
{
	struct epoll_event ev = { .events = events };
	struct handler *h;

	if (fd < 0 || reserve_handler(loop, fd) < 0) {
		errno = fd < 0 ? EBADF : ENOMEM;
		return -1;
	}
	h = &loop->handlers[fd];
	/* The generation changes only once epoll took the fd: adding an fd
	 * twice fails without breaking the first registration. */
	ev.data.u64 = event_data(fd, loop->next_gen + 1);
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -1;
	h->gen = ++loop->next_gen;
	h->fn = fn;
	h->arg = arg;
	h->used = 1;
	return 0;
}

int loop_mod_fd(struct loop *loop, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events };

	if (fd < 0 || (size_t)fd >= loop->nhandlers || !loop->handlers[fd].used) {
		errno = EBADF;
		return -1;
	}
	ev.data.u64 = event_data(fd, loop->handlers[fd].gen);
	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev);
}

int loop_del_fd(struct loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->nhandlers || !loop->handlers[fd].used) {
		errno = EBADF;
		return -1;
	}
	loop->handlers[fd].used = 0;
	loop->handlers[fd].gen = 0;
	return epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
}

int loop_close_fd(struct loop *loop, int fd)
{
	if (fd >= 0 && (size_t)fd < loop->nhandlers) {
		loop->handlers[fd].used = 0;
		loop->handlers[fd].gen = 0;
	}
	return close(fd);
}

struct loop_timer *loop_timer_add(struct loop *loop, uint64_t delay_ms,
				  loop_timer_fn *fn, void *arg)
{
	struct loop_timer *t = calloc(1, sizeof *t), **pp;

	if (!t)
		return NULL;
	t->due = loop_now_ms() + delay_ms;
	t->fn = fn;
	t->arg = arg;
	/* Equal due times keep their insertion order. */
	for (pp = &loop->timers; *pp && (*pp)->due <= t->due; pp = &(*pp)->next)
		;
	t->next = *pp;
	*pp = t;
	return t;
}

void loop_timer_cancel(struct loop *loop, struct loop_timer *timer)
{
	struct loop_timer **pp;

	for (pp = &loop->timers; *pp; pp = &(*pp)->next)
		if (*pp == timer) {
			*pp = timer->next;
			free(timer);
			return;
		}
}

static void read_signals(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;

	(void)events;
	(void)arg;
	while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
		struct signal_handler *s;

		if (si.ssi_signo >= _NSIG)
			continue;
		s = &loop->signals[si.ssi_signo];
		if (s->fn)
			s->fn(loop, (int)si.ssi_signo, s->arg);
	}
}

int loop_add_signal(struct loop *loop, int signo, loop_signal_fn *fn, void *arg)
{
	int fd;

	if (signo <= 0 || signo >= _NSIG) {
		errno = EINVAL;
		return -1;
	}
	sigaddset(&loop->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &loop->sigmask, NULL) < 0)
		return -1;
	fd = signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (loop->sigfd < 0) {
		loop->sigfd = fd;
		if (loop_add_fd(loop, fd, EPOLLIN, read_signals, NULL) < 0)
			return -1;
	}
	loop->signals[signo].fn = fn;
	loop->signals[signo].arg = arg;
	return 0;
}

static int next_timeout(struct loop *loop)
{
	uint64_t now;

	if (!loop->timers)
		return -1;
	now = loop_now_ms();
	if (loop->timers->due <= now)
		return 0;
	if (loop->timers->due - now > 60000)
		return 60000;
	return (int)(loop->timers->due - now);
}

static void run_due_timers(struct loop *loop)
{
	uint64_t now = loop_now_ms();

	/* Unlink before calling, so the callback may add or cancel timers. */
	while (loop->timers && loop->timers->due <= now && !loop->stopped) {
		struct loop_timer *t = loop->timers;

		loop->timers = t->next;
		t->fn(loop, t->arg);
		free(t);
	}
}

int loop_run(struct loop *loop)
{
	struct epoll_event events[64];

	loop->stopped = 0;
	while (!loop->stopped) {
		int n = epoll_wait(loop->epfd, events, 64, next_timeout(loop));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (int i = 0; i < n && !loop->stopped; i++) {
			int fd = (int)(uint32_t)events[i].data.u64;
			uint32_t gen = (uint32_t)(events[i].data.u64 >> 32);
			struct handler *h;

			if ((size_t)fd >= loop->nhandlers)
				continue;
			h = &loop->handlers[fd];
			if (!h->used || h->gen != gen)
				continue; /* removed by an earlier callback */
			h->fn(loop, fd, events[i].events, h->arg);
		}
		run_due_timers(loop);
	}
	return 0;
}

void loop_stop(struct loop *loop)
{
	loop->stopped = 1;
}
