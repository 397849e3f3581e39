/* test: p2p-tunnel */
/* test-tunnel-ratelimit.c: handshake messages per source under load
 * (ratelimit.c): a burst of 5, then 20 a second; sources apart, an IPv6
 * /64 as one source; a source quiet for a second forgotten; when every
 * slot a source could take is busy, refused rather than followed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

static struct ratelimit rl;

static int allow4(const char *ip, uint64_t now)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(51820) };

	assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	return ratelimit_allow(&rl, (struct sockaddr *)&sin, now);
}

static int allow6(const char *ip, uint64_t now)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(51820) };

	assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
	return ratelimit_allow(&rl, (struct sockaddr *)&sin6, now);
}

static void test_burst_then_rate(void **ctx)
{
	uint64_t t = 1000000;
	int n = 0;

	(void)ctx;
	memset(&rl, 0, sizeof rl);
	for (int i = 0; i < 10; i++)
		n += allow4("192.0.2.1", t);
	assert_int_equal(n, RATELIMIT_BURST);
	assert_false(allow4("192.0.2.1", t + 49));    /* 50 ms buys one more */
	assert_true(allow4("192.0.2.1", t + 50));
	assert_false(allow4("192.0.2.1", t + 51));
	/* over a steady second: 20 */
	n = 0;
	for (uint64_t ms = 100; ms < 1100; ms += 5)
		n += allow4("192.0.2.1", t + ms);
	assert_true(n >= RATELIMIT_PER_SECOND - 1 && n <= RATELIMIT_PER_SECOND + 1);
	/* another source has its own bucket */
	assert_true(allow4("192.0.2.2", t + 1100));
	/* quiet for a second: a burst again */
	n = 0;
	for (int i = 0; i < 10; i++)
		n += allow4("192.0.2.1", t + 3000);
	assert_int_equal(n, RATELIMIT_BURST);
}

static void test_ipv6_prefix(void **ctx)
{
	int n = 0;

	(void)ctx;
	memset(&rl, 0, sizeof rl);
	/* addresses of one /64 are one source */
	for (int i = 0; i < 10; i++) {
		char ip[64];

		snprintf(ip, sizeof ip, "2001:db8:1:2::%x", i + 1);
		n += allow6(ip, 5000);
	}
	assert_int_equal(n, RATELIMIT_BURST);
	assert_true(allow6("2001:db8:1:3::1", 5000));   /* another /64 */
}

static void test_full_table(void **ctx)
{
	int refused = 0;

	(void)ctx;
	memset(&rl, 0, sizeof rl);
	/* more sources within a second than there are slots: some refused,
	 * none followed by overwriting a live one */
	for (unsigned i = 0; i < 2 * RATELIMIT_SLOTS; i++) {
		char ip[32];

		snprintf(ip, sizeof ip, "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		refused += !allow4(ip, 7000);
	}
	assert_true(refused >= RATELIMIT_SLOTS);
	/* a second later they are forgotten and new ones are taken */
	assert_true(allow4("198.51.100.7", 8000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_rate),
		cmocka_unit_test(test_ipv6_prefix),
		cmocka_unit_test(test_full_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
