/* test: lib */
/* test-jsonbyte.c: lib/jsonbyte.h, the test that p2p-tlsterm's JSON writer
 * and p2p-audit's quick reader make on every string byte. json_plain_len
 * looks at four bytes at a time; it must say what a look at
 * json_plain_byte one byte at a time says, for every byte value at every
 * place in a string of every length up to 24, and at every alignment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "jsonbyte.h"

static size_t plain_len_bytewise(const char *s, size_t n, unsigned char mask)
{
	size_t i = 0;

	while (i < n && (json_plain_byte[(unsigned char)s[i]] & mask))
		i++;
	return i;
}

static void test_table(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		int plain = c >= 0x20 && c < 0x80 && c != '"' && c != '\\';

		assert_int_equal(!!(json_plain_byte[c] & JSON_PLAIN), plain);
		assert_int_equal(!!(json_plain_byte[c] & JSON_PRINTABLE), plain && c != 0x7f);
	}
}

static void check_every_byte(unsigned char mask)
{
	char buf[64];

	for (size_t align = 0; align < 8; align++)
		for (size_t n = 0; n <= 24; n++)
			for (size_t at = 0; at < n; at++)
				for (int c = 0; c < 256; c++) {
					char *s = buf + align;

					memset(s, 'a', n);
					s[at] = (char)c;
					if (json_plain_len(s, n, mask) != plain_len_bytewise(s, n, mask))
						fail_msg("mask %u, length %zu, byte 0x%02x at %zu: %zu, not %zu", mask,
							 n, c, at, json_plain_len(s, n, mask),
							 plain_len_bytewise(s, n, mask));
				}
}

static void test_plain_len_one_byte_anywhere(void **state)
{
	(void)state;
	check_every_byte(JSON_PLAIN);
	check_every_byte(JSON_PRINTABLE);
}

/* Two declined bytes in one word, and the plain bytes that sit next to
 * the declined ones in value ('!' beside '"', '[' and ']' beside '\',
 * ' ' above the control bytes, '~' below DEL). */
static void test_plain_len_pairs(void **state)
{
	static const unsigned char edge[] = { 0x00, 0x01, 0x1f, ' ', '!', '"', '#', '[', '\\', ']', '~', 0x7f, 0x80, 0xc3, 0xff };
	char s[16];

	(void)state;
	for (size_t i = 0; i < sizeof edge; i++)
		for (size_t j = 0; j < sizeof edge; j++)
			for (size_t a = 0; a < 16; a++)
				for (size_t b = 0; b < 16; b++) {
					memset(s, 'x', sizeof s);
					s[a] = (char)edge[i];
					s[b] = (char)edge[j];
					assert_int_equal(json_plain_len(s, sizeof s, JSON_PLAIN),
							 plain_len_bytewise(s, sizeof s, JSON_PLAIN));
					assert_int_equal(json_plain_len(s, sizeof s, JSON_PRINTABLE),
							 plain_len_bytewise(s, sizeof s, JSON_PRINTABLE));
				}
}

/* utf8_char_len against a decoder written the long way: the code point a
 * sequence of LEN bytes spells, accepted when it needs LEN bytes (not
 * overlong), is not a surrogate and is at most U+10FFFF. Every sequence of
 * up to three bytes, and every four-byte one over its first two bytes. */
static size_t reference_len(const unsigned char *p, size_t n)
{
	size_t len = p[0] >= 0xf8 ? 0 : p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 0;
	uint32_t cp, min[] = { 0, 0, 0x80, 0x800, 0x10000 };

	if (!len || len > n)
		return 0;
	cp = p[0] & (0x7f >> len);
	for (size_t k = 1; k < len; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[k] & 0x3f);
	}
	if (cp < min[len] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

static void test_utf8_char_len(void **state)
{
	unsigned char b[4];

	(void)state;
	for (unsigned x = 0x80; x < 0x1000000; x++) {
		b[0] = (unsigned char)(x >> 16 | 0x80);
		b[1] = (unsigned char)(x >> 8);
		b[2] = (unsigned char)x;
		if (x >> 16 == 0 && x < 0x100) {   /* one and two bytes */
			b[0] = (unsigned char)x;
			for (unsigned y = 0; y < 256; y++) {
				b[1] = (unsigned char)y;
				assert_int_equal(utf8_char_len(b, 2), reference_len(b, 2));
				assert_int_equal(utf8_char_len(b, 1), reference_len(b, 1));
			}
			continue;
		}
		assert_int_equal(utf8_char_len(b, 3), reference_len(b, 3));
	}
	for (unsigned x = 0xf0; x < 0x100; x++)
		for (unsigned y = 0; y < 256; y++) {
			b[0] = (unsigned char)x;
			b[1] = (unsigned char)y;
			b[2] = b[3] = 0x80;
			assert_int_equal(utf8_char_len(b, 4), reference_len(b, 4));
			assert_int_equal(utf8_char_len(b, 3), reference_len(b, 3));
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_plain_len_one_byte_anywhere),
		cmocka_unit_test(test_plain_len_pairs),
		cmocka_unit_test(test_utf8_char_len),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
