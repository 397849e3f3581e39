/* fuzz: p2p-dnsd */
/* fuzz-dns-answer.c: an answer as libunbound might hand one back, into
 * dns_strip_answer(), which p2p-dnsd runs on every forwarded answer before
 * it adds its own OPT; the first byte says whether the DNSSEC records go
 * too (a client without DO).
 *
 * Checks beyond the sanitizers: an answer it takes comes back no longer,
 * with the same id, flags and question count, the answer, authority and
 * additional counts no higher, no OPT left (nor RRSIG/NSEC/NSEC3 unless
 * asked for), every name of it readable with its pointers going backward
 * (the walker below, independent of dns-wire.c), and running it again
 * changes nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns-wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz-dns-answer: %s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                                          \
			abort();                                                           \
		}                                                                          \
	} while (0)

static unsigned get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* Step over a name: labels, then the root or one pointer strictly before
 * the name's start; 0 or -1. */
static int walk_name(const uint8_t *m, size_t len, size_t *off)
{
	size_t o = *off, bound = *off;
	int jumped = 0;

	for (int hops = 0; hops < 128; hops++) {
		if (o >= len)
			return -1;
		if ((m[o] & 0xc0) == 0xc0) {
			size_t to;

			if (o + 1 >= len)
				return -1;
			to = (size_t)(m[o] & 0x3f) << 8 | m[o + 1];
			if (to >= bound || to < 12)
				return -1;
			if (!jumped)
				*off = o + 2;
			jumped = 1;
			bound = to;
			o = to;
			continue;
		}
		if (m[o] & 0xc0)
			return -1;
		if (m[o] == 0) {
			if (!jumped)
				*off = o + 1;
			return 0;
		}
		o += 1 + (size_t)m[o];
	}
	return -1;
}

static void check_message(const uint8_t *m, size_t len, int no_dnssec, unsigned qtype)
{
	size_t o = 12;

	for (unsigned i = 0; i < get16(m + 4); i++) {
		CHECK(walk_name(m, len, &o) == 0 && o + 4 <= len);
		o += 4;
	}
	for (int s = 1; s < 4; s++)
		for (unsigned i = 0; i < get16(m + 4 + 2 * s); i++) {
			unsigned type;

			CHECK(walk_name(m, len, &o) == 0 && o + 10 <= len);
			type = get16(m + o);
			CHECK(!(s == 3 && type == 41));
			CHECK(!(no_dnssec && (type == 46 || type == 47 || type == 50) && type != qtype));
			o += 10 + get16(m + o + 8);
			CHECK(o <= len);
		}
	CHECK(o == len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[65536], again[65536];
	size_t n, m;
	int strip;

	if (size < 1 || size > 65536)
		return 0;
	strip = data[0] & 1;
	data++;
	size--;
	n = dns_strip_answer(data, size, out, sizeof out, strip);
	if (n == 0)
		return 0;
	CHECK(n <= size);
	CHECK(memcmp(out, data, 6) == 0); /* id, flags, QDCOUNT */
	for (int i = 1; i < 4; i++)
		CHECK(get16(out + 4 + 2 * i) <= get16(data + 4 + 2 * i));
	{
		/* The question's type, as the stripper reads it: the last one's. */
		size_t o = 12;
		unsigned qtype = 0;

		for (unsigned i = 0; i < get16(out + 4); i++) {
			CHECK(walk_name(out, n, &o) == 0 && o + 4 <= n);
			qtype = get16(out + o);
			o += 4;
		}
		check_message(out, n, strip, qtype);
	}
	m = dns_strip_answer(out, n, again, sizeof again, strip);
	CHECK(m == n && memcmp(again, out, n) == 0);
	return 0;
}
