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

#endif
