/* addr.c: address helpers over inet_pton/inet_ntop with exact checks. */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int addr_parse(const char *text, struct addr *out)
{
	memset(out, 0, sizeof *out);
	if (inet_pton(AF_INET, text, out->bytes) == 1) {
		out->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, out->bytes) == 1) {
		out->family = AF_INET6;
		return 0;
	}
	return -1;
}

size_t addr_len(const struct addr *a)
{
	return a->family == AF_INET ? 4 : 16;
}

int addr_bits(const struct addr *a)
{
	return a->family == AF_INET ? 32 : 128;
}

static int parse_decimal(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	if (s[0] == '0' && s[1] != '\0')
		return -1; /* no leading zeros: "/024" is a typo, not 24 */
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int host_bits_zero(const struct prefix *p)
{
	int bits = addr_bits(&p->addr);

	for (int i = p->len; i < bits; i++)
		if (p->addr.bytes[i / 8] & (0x80 >> (i % 8)))
			return 0;
	return 1;
}

int prefix_parse(const char *text, struct prefix *out, int allow_bare, int allow_host_bits)
{
	char buf[PREFIX_STRLEN];
	const char *slash = strchr(text, '/');
	size_t n = slash ? (size_t)(slash - text) : strlen(text);
	long len;

	memset(out, 0, sizeof *out);
	if (n >= ADDR_STRLEN)
		return -1;
	memcpy(buf, text, n);
	buf[n] = '\0';
	if (addr_parse(buf, &out->addr) < 0)
		return -1;
	if (!slash) {
		if (!allow_bare)
			return -1;
		out->len = addr_bits(&out->addr);
		return 0;
	}
	if (parse_decimal(slash + 1, 0, addr_bits(&out->addr), &len) < 0)
		return -1;
	out->len = (int)len;
	if (!allow_host_bits && !host_bits_zero(out))
		return -1;
	return 0;
}

int endpoint_parse(const char *text, struct addr *out, uint16_t *port)
{
	char buf[ADDR_STRLEN + 2];
	const char *colon;
	const char *host = text;
	size_t n;
	long p;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (!close || close[1] != ':')
			return -1;
		host = text + 1;
		n = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon)
			return -1;
		n = (size_t)(colon - text);
	}
	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, host, n);
	buf[n] = '\0';
	if (addr_parse(buf, out) < 0)
		return -1;
	if (text[0] != '[' && out->family == AF_INET6)
		return -1; /* "::1:80" is ambiguous: IPv6 needs brackets */
	if (parse_decimal(colon + 1, 1, 65535, &p) < 0)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

const char *addr_str(const struct addr *a, char buf[ADDR_STRLEN])
{
	if (!inet_ntop(a->family, a->bytes, buf, ADDR_STRLEN))
		strcpy(buf, "?");
	return buf;
}

const char *prefix_str(const struct prefix *p, char buf[PREFIX_STRLEN])
{
	char a[ADDR_STRLEN];
	size_t n;

	addr_str(&p->addr, a);
	n = strlen(a);
	memcpy(buf, a, n);
	buf[n++] = '/';
	if (p->len >= 100)
		buf[n++] = (char)('0' + p->len / 100);
	if (p->len >= 10)
		buf[n++] = (char)('0' + p->len / 10 % 10);
	buf[n++] = (char)('0' + p->len % 10);
	buf[n] = '\0';
	return buf;
}

int addr_equal(const struct addr *a, const struct addr *b)
{
	return a->family == b->family && memcmp(a->bytes, b->bytes, addr_len(a)) == 0;
}

int prefix_contains(const struct prefix *p, const struct addr *a)
{
	int full = p->len / 8, rest = p->len % 8;

	if (p->addr.family != a->family)
		return 0;
	if (memcmp(p->addr.bytes, a->bytes, (size_t)full) != 0)
		return 0;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));

		if ((p->addr.bytes[full] & mask) != (a->bytes[full] & mask))
			return 0;
	}
	return 1;
}

/* The low 64 bits of an address as a number. */
static uint64_t low64(const struct addr *a)
{
	size_t len = addr_len(a), start = len > 8 ? len - 8 : 0;
	uint64_t v = 0;

	for (size_t i = start; i < len; i++)
		v = v << 8 | a->bytes[i];
	return v;
}

uint64_t prefix_host_index(const struct prefix *p, const struct addr *a)
{
	return low64(a) - low64(&p->addr);
}

uint64_t prefix_size(const struct prefix *p)
{
	int host = addr_bits(&p->addr) - p->len;

	return host >= 64 ? UINT64_MAX : (uint64_t)1 << host;
}

void prefix_nth(const struct prefix *p, uint64_t index, struct addr *out)
{
	size_t len = addr_len(&p->addr);
	uint64_t v = low64(&p->addr) + index;

	*out = p->addr;
	for (size_t i = len; i-- > (len > 8 ? len - 8 : 0);) {
		out->bytes[i] = (uint8_t)v;
		v >>= 8;
	}
}
