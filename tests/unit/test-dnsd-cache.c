/* test: p2p-dnsd */
/* test-dnsd-cache.c: bin/p2p-dnsd/cache.c, libunbound's answers kept in
 * front of it, and dns_ttl_offsets() it relies on. Answers are built byte
 * by byte as libunbound writes them (question uncompressed, owners as
 * pointers to it, an OPT at the end); queries are parsed by
 * dns_parse_query as the server does. What is asserted is what a client
 * would see: the same answer for the same question in any letter case,
 * TTLs brought down by the whole seconds kept, nothing after the smallest
 * TTL ran out, and no keeping of what must not be kept (failures,
 * truncated or oversized answers, TTL 0, another question). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "dnsd.h"

struct msg {
	uint8_t b[4096];
	size_t n;
};

static void put(struct msg *m, const void *p, size_t n)
{
	assert_true(m->n + n <= sizeof m->b);
	memcpy(m->b + m->n, p, n);
	m->n += n;
}

static void put8(struct msg *m, unsigned v)
{
	uint8_t b = (uint8_t)v;

	put(m, &b, 1);
}

static void put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8);
	put8(m, v & 0xff);
}

static void put32(struct msg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xffff);
}

static void name(struct msg *m, const char *text)
{
	while (*text) {
		const char *dot = strchr(text, '.');
		size_t n = dot ? (size_t)(dot - text) : strlen(text);

		put8(m, (unsigned)n);
		put(m, text, n);
		text += n + (dot ? 1 : 0);
	}
	put8(m, 0);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A query for NAME/TYPE, parsed. */
static void query(struct dns_query *q, const char *qname, unsigned type)
{
	struct msg m = { .n = 0 };

	put16(&m, 0x4242);
	put16(&m, 0x0100);
	put16(&m, 1);
	put16(&m, 0);
	put16(&m, 0);
	put16(&m, 0);
	name(&m, qname);
	put16(&m, type);
	put16(&m, DNS_CLASS_IN);
	assert_int_equal(dns_parse_query(m.b, m.n, q), DNS_OK);
}

/* libunbound's answer to QNAME/TYPE: FLAGS (rcode in the low bits), A
 * records with TTLS[0..NA), then an SOA with SOA_TTL when SOA_TTL >= 0,
 * then an OPT when OPT. */
static void answer(struct msg *m, const char *qname, unsigned type, unsigned flags,
		   const uint32_t *ttls, int na, long soa_ttl, int opt)
{
	m->n = 0;
	put16(m, 0x9999);
	put16(m, 0x8180 | flags);
	put16(m, 1);
	put16(m, (unsigned)na);
	put16(m, soa_ttl >= 0 ? 1 : 0);
	put16(m, opt ? 1 : 0);
	name(m, qname);
	put16(m, type);
	put16(m, DNS_CLASS_IN);
	for (int i = 0; i < na; i++) {
		put16(m, 0xc00c);
		put16(m, DNS_TYPE_A);
		put16(m, DNS_CLASS_IN);
		put32(m, ttls[i]);
		put16(m, 4);
		put32(m, 0xc0000201u + (uint32_t)i);
	}
	if (soa_ttl >= 0) {
		put16(m, 0xc00c);
		put16(m, DNS_TYPE_SOA);
		put16(m, DNS_CLASS_IN);
		put32(m, (uint32_t)soa_ttl);
		put16(m, 2 + 2 + 20);
		put16(m, 0xc00c); /* mname */
		put16(m, 0xc00c); /* rname */
		put32(m, 1);
		put32(m, 3600);
		put32(m, 600);
		put32(m, 86400);
		put32(m, 60);
	}
	if (opt) {
		put8(m, 0);
		put16(m, DNS_TYPE_OPT);
		put16(m, 1232);
		put32(m, 0x8000);
		put16(m, 0);
	}
}

/* The TTLs of the records of M, in order. */
static int ttls_of(const uint8_t *b, size_t n, uint32_t *out)
{
	uint16_t at[64];
	int k = dns_ttl_offsets(b, n, at, 64);

	for (int i = 0; i < k; i++)
		out[i] = get32(b + at[i]);
	return k;
}

