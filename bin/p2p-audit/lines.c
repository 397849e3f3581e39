/* lines.c: a chain file read line by line with a bounded buffer. The file
 * may be growing (the forwarder reads behind the writer): an unfinished
 * line at the end is kept and completed by a later read. */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Room for one whole line and one read's worth after it. */
#define LINES_BUF (2 * AUDIT_LINE_MAX)

int lines_open_fd(struct lines *r, int fd)
{
	memset(r, 0, sizeof *r);
	r->fd = fd;
	r->buf = malloc(LINES_BUF);
	if (!r->buf)
		return -1;
	return 0;
}

int lines_open(struct lines *r, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (lines_open_fd(r, fd) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	r->owns_fd = 1;
	return 0;
}

void lines_close(struct lines *r)
{
	if (r->owns_fd && r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->buf);
	r->buf = NULL;
}

size_t lines_partial(const struct lines *r)
{
	return r->end - r->start;
}

int lines_next(struct lines *r, const char **line, size_t *len)
{
	for (;;) {
		char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
		ssize_t n;

		if (nl) {
			size_t l = (size_t)(nl - (r->buf + r->start));

			if (l + 1 > AUDIT_LINE_MAX) {
				errno = EMSGSIZE;
				return LINES_LONG;
			}
			*line = r->buf + r->start;
			*len = l;
			r->start += l + 1;
			r->offset += l + 1;
			r->lineno++;
			return LINES_LINE;
		}
		if (r->end - r->start >= AUDIT_LINE_MAX) {
			errno = EMSGSIZE;
			return LINES_LONG;
		}
		if (r->start) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		}
		n = read(r->fd, r->buf + r->end, LINES_BUF - r->end);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return LINES_ERROR;
		}
		if (n == 0)
			return LINES_END;
		r->end += (size_t)n;
	}
}
