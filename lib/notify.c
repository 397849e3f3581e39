/* notify.c: tell the supervisor we serve: one newline, then close the fd so
 * that s6-supervise sees the readiness exactly once. */
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

int notify_parse_fd(const char *arg)
{
	char *end;
	long fd;

	errno = 0;
	fd = strtol(arg, &end, 10);
	if (errno || *arg == '\0' || *end != '\0' || fd < 3 || fd > INT_MAX)
		return -1;
	if (fcntl((int)fd, F_GETFD) < 0)
		return -1;
	/* Children (helpers we exec) must not inherit the supervisor's pipe. */
	(void)fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	return (int)fd;
}

int notify_ready(int fd)
{
	ssize_t n;

	if (fd < 0)
		return 0;
	do
		n = write(fd, "\n", 1);
	while (n < 0 && errno == EINTR);
	if (close(fd) < 0 || n != 1)
		return -1;
	return 0;
}
