/* test: lib */
/* test-jsonbyte.c: lib/jsonbyte.c, json_plain_span, which p2p-tlsterm's
 * record writer and p2p-audit's quick reader use to pass over the plain
 * bytes of a string eight at a time: its answer must be the first byte
 * json_plain_byte (and, when asked, DEL) refuses, whatever the byte, at
 * whatever place in a word, in strings of every length around a word's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "jsonbyte.h"

/* The answer byte by byte, from the table. */
static size_t span_by_byte(const char *s, size_t n, int no_del)
{
	size_t i = 0;

	while (i < n && json_plain_byte[(unsigned char)s[i]] && !(no_del && s[i] == 0x7f))
		i++;
	return i;
}

static void test_table(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++)
		assert_int_equal(json_plain_byte[c], c >= 0x20 && c < 0x80 && c != '"' && c != '\\');
}

/* Every byte value at every place of strings of 0 to 33 plain bytes. */
static void test_every_byte_everywhere(void **state)
{
	char s[40];

	(void)state;
	for (size_t n = 0; n <= 33; n++)
		for (size_t at = 0; at <= n; at++)
			for (int c = 0; c < 256; c++)
				for (int no_del = 0; no_del <= 1; no_del++) {
					size_t got, want;

					memset(s, 'a' + (int)(n % 26), sizeof s);
					if (at < n)
						s[at] = (char)c;
					got = json_plain_span(s, n, no_del);
					want = span_by_byte(s, n, no_del);
					if (got != want)
						fail_msg("n %zu, byte 0x%02x at %zu, no_del %d: %zu, want %zu",
							 n, c, at, no_del, got, want);
				}
}

/* Plain bytes next to the edges of each test (0x1f/0x20, 0x21/0x22/0x23,
 * 0x5b/0x5c/0x5d, 0x7e/0x7f/0x80), two refused bytes in one word, and
 * nothing read past N. */
static void test_edges(void **state)
{
	static const char plain[] = " !#[]~09azAZ";
	char s[24];

	(void)state;
	memset(s, ' ', sizeof s);
	assert_int_equal(json_plain_span(plain, strlen(plain), 1), strlen(plain));
	assert_int_equal(json_plain_span("abcdefg\x7fhij", 11, 0), 11);
	assert_int_equal(json_plain_span("abcdefg\x7fhij", 11, 1), 7);
	assert_int_equal(json_plain_span("abc\"def\\ghijklmnop", 18, 0), 3);
	assert_int_equal(json_plain_span("abcdefghij\\k\"", 13, 0), 10);
	assert_int_equal(json_plain_span("abcdefgh\x1f", 9, 0), 8);
	assert_int_equal(json_plain_span("abcdefgh\xc3\xa9", 10, 0), 8);
	s[16] = '"';
	assert_int_equal(json_plain_span(s, 16, 0), 16);   /* the quote is past N */
	assert_int_equal(json_plain_span(s, 17, 0), 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_every_byte_everywhere),
		cmocka_unit_test(test_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
