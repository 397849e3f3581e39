/* test: p2p-tlsterm */
/* test-tlsterm-head.c: the head p2p-tlsterm sends to the upstream
 * (exchange_build_head, proxy.c). It is whole or it is not sent: with a
 * Cookie that the verdict filters (each ';' may come out as "; ", so the
 * head grows), for every cookie count up to the largest head a client may
 * send, the head parses as one request with the client's Content-Length
 * and with the identity and forwarding fields in place. A client's field
 * that names an identity or forwarding field with '_' for '-' does not
 * pass, and a stripped cookie is found with blanks around its name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tlsterm.h"

struct fixture {
	struct client c;
	struct exchange ex;
};

static struct verdict *allow_alice(void)
{
	json_t *reply = json_pack("{s:b,s:s,s:i,s:[ssss],s:{s:s},s:[s]}", "ok", 1, "decision", "allow",
				  "status", 200, "strip", "x-p2p-user", "x-p2p-groups", "x-p2p-client",
				  "x-p2p-jwt-assertion", "set", "X-P2P-User", "alice", "strip_cookies",
				  "p2p_token");
	struct verdict *v = reply ? verdict_new(reply) : NULL;

	json_decref(reply);
	assert_non_null(v);
	return v;
}

/* The head for the request TEXT, allowed as alice: 0 and ex.up_head, or -1. */
static int head_for(struct fixture *f, const char *text)
{
	const char *why = NULL;
	size_t used = 0;
	int status = 0;

	memset(f, 0, sizeof *f);
	snprintf(f->c.peer_ip, sizeof f->c.peer_ip, "127.77.0.10");
	f->c.peer.family = AF_INET;
	snprintf(f->c.default_name, sizeof f->c.default_name, "apps.corp.test");
	f->ex.c = &f->c;
	snprintf(f->ex.request_id, sizeof f->ex.request_id, "0123456789abcdef");
	if (http_parse_request(text, strlen(text), &f->ex.req, &used, &status, &why) != 1)
		fail_msg("the client's request does not parse (%d %s)", status, why ? why : "");
	f->ex.verdict = allow_alice();
	return exchange_build_head(&f->ex, "/x");
}

/* Whether the head for the upstream (not NUL-terminated) holds TEXT. */
static int head_has(const struct fixture *f, const char *text)
{
	return memmem(f->ex.up_head, f->ex.up_head_len, text, strlen(text)) != NULL;
}

static void fixture_free(struct fixture *f)
{
	free(f->ex.up_head);
	verdict_unref(f->ex.verdict);
	http_msg_free(&f->ex.req);
}

/* ex.up_head as the upstream reads it */
static void upstream_reads(struct fixture *f, struct http_msg *m)
{
	const char *why = NULL;
	size_t used = 0;
	int status = 0;

	if (http_parse_request(f->ex.up_head, f->ex.up_head_len, m, &used, &status, &why) != 1)
		fail_msg("the head for the upstream does not parse (%d %s)", status, why ? why : "");
	assert_int_equal(used, f->ex.up_head_len);
}

static void test_filtered_cookie_every_size(void **state)
{
	static char text[HTTP_HEAD_MAX + 1];
	const char *start = "POST /x HTTP/1.1\r\nHost: apps.corp.test\r\nContent-Length: 123456\r\nCookie: ";
	size_t cookies, built = 0;

	(void)state;
	for (cookies = 1;; cookies++) {
		struct fixture f;
		struct http_msg m;
		size_t n = strlen(start);

		if (n + 2 * cookies + 16 > HTTP_HEAD_MAX)
			break;
		memcpy(text, start, n);
		for (size_t i = 0; i < cookies; i++) {
			text[n++] = 'a';
			text[n++] = ';';
		}
		memcpy(text + n, "b\r\n\r\n", 6);
		if (head_for(&f, text) < 0)
			fail_msg("%zu cookies: no head for the upstream", cookies);
		/* one head, ending where it should, with every field of ours:
		 * read as text, as it may be longer than p2p-tlsterm's own
		 * parser takes */
		if (memmem(f.ex.up_head, f.ex.up_head_len, "\r\n\r\n", 4) != f.ex.up_head + f.ex.up_head_len - 4 ||
		    !head_has(&f, "\r\nContent-Length: 123456\r\n") ||
		    !head_has(&f, "\r\nX-P2P-User: alice\r\n") ||
		    !head_has(&f, "\r\nX-Forwarded-For: 127.77.0.10\r\n") ||
		    !head_has(&f, "\r\nX-Request-Id: 0123456789abcdef\r\n"))
			fail_msg("%zu cookies: the head for the upstream is not whole", cookies);
		if (f.ex.up_head_len <= HTTP_HEAD_MAX) {
			upstream_reads(&f, &m);
			assert_int_equal(m.body, BODY_LENGTH);
			assert_int_equal(m.length, 123456);
			assert_int_equal(http_find(&m, "cookie")->value_len, 3 * cookies + 1);
			http_msg_free(&m);
		}
		fixture_free(&f);
		built++;
	}
	assert_true(built > 5000);   /* the sizes past the old room were reached */
}

static void test_underscore_names(void **state)
{
	struct fixture f;
	struct http_msg m;

	(void)state;
	assert_int_equal(head_for(&f, "GET /x HTTP/1.1\r\nHost: apps.corp.test\r\nX_P2P_User: mallory\r\n"
				      "x-p2p_groups: admins\r\nX_Forwarded_For: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\n"
				      "X_Kept: yes\r\n\r\n"), 0);
	upstream_reads(&f, &m);
	assert_false(head_has(&f, "mallory"));
	assert_false(head_has(&f, "admins"));
	assert_false(head_has(&f, "6.6.6.6"));
	assert_string_equal(http_find(&m, "x_kept")->value, "yes");
	assert_string_equal(http_find(&m, "x-p2p-user")->value, "alice");
	http_msg_free(&m);
	fixture_free(&f);
}

static void test_cookie_name_blanks(void **state)
{
	struct fixture f;
	struct http_msg m;

	(void)state;
	assert_int_equal(head_for(&f, "GET /x HTTP/1.1\r\nHost: apps.corp.test\r\n"
				      "Cookie: a=1;\tp2p_token=t1; p2p_token =t2;p2p_token\t=t3; b=2\r\n\r\n"), 0);
	upstream_reads(&f, &m);
	assert_string_equal(http_find(&m, "cookie")->value, "a=1; b=2");
	http_msg_free(&m);
	fixture_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filtered_cookie_every_size),
		cmocka_unit_test(test_underscore_names),
		cmocka_unit_test(test_cookie_name_blanks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
