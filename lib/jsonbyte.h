/* jsonbyte.h: the bytes a JSON string carries as they are, shared by the
 * writers and quick readers that run once a request or a record
 * (p2p-tlsterm's jw_*, p2p-audit's quick reader). */
#ifndef P2P_JSONBYTE_H
#define P2P_JSONBYTE_H

#include <stddef.h>

#define JSON_PLAIN 1      /* carried as it is (RFC 8259 section 7) */
#define JSON_PRINTABLE 2  /* and printable ASCII: not DEL */

/* JSON_PLAIN | JSON_PRINTABLE for printable ASCII but '"' and '\';
 * JSON_PLAIN alone for DEL; 0 for control bytes, '"', '\' and every byte
 * past 0x7f. */
extern const unsigned char json_plain_byte[256];

/* How many of the N bytes at S are, from the first, plain bytes of the
 * kind MASK says (JSON_PLAIN or JSON_PRINTABLE): four looked at a time
 * while four are left, as the strings of a record or a request are short
 * and a byte at a time was most of their cost. */
static inline size_t json_plain_len(const char *s, size_t n, unsigned char mask)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (end - p >= 4 && (json_plain_byte[p[0]] & json_plain_byte[p[1]] & json_plain_byte[p[2]] &
				json_plain_byte[p[3]] & mask))
		p += 4;
	while (p < end && (json_plain_byte[*p] & mask))
		p++;
	return (size_t)(p - (const unsigned char *)s);
}

/* The length of the whole UTF-8 character at P, N bytes left, as JSON
 * text may carry it (RFC 3629: no overlong form, no surrogate, nothing
 * past U+10FFFF), or 0 when none starts there. For bytes past 0x7f. */
static inline size_t utf8_char_len(const unsigned char *p, size_t n)
{
	size_t len = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 0;

	if (!len || p[0] < 0xc2 || p[0] >= 0xf5 || len > n)
		return 0;
	for (size_t k = 1; k < len; k++)
		if ((p[k] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
		return 0;
	return len;
}

#endif
