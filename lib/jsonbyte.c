/* jsonbyte.c: see jsonbyte.h. */
#include "jsonbyte.h"

#define P (JSON_PLAIN | JSON_PRINTABLE)

const unsigned char json_plain_byte[256] = {
	[0x20] = P, P, 0, P, P, P, P, P, P, P, P, P, P, P, P, P,      /* 0x22 '"' */
	[0x30] = P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P,
	[0x40] = P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P,
	[0x50] = P, P, P, P, P, P, P, P, P, P, P, P, 0, P, P, P,      /* 0x5c '\' */
	[0x60] = P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P,
	[0x70] = P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, JSON_PLAIN,   /* 0x7f DEL */
};
