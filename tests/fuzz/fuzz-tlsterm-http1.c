/* fuzz: p2p-tlsterm */
/* fuzz-tlsterm-http1.c: the bytes a client (or an upstream) sends, through
 * p2p-tlsterm's strict HTTP/1.1 parser (http1.c). The first byte picks what
 * is parsed: a request head, a response head to GET or to HEAD, or a
 * chunked body fed in pieces of a size the second byte gives.
 *
 * Checks beyond the sanitizers: an accepted head is no longer than the
 * input, carries no CR, LF or NUL in any name or value (the forwarded head
 * is rebuilt from them), never has both Content-Length and
 * Transfer-Encoding, has exactly one Host on HTTP/1.1, and a refusal has a
 * status of 400, 405, 414, 417, 431, 501 or 505; a chunked body never
 * yields more data than it was given and stops at its end. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsterm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "fuzz-tlsterm-http1: %s:%d: check failed: %s\n", \
				__FILE__, __LINE__, #cond);                              \
			abort();                                                         \
		}                                                                        \
	} while (0)

static void check_fields(const struct http_msg *m)
{
	for (size_t i = 0; i < m->nh; i++) {
		CHECK(m->h[i].name_len > 0 && strlen(m->h[i].name) == m->h[i].name_len);
		CHECK(strlen(m->h[i].value) == m->h[i].value_len);
		CHECK(!strpbrk(m->h[i].name, "\r\n :"));
		CHECK(!strpbrk(m->h[i].value, "\r\n"));
	}
	CHECK(!(http_find(m, "content-length") && http_find(m, "transfer-encoding")));
	CHECK(http_count(m, "content-length") <= 1);
}

static void request(const char *p, size_t n)
{
	struct http_msg m;
	const char *why = NULL;
	size_t used = 0;
	int status = 0, r = http_parse_request(p, n, &m, &used, &status, &why);

	if (r == 1) {
		CHECK(used <= n);
		CHECK(m.method && m.target && (m.target[0] == '/' || !strcmp(m.target, "*")));
		CHECK(!strpbrk(m.target, "\r\n "));
		check_fields(&m);
		CHECK(m.minor == 0 || http_count(&m, "host") == 1);
		CHECK(m.body != BODY_CLOSE);
	} else if (r < 0) {
		CHECK(why != NULL);
		CHECK(status == 400 || status == 405 || status == 414 || status == 417 || status == 431 ||
		      status == 501 || status == 505 || status == 503);
	}
	http_msg_free(&m);
}

static void response(const char *p, size_t n, const char *method)
{
	struct http_msg m;
	const char *why = NULL;
	size_t used = 0;
	int r = http_parse_response(p, n, method, &m, &used, &why);

	if (r == 1) {
		CHECK(used <= n);
		CHECK(m.status >= 100 && m.status <= 599);
		check_fields(&m);
		if (!strcmp(method, "HEAD"))
			CHECK(m.body == BODY_NONE);
	}
	http_msg_free(&m);
}

static void chunked(const char *p, size_t n, size_t step)
{
	struct chunked c = { 0 };
	size_t off = 0, have = 0, out = 0;

	if (!step)
		step = 1;
	while (off < n) {
		const char *data = NULL, *why = NULL;
		size_t used = 0, dlen = 0;
		int r;

		have = have < off + step ? off + step : have;
		if (have > n)
			have = n;
		r = chunked_step(&c, p + off, have - off, 4096, &used, &data, &dlen, &why);
		if (r < 0) {
			CHECK(why != NULL);
			return;
		}
		CHECK(used <= have - off && dlen <= used && dlen <= 4096);
		if (dlen)
			CHECK(data >= p + off && data + dlen <= p + off + used);
		out += dlen;
		off += used;
		if (r == 1)
			break;
		if (!used) {
			if (have == n)
				break;
			have += step;
		}
	}
	CHECK(out <= n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + 2;

	if (size < 2)
		return 0;
	switch (data[0] % 4) {
	case 0: request(p, size - 2); break;
	case 1: response(p, size - 2, "GET"); break;
	case 2: response(p, size - 2, "HEAD"); break;
	default: chunked(p, size - 2, data[1]); break;
	}
	return 0;
}