static void test_ttl_offsets(void **state)
{
	struct msg m;
	uint32_t t[64], ttls[3] = { 300, 60, 7 };
	uint16_t at[2];

	(void)state;
	answer(&m, "www.example.com", DNS_TYPE_A, 0, ttls, 3, 900, 1);
	/* Three A, the SOA; the OPT's flags are no TTL. */
	assert_int_equal(ttls_of(m.b, m.n, t), 4);
	assert_int_equal(t[0], 300);
	assert_int_equal(t[1], 60);
	assert_int_equal(t[2], 7);
	assert_int_equal(t[3], 900);
	/* More records than room: refused, not cut short. */
	assert_int_equal(dns_ttl_offsets(m.b, m.n, at, 2), -1);
	/* Cut off, or a byte too many. */
	assert_int_equal(dns_ttl_offsets(m.b, m.n - 1, at, 2), -1);
	m.b[m.n] = 0;
	assert_int_equal(ttls_of(m.b, m.n + 1, t), -1);
	assert_int_equal(dns_ttl_offsets(m.b, 11, at, 2), -1);
	/* A forward pointer. */
	answer(&m, "www.example.com", DNS_TYPE_A, 0, ttls, 1, -1, 0);
	m.b[12 + 17 + 4 + 1] = 0xff;
	assert_int_equal(ttls_of(m.b, m.n, t), -1);
}

static void test_hit_in_any_case(void **state)
{
	struct answer_cache *c = cache_new(64);
	struct dns_query q, Q;
	struct msg m;
	uint8_t out[CACHE_ANSWER_MAX];
	uint32_t ttls[2] = { 300, 120 }, t[8];
	size_t n;

	(void)state;
	assert_non_null(c);
	query(&q, "www.example.com", DNS_TYPE_A);
	assert_int_equal(cache_get(c, &q, 1000, out, sizeof out), 0);
	answer(&m, "www.example.com", DNS_TYPE_A, 0, ttls, 2, -1, 1);
	cache_put(c, &q, m.b, m.n, 1000);
	assert_int_equal(cache_count(c), 1);
	query(&Q, "WwW.ExAmPlE.cOm", DNS_TYPE_A);
	n = cache_get(c, &Q, 1000, out, sizeof out);
	/* The answer as it came, less its OPT (the client gets its own). */
	assert_int_equal(n, m.n - 11);
	assert_memory_equal(out + 12, m.b + 12, n - 12);
	assert_int_equal(out[11], 0); /* ARCOUNT */
	/* Another type, or another name: nothing. */
	query(&Q, "www.example.com", DNS_TYPE_AAAA);
	assert_int_equal(cache_get(c, &Q, 1000, out, sizeof out), 0);
	query(&Q, "ww.example.com", DNS_TYPE_A);
	assert_int_equal(cache_get(c, &Q, 1000, out, sizeof out), 0);
	/* Kept 59.9 s: 59 whole seconds less. */
	n = cache_get(c, &q, 1000 + 59900, out, sizeof out);
	assert_int_equal(ttls_of(out, n, t), 2);
	assert_int_equal(t[0], 300 - 59);
	assert_int_equal(t[1], 120 - 59);
	/* Not more than OUT holds. */
	assert_int_equal(cache_get(c, &q, 1000, out, n - 1), 0);
	/* Gone when the smallest TTL ran out. */
	n = cache_get(c, &q, 1000 + 119999, out, sizeof out);
	assert_int_equal(ttls_of(out, n, t), 2);
	assert_int_equal(t[1], 1); /* 119.999 s kept: never 0 while kept */
	assert_int_equal(cache_get(c, &q, 1000 + 120000, out, sizeof out), 0);
	assert_int_equal(cache_count(c), 0);
	cache_free(c);
}

static void test_negative_answers(void **state)
{
	struct answer_cache *c = cache_new(64);
	struct dns_query q;
	struct msg m;
	uint8_t out[CACHE_ANSWER_MAX];
	uint32_t t[4];
	size_t n;

	(void)state;
	/* NXDOMAIN with the zone's SOA: kept for the SOA's TTL. */
	query(&q, "nothing.example.com", DNS_TYPE_A);
	answer(&m, "nothing.example.com", DNS_TYPE_A, DNS_RCODE_NXDOMAIN, NULL, 0, 30, 0);
	cache_put(c, &q, m.b, m.n, 0);
	n = cache_get(c, &q, 10000, out, sizeof out);
	assert_int_equal(n, m.n);
	assert_int_equal(out[3] & 0x0f, DNS_RCODE_NXDOMAIN);
	assert_int_equal(ttls_of(out, n, t), 1);
	assert_int_equal(t[0], 20);
	assert_int_equal(cache_get(c, &q, 30000, out, sizeof out), 0);
	/* NODATA without an SOA has no TTL to go by: not kept. */
	answer(&m, "nothing.example.com", DNS_TYPE_A, 0, NULL, 0, -1, 0);
	cache_put(c, &q, m.b, m.n, 0);
	assert_int_equal(cache_count(c), 0);
	cache_free(c);
}

