/* test: p2p-tlsterm */
/* test-tlsterm-http1.c: bin/p2p-tlsterm/http1.c, the strict HTTP/1.1
 * parser that decides where each request ends. Every request smuggling
 * shape of the issue is refused with the status a client would see (400,
 * 414, 431, 501, 505), ordinary requests parse with their framing, heads
 * split anywhere parse the same, and chunked bodies decode across any
 * split with their trailers dropped; plus routes and upstream URLs
 * (site.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsterm.h"

/* parse TEXT whole: the return code, *STATUS on refusal */
static int parse(const char *text, struct http_msg *m, int *status)
{
	const char *why = NULL;
	size_t used = 0;
	int r;

	*status = 0;
	r = http_parse_request(text, strlen(text), m, &used, status, &why);
	if (r == 1)
		assert_int_equal(used, strlen(text));
	return r;
}

static void refused(const char *text, int want)
{
	struct http_msg m;
	int status;

	if (parse(text, &m, &status) != -1 || status != want)
		fail_msg("not refused with %d (got %d): %s", want, status, text);
	http_msg_free(&m);
}

static void test_ordinary(void **state)
{
	struct http_msg m;
	int status;

	(void)state;
	assert_int_equal(parse("GET /a?b=1 HTTP/1.1\r\nHost: apps.corp.test\r\nX-A:  v  \r\n\r\n", &m, &status), 1);
	assert_string_equal(m.method, "GET");
	assert_string_equal(m.target, "/a?b=1");
	assert_string_equal(m.host, "apps.corp.test");
	assert_string_equal(http_find(&m, "x-a")->value, "v");
	assert_int_equal(m.body, BODY_NONE);
	assert_true(m.keep_alive);
	http_msg_free(&m);

	assert_int_equal(parse("POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\n", &m, &status), 1);
	assert_int_equal(m.body, BODY_LENGTH);
	assert_int_equal(m.length, 12);
	http_msg_free(&m);

	assert_int_equal(parse("PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n"
			       "Expect: 100-continue\r\nConnection: close\r\n\r\n", &m, &status), 1);
	assert_int_equal(m.body, BODY_CHUNKED);
	assert_true(m.expect_continue);
	assert_false(m.keep_alive);
	http_msg_free(&m);

	assert_int_equal(parse("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
			       "Connection: keep-alive, Upgrade\r\n\r\n", &m, &status), 1);
	assert_true(m.upgrade);
	http_msg_free(&m);

	/* HTTP/1.0: no Host needed, no keep-alive unless asked */
	assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &m, &status), 1);
	assert_false(m.keep_alive);
	http_msg_free(&m);
	/* an empty line before a request (after a body) is tolerated */
	assert_int_equal(parse("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", &m, &status), 1);
	http_msg_free(&m);
}

static void test_incomplete(void **state)
{
	const char *full = "GET /x HTTP/1.1\r\nHost: apps\r\nA: b\r\n\r\n";
	struct http_msg m;

	(void)state;
	for (size_t n = 0; n < strlen(full); n++) {
		const char *why;
		size_t used;
		int status;

		assert_int_equal(http_parse_request(full, n, &m, &used, &status, &why), 0);
		http_msg_free(&m);
	}
}

