/* notify.h: readiness over a notification fd (s6's notification-fd). */
#ifndef P2P_NOTIFY_H
#define P2P_NOTIFY_H

/* Parse the argument of -d; returns the fd or -1 if it is not an open fd > 2. */
int notify_parse_fd(const char *arg);
/* Write one newline to FD and close it; FD < 0 is a no-op. Returns 0 or -1. */
int notify_ready(int fd);

#endif