static void test_not_kept(void **state)
{
	struct answer_cache *c = cache_new(64);
	struct dns_query q;
	struct msg m;
	uint32_t ttls[2] = { 300, 0 }, big[64];

	(void)state;
	query(&q, "www.example.com", DNS_TYPE_A);
	answer(&m, "www.example.com", DNS_TYPE_A, DNS_RCODE_SERVFAIL, ttls, 1, -1, 0);
	cache_put(c, &q, m.b, m.n, 0);
	answer(&m, "www.example.com", DNS_TYPE_A, DNS_RCODE_REFUSED, ttls, 1, -1, 0);
	cache_put(c, &q, m.b, m.n, 0);
	answer(&m, "www.example.com", DNS_TYPE_A, 0x0200 /* TC */, ttls, 1, -1, 0);
	cache_put(c, &q, m.b, m.n, 0);
	answer(&m, "www.example.com", DNS_TYPE_A, 0, ttls, 2, -1, 0); /* a TTL of 0 */
	cache_put(c, &q, m.b, m.n, 0);
	ttls[1] = 0x80000001u; /* top bit set: 0 (RFC 2181 8) */
	answer(&m, "www.example.com", DNS_TYPE_A, 0, ttls, 2, -1, 0);
	cache_put(c, &q, m.b, m.n, 0);
	answer(&m, "other.example.com", DNS_TYPE_A, 0, ttls, 1, -1, 0); /* another question */
	cache_put(c, &q, m.b, m.n, 0);
	answer(&m, "www.example.com", DNS_TYPE_AAAA, 0, ttls, 1, -1, 0);
	cache_put(c, &q, m.b, m.n, 0);
	for (int i = 0; i < 64; i++)
		big[i] = 300;
	answer(&m, "www.example.com", DNS_TYPE_A, 0, big, 64, -1, 0); /* 1057 bytes: kept */
	assert_true(m.n <= CACHE_ANSWER_MAX);
	cache_put(c, &q, m.b, m.n, 0);
	assert_int_equal(cache_count(c), 1);
	cache_clear(c);
	answer(&m, "www.example.com", DNS_TYPE_A, 0, big, 64, 300, 0); /* 65 records */
	cache_put(c, &q, m.b, m.n, 0);
	assert_int_equal(cache_count(c), 0);
	m.n = CACHE_ANSWER_MAX + 1; /* too big for every client */
	cache_put(c, &q, m.b, m.n, 0);
	m.n = 11;
	cache_put(c, &q, m.b, m.n, 0);
	cache_put(c, &q, NULL, 0, 0);
	assert_int_equal(cache_count(c), 0);
	cache_free(c);
}

static void test_bounded_and_cleared(void **state)
{
	struct answer_cache *c = cache_new(16);
	struct dns_query q;
	struct msg m;
	uint8_t out[CACHE_ANSWER_MAX];
	uint32_t ttl = 60;
	char qname[64];
	int hits = 0;

	(void)state;
	for (int i = 0; i < 1000; i++) {
		snprintf(qname, sizeof qname, "n%d.example.com", i);
		query(&q, qname, DNS_TYPE_A);
		answer(&m, qname, DNS_TYPE_A, 0, &ttl, 1, -1, 0);
		cache_put(c, &q, m.b, m.n, (uint64_t)i);
	}
	assert_true(cache_count(c) <= 16);
	for (int i = 0; i < 1000; i++) {
		snprintf(qname, sizeof qname, "n%d.example.com", i);
		query(&q, qname, DNS_TYPE_A);
		hits += cache_get(c, &q, 1000, out, sizeof out) > 0;
	}
	assert_int_equal(hits, (int)cache_count(c));
	assert_true(hits > 0);
	/* The same question again replaces its answer. */
	query(&q, "n999.example.com", DNS_TYPE_A);
	ttl = 5;
	answer(&m, "n999.example.com", DNS_TYPE_A, 0, &ttl, 1, -1, 0);
	cache_put(c, &q, m.b, m.n, 2000);
	assert_int_equal(cache_get(c, &q, 7000, out, sizeof out), 0);
	cache_clear(c);
	assert_int_equal(cache_count(c), 0);
	query(&q, "n998.example.com", DNS_TYPE_A);
	assert_int_equal(cache_get(c, &q, 1000, out, sizeof out), 0);
	cache_free(c);
	cache_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ttl_offsets),
		cmocka_unit_test(test_hit_in_any_case),
		cmocka_unit_test(test_negative_answers),
		cmocka_unit_test(test_not_kept),
		cmocka_unit_test(test_bounded_and_cleared),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
