/* jsonbyte.c: see jsonbyte.h. */
#include "jsonbyte.h"

#include <stdint.h>
#include <string.h>

const unsigned char json_plain_byte[256] = {
	[0x20] = 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,      /* 0x22 '"' */
	[0x30] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	[0x40] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	[0x50] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,      /* 0x5c '\' */
	[0x60] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	[0x70] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

#define ONES UINT64_C(0x0101010101010101)
#define HIGH UINT64_C(0x8080808080808080)

/* The high bit of some byte set where a byte of X is zero, and only then
 * (the exact test for "any zero byte"; which byte is left to the caller). */
static uint64_t any_zero(uint64_t x)
{
	return (x - ONES) & ~x & HIGH;
}

/* Whether the 8 bytes of X are all plain: none below 0x20 (x - 0x20 per
 * byte borrows into a high bit only for those, as no byte has its high
 * bit set by then), none past 0x7f, no '"', no '\', no DEL if asked. */
static int word_plain(uint64_t x, uint64_t del)
{
	return !((x & HIGH) | ((x - ONES * 0x20) & ~x & HIGH) | any_zero(x ^ (ONES * '"')) |
		 any_zero(x ^ (ONES * '\\')) | (any_zero(x ^ (ONES * 0x7f)) & del));
}

size_t json_plain_span(const char *s, size_t n, int no_del)
{
	uint64_t del = no_del ? ~UINT64_C(0) : 0, x;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&x, s + i, 8);
		if (!word_plain(x, del))
			break;
	}
	while (i < n && json_plain_byte[(unsigned char)s[i]] && !(no_del && s[i] == 0x7f))
		i++;
	return i;
}
