/* h2.c: HTTP/2 toward browsers (nghttp2). */
#include "tlsterm.h"

int h2_start(struct client *c)
{
	(void)c;
	return -1;
}

void h2_free(struct client *c)
{
	(void)c;
}

int h2_pump(struct client *c)
{
	(void)c;
	return 0;
}

int h2_wants_read(struct client *c)
{
	(void)c;
	return 0;
}

int h2_wants_write(struct client *c)
{
	(void)c;
	return 0;
}

void h2_sweep(struct client *c, uint64_t now)
{
	(void)c;
	(void)now;
}
