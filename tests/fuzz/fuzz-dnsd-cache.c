/* fuzz: p2p-dnsd */
/* fuzz-dnsd-cache.c: an answer, as libunbound hands it to p2p-dnsd (its
 * bytes come from the network), kept by cache.c and given out again: the
 * OPT stripping, dns_ttl_offsets() over every record, and the TTL rewrite.
 *
 * The question to keep it under is the input's own (made into a query and
 * parsed by dns_parse_query, as the server's would be), so inputs that
 * answer their question reach the cache. The first input byte's low bits
 * also pick how long it was kept before it is asked again.
 *
 * Checks beyond the sanitizers: an answer given out is no longer than the
 * input, has the same header counts bar ARCOUNT, reads to its exact end
 * with as many TTLs as were kept (an input whose names point into its own
 * TTLs may not be given out at all), each no more than when it was kept and
 * lower by the seconds kept (or 0); and after the smallest TTL nothing is
 * given out. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "fuzz-dnsd-cache: %s:%d: check failed: %s\n",    \
				__FILE__, __LINE__, #cond);                              \
			abort();                                                         \
		}                                                                        \
	} while (0)

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The input's question as a parsed query; -1 when it has none. */
static int question_of(const uint8_t *data, size_t size, struct dns_query *q)
{
	uint8_t m[DNS_HEADER_LEN + DNS_NAME_MAX + 4];
	size_t o = DNS_HEADER_LEN;

	while (o < size && data[o] != 0 && data[o] <= 63 && o - DNS_HEADER_LEN < DNS_NAME_MAX)
		o += 1 + (size_t)data[o];
	if (o >= size || data[o] != 0 || size - o < 5 || o + 5 - DNS_HEADER_LEN > sizeof m - 12)
		return -1;
	o += 5; /* the root byte, type, class */
	memset(m, 0, DNS_HEADER_LEN);
	m[2] = 0x01;
	m[5] = 1;
	memcpy(m + DNS_HEADER_LEN, data + DNS_HEADER_LEN, o - DNS_HEADER_LEN);
	return dns_parse_query(m, o, q) == DNS_OK ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct answer_cache *c;
	static uint8_t out[CACHE_ANSWER_MAX];
	uint16_t in_at[64], out_at[64];
	struct dns_query q;
	uint64_t kept_ms;
	uint32_t age, min_ttl = UINT32_MAX;
	size_t n;
	int nin, nout;

	if (!c)
		c = cache_new(64);
	CHECK(c);
	cache_clear(c);
	if (size < DNS_HEADER_LEN || question_of(data, size, &q) < 0)
		return 0;
	kept_ms = (uint64_t)(data[0] & 0x3f) * 997;
	age = (uint32_t)(kept_ms / 1000);
	cache_put(c, &q, data, size, 5000);
	n = cache_get(c, &q, 5000 + kept_ms, out, sizeof out);
	if (!n)
		return 0;
	CHECK(n <= size);
	CHECK(!memcmp(out + 4, data + 4, 6)); /* QD, AN, NS counts */
	nout = dns_ttl_offsets(out, n, out_at, 64);
	CHECK(nout > 0);
	/* The input's own records, OPT aside, are the same ones in the same
	 * order: compare their TTLs one by one. */
	{
		static uint8_t copy[CACHE_ANSWER_MAX];
		size_t len;

		len = dns_strip_answer(data, size, copy, sizeof copy, 0);
		CHECK(len == n);
		nin = dns_ttl_offsets(copy, len, in_at, 64);
		CHECK(nin == nout);
		for (int i = 0; i < nin; i++) {
			uint32_t t = get32(copy + in_at[i]);

			CHECK(in_at[i] == out_at[i]);
			if (t & 0x80000000u)
				t = 0;
			if (t < min_ttl)
				min_ttl = t;
			CHECK(get32(out + out_at[i]) == (t > age ? t - age : 0));
		}
	}
	CHECK(min_ttl > age); /* given out only while fresh */
	CHECK(cache_get(c, &q, 5000 + (uint64_t)min_ttl * 1000, out, sizeof out) == 0);
	return 0;
}
