/* buf.c: a fixed-capacity byte buffer. Every buffer of a connection is
 * bounded: when one is full the side filling it stops reading, which is
 * how back-pressure reaches the sender. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"
#include "tlsterm.h"

/* Buffers of a few sizes (the exchanges', a client's input and output)
 * are kept for the next user: otherwise every request takes two or more
 * trips through malloc, which showed in the profile, and an idle
 * connection can give its buffers back. */
#define POOL_CLASSES 4
#define POOL_MAX 256
static struct {
	size_t size, n;
	char *free[POOL_MAX];
} pools[POOL_CLASSES];

void buf_pool_size(size_t size)
{
	for (int i = 0; i < POOL_CLASSES; i++)
		if (pools[i].size == size || pools[i].size == 0) {
			pools[i].size = size;
			return;
		}
}

static int pool_of(size_t size)
{
	for (int i = 0; i < POOL_CLASSES; i++)
		if (pools[i].size == size)
			return i;
	return -1;
}

int buf_init(struct buf *b, size_t cap)
{
	int p = pool_of(cap);

	b->start = b->end = 0;
	b->cap = cap;
	b->failed = 0;
	b->data = p >= 0 && pools[p].n ? pools[p].free[--pools[p].n] : malloc(cap);
	return b->data ? 0 : -1;
}

void buf_free(struct buf *b)
{
	int p = b->data ? pool_of(b->cap) : -1;

	if (p >= 0 && pools[p].n < POOL_MAX)
		pools[p].free[pools[p].n++] = b->data;
	else
		free(b->data);
	b->data = NULL;
	b->start = b->end = b->cap = 0;
}

void buf_pool_drain(void)
{
	for (int i = 0; i < POOL_CLASSES; i++)
		while (pools[i].n)
			free(pools[i].free[--pools[i].n]);
}

size_t buf_space(struct buf *b)
{
	if (b->start == b->end) {
		b->start = b->end = 0;
	} else if (b->start > 0 && b->cap - b->end < b->cap / 2) {
		memmove(b->data, b->data + b->start, b->end - b->start);
		b->end -= b->start;
		b->start = 0;
	}
	return b->cap - b->end;
}

void buf_consume(struct buf *b, size_t n)
{
	b->start += n;
	if (b->start >= b->end)
		b->start = b->end = 0;
}

int buf_put(struct buf *b, const void *p, size_t n)
{
	if (buf_space(b) < n) {
		if (b->start == 0 || b->cap - buf_len(b) < n) {
			b->failed = 1;
			return -1;
		}
		memmove(b->data, b->data + b->start, buf_len(b));
		b->end -= b->start;
		b->start = 0;
	}
	memcpy(b->data + b->end, p, n);
	b->end += n;
	return 0;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_put(b, s, strlen(s));
}

int buf_put_u64(struct buf *b, uint64_t v)
{
	char num[24];

	return buf_put(b, num, (size_t)(decimal_u64(num, v) - num));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp)
		return -1;
	return buf_put(b, tmp, (size_t)n);
}