static void test_smuggling(void **state)
{
	(void)state;
	/* framing two parsers could read two ways */
	refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
	refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", 501);
	refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 501);
	refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
	/* obs-fold, bare CR, bare LF */
	refused("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: h\r\n\tTransfer-Encoding: chunked\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: h\nX-A: a\r\n\r\n", 400);
	refused("GET / HTTP/1.1\nHost: h\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: h\r\n\n", 400);
	/* field names */
	refused("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: h\r\nBad[Name]: x\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\001b\r\n\r\n", 400);
	/* Host */
	refused("GET / HTTP/1.1\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: user@evil\r\n\r\n", 400);
	/* request line */
	refused("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	refused("GET http://evil/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	refused("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
	refused("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505);
	refused("GET / http/1.1\r\nHost: h\r\n\r\n", 400);
	refused("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	refused("GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\n\r\n", 417);
	{
		static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
		struct http_msg m;
		const char *why;
		size_t used;
		int status;

		assert_int_equal(http_parse_request(nul, sizeof nul - 1, &m, &used, &status, &why), -1);
		assert_int_equal(status, 400);
		http_msg_free(&m);
	}
}

static void test_limits(void **state)
{
	char *big = malloc(HTTP_HEAD_MAX * 2);
	struct http_msg m;
	const char *why;
	size_t used;
	int status, n;

	(void)state;
	/* a request line too long: 414, even before it ends */
	n = sprintf(big, "GET /");
	memset(big + n, 'a', HTTP_LINE_MAX);
	assert_int_equal(http_parse_request(big, (size_t)n + HTTP_LINE_MAX, &m, &used, &status, &why), -1);
	assert_int_equal(status, 414);
	http_msg_free(&m);
	/* a head too large: 431 */
	n = sprintf(big, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ");
	memset(big + n, 'a', HTTP_HEAD_MAX);
	assert_int_equal(http_parse_request(big, (size_t)n + HTTP_HEAD_MAX, &m, &used, &status, &why), -1);
	assert_int_equal(status, 431);
	http_msg_free(&m);
	/* too many fields: 431 */
	n = sprintf(big, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (int i = 0; i < HTTP_HEADERS_MAX + 1; i++)
		n += sprintf(big + n, "X-%d: v\r\n", i);
	n += sprintf(big + n, "\r\n");
	assert_int_equal(http_parse_request(big, (size_t)n, &m, &used, &status, &why), -1);
	assert_int_equal(status, 431);
	http_msg_free(&m);
	free(big);
}

/* decode a chunked body fed in pieces of STEP bytes, at most MAXDATA at a time */
static int decode(const char *in, size_t len, size_t step, size_t maxdata, char *out, size_t *outlen,
		  size_t *consumed)
{
	struct chunked c = { 0 };
	size_t off = 0, have = 0;

	*outlen = 0;
	while (off < len) {
		const char *data, *why;
		size_t used = 0, dlen = 0, avail;
		int r;

		have = have < off + step ? off + step : have;
		if (have > len)
			have = len;
		avail = have - off;
		r = chunked_step(&c, in + off, avail, maxdata, &used, &data, &dlen, &why);
		if (r < 0)
			return -1;
		if (dlen > 0) /* no data: DATA may be NULL */
			memcpy(out + *outlen, data, dlen);
		*outlen += dlen;
		off += used;
		if (r == 1) {
			*consumed = off;
			return 1;
		}
		if (!used && have == len)
			return 0;
		if (!used)
			have += step;
	}
	*consumed = off;
	return 0;
}

static void test_chunked(void **state)
{
	static const char body[] = "5\r\nhello\r\n1;ext=\"x y\"\r\n \r\n10\r\n0123456789abcdef\r\n0\r\n"
				   "Trailer-A: 1\r\n\r\nGET /next";
	char out[64];
	size_t outlen, consumed;

	(void)state;
	for (size_t step = 1; step < sizeof body; step++)
		for (size_t maxdata = 1; maxdata < 20; maxdata += 3) {
			assert_int_equal(decode(body, sizeof body - 1, step, maxdata, out, &outlen, &consumed), 1);
			assert_int_equal(outlen, 22);
			assert_memory_equal(out, "hello 0123456789abcdef", 22);
			assert_int_equal(consumed, sizeof body - 1 - 9);   /* "GET /next" is the next request */
		}
	assert_int_equal(decode("5 \r\nhello\r\n0\r\n\r\n", 16, 16, 64, out, &outlen, &consumed), -1);
	assert_int_equal(decode("-5\r\n", 4, 4, 64, out, &outlen, &consumed), -1);
	assert_int_equal(decode("0x5\r\n", 5, 5, 64, out, &outlen, &consumed), -1);
	assert_int_equal(decode("5\nhello\r\n0\r\n\r\n", 15, 15, 64, out, &outlen, &consumed), -1);
	assert_int_equal(decode("5\r\nhelloX\r\n0\r\n\r\n", 17, 17, 64, out, &outlen, &consumed), -1);
	assert_int_equal(decode("fffffffffffffffff\r\n", 19, 19, 64, out, &outlen, &consumed), -1);
	assert_int_equal(decode("0\r\n folded: x\r\n\r\n", 17, 17, 64, out, &outlen, &consumed), -1);
	assert_int_equal(decode("1;a\001\r\nx\r\n0\r\n\r\n", 14, 14, 64, out, &outlen, &consumed), -1);
}

static void test_response(void **state)
{
	struct http_msg m;
	const char *why;
	size_t used;
	const char *r1 = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
	const char *r2 = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
	const char *r3 = "HTTP/1.0 200 OK\r\n\r\n";
	const char *r4 = "HTTP/1.1 304 Not Modified\r\nContent-Length: 30\r\n\r\n";

	(void)state;
	assert_int_equal(http_parse_response(r1, strlen(r1), "GET", &m, &used, &why), 1);
	assert_int_equal(used, strlen(r1) - 3);
	assert_int_equal(m.status, 200);
	assert_int_equal(m.body, BODY_LENGTH);
	http_msg_free(&m);
	assert_int_equal(http_parse_response(r2, strlen(r2), "GET", &m, &used, &why), -1);
	http_msg_free(&m);
	assert_int_equal(http_parse_response(r3, strlen(r3), "GET", &m, &used, &why), 1);
	assert_int_equal(m.body, BODY_CLOSE);
	assert_false(m.keep_alive);
	http_msg_free(&m);
	assert_int_equal(http_parse_response(r4, strlen(r4), "GET", &m, &used, &why), 1);
	assert_int_equal(m.body, BODY_NONE);
	http_msg_free(&m);
	assert_int_equal(http_parse_response(r1, strlen(r1), "HEAD", &m, &used, &why), 1);
	assert_int_equal(m.body, BODY_NONE);
	http_msg_free(&m);
}

/* Field lookups match whole names in any case, never a prefix or a name
 * of the same length; hop-by-hop names are exactly RFC 9110's and the
 * older Keep-Alive and Proxy-Connection. */
static void test_fields(void **state)
{
	static const char *const hop[] = { "Connection", "KEEP-ALIVE", "proxy-connection",
					   "Transfer-Encoding", "TE", "Trailer", "Upgrade",
					   "Proxy-Authorization", "proxy-authenticate" };
	static const char *const not_hop[] = { "Connectio", "Connections", "Keep-Alivf", "T",
					       "Tf", "Trailers", "Upgrade-Insecure-Requests",
					       "Authorization", "Proxy-Authorizatio", "Host" };
	struct http_msg m;
	int status;

	(void)state;
	for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
		assert_true(http_is_hop_by_hop(hop[i], strlen(hop[i])));
	for (size_t i = 0; i < sizeof not_hop / sizeof not_hop[0]; i++)
		assert_false(http_is_hop_by_hop(not_hop[i], strlen(not_hop[i])));

	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nX-Ab: 1\r\nX-A: 2\r\nx-a: 3\r\n"
			       "Connection: X-Ab, keep-alive\r\nConnectiom: X-A\r\n\r\n", &m, &status), 1);
	assert_string_equal(http_find(&m, "x-a")->value, "2");
	assert_string_equal(http_find(&m, "X-AB")->value, "1");
	assert_null(http_find(&m, "x-"));
	assert_null(http_find(&m, "x-abc"));
	assert_int_equal(http_count(&m, "X-A"), 2);
	assert_int_equal(http_count(&m, "x-ab"), 1);
	assert_int_equal(http_count(&m, "x-b"), 0);
	assert_true(http_connection_has(&m, "x-ab"));
	assert_true(http_connection_has(&m, "Keep-Alive"));
	assert_false(http_connection_has(&m, "x-a"));   /* only in Connectiom */
	http_msg_free(&m);

	/* only the usual tokens: each answered as listed */
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n", &m, &status), 1);
	assert_true(http_connection_has(&m, "close"));
	assert_false(http_connection_has(&m, "keep-alive"));
	assert_false(http_connection_has(&m, "host"));
	assert_false(m.keep_alive);
	http_msg_free(&m);
	assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: ,keep-alive ,\r\n\r\n", &m, &status), 1);
	assert_true(http_connection_has(&m, "KEEP-ALIVE"));
	assert_false(http_connection_has(&m, "close"));
	assert_true(m.keep_alive);
	http_msg_free(&m);
	/* a name in a second Connection field */
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nX-B: 1\r\n"
			       "Connection: x-b\r\n\r\n", &m, &status), 1);
	assert_true(http_connection_has(&m, "x-b"));
	assert_true(http_connection_has(&m, "keep-alive"));
	assert_false(http_connection_has(&m, "close"));
	http_msg_free(&m);
}

