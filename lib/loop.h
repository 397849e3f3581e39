/* loop.h: one epoll event loop per daemon, with one-shot timers and signals
 * delivered through signalfd (so handlers run in the loop, not in a signal
 * context). */
#ifndef P2P_LOOP_H
#define P2P_LOOP_H

#include <stdint.h>
#include <sys/epoll.h>

struct loop;
struct loop_timer;

typedef void loop_fd_fn(struct loop *loop, int fd, uint32_t events, void *arg);
typedef void loop_timer_fn(struct loop *loop, void *arg);
typedef void loop_signal_fn(struct loop *loop, int signo, void *arg);

struct loop *loop_new(void);
void loop_free(struct loop *loop);

/* EVENTS are EPOLLIN/EPOLLOUT...; the fd stays owned by the caller. */
int loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_fn *fn, void *arg);
int loop_mod_fd(struct loop *loop, int fd, uint32_t events);
/* Safe to call from any callback, for any fd, before closing it. */
int loop_del_fd(struct loop *loop, int fd);
/* Forget FD (if the loop has it) and close it, without telling epoll first: closing the last
 * descriptor of a file takes it out of epoll, a system call saved for
 * every connection. Only for an fd that was never duplicated (no dup, no
 * fork since it was added), or epoll would go on reporting it. */
int loop_close_fd(struct loop *loop, int fd);

/* One-shot timer; the handle is valid until it fires or is cancelled. */
struct loop_timer *loop_timer_add(struct loop *loop, uint64_t delay_ms,
				  loop_timer_fn *fn, void *arg);
void loop_timer_cancel(struct loop *loop, struct loop_timer *timer);

/* Block SIGNO and deliver it to FN from the loop. */
int loop_add_signal(struct loop *loop, int signo, loop_signal_fn *fn, void *arg);

/* Run until loop_stop; returns 0, or -1 with errno on a system error. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t loop_now_ms(void);

#endif