static void test_routes(void **state)
{
	struct origin o;

	(void)state;
	assert_true(route_matches("/alice", "/alice"));
	assert_true(route_matches("/alice", "/alice/notes"));
	assert_true(route_matches("/alice", "/alice?x"));
	assert_false(route_matches("/alice", "/alicexyz"));
	assert_true(route_matches("/api/", "/api/x"));
	assert_false(route_matches("/api/", "/api"));
	assert_int_equal(origin_parse("http://10.0.10.15:8080", &o), 0);
	assert_string_equal(o.key, "http://10.0.10.15:8080");
	assert_string_equal(o.base, "");
	assert_int_equal(origin_parse("https://[::1]/base/", &o), 0);
	assert_string_equal(o.host, "::1");
	assert_int_equal(o.port, 443);
	assert_string_equal(o.base, "/base");
	assert_true(o.https);
	assert_int_equal(origin_parse("http://app.internal:80/x", &o), 0);
	assert_string_equal(o.key, "http://app.internal:80");
	assert_int_equal(origin_parse("ftp://x", &o), -1);
	assert_int_equal(origin_parse("http://h:0", &o), -1);
	assert_int_equal(origin_parse("http://h:99999", &o), -1);
	assert_int_equal(origin_parse("http://:80", &o), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ordinary),
		cmocka_unit_test(test_incomplete),
		cmocka_unit_test(test_smuggling),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_response),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_routes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
