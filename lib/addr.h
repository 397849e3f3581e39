/* addr.h: IPv4 and IPv6 addresses and prefixes in their usual text forms. */
#ifndef P2P_ADDR_H
#define P2P_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADDR_STRLEN 46        /* INET6_ADDRSTRLEN */
#define PREFIX_STRLEN (ADDR_STRLEN + 4)

struct addr {
	int family;           /* AF_INET or AF_INET6 */
	uint8_t bytes[16];    /* network order; IPv4 uses the first 4 */
};

struct prefix {
	struct addr addr;
	int len;
};

/* Strict parsers: no surrounding space, no zone index, IPv4 in dotted quad
 * only (inet_pton's rules). Return 0 or -1. */
int addr_parse(const char *text, struct addr *out);
/* "ADDR/LEN"; without "/LEN" a host prefix (/32 or /128) when ALLOW_HOST.
 * Host bits must be zero unless ALLOW_HOST_BITS. */
int prefix_parse(const char *text, struct prefix *out, int allow_bare, int allow_host_bits);
/* "ADDR:PORT" or "[ADDR6]:PORT"; port 1..65535. */
int endpoint_parse(const char *text, struct addr *out, uint16_t *port);

size_t addr_len(const struct addr *a);   /* 4 or 16 */
int addr_bits(const struct addr *a);     /* 32 or 128 */
const char *addr_str(const struct addr *a, char buf[ADDR_STRLEN]);
const char *prefix_str(const struct prefix *p, char buf[PREFIX_STRLEN]);
int addr_equal(const struct addr *a, const struct addr *b);
int prefix_contains(const struct prefix *p, const struct addr *a);
/* Host number of A inside P (A - network); P's host part must fit in 64 bits
 * of arithmetic, so callers limit themselves to the low 64 bits. */
uint64_t prefix_host_index(const struct prefix *p, const struct addr *a);
/* Number of addresses in P, saturated at UINT64_MAX. */
uint64_t prefix_size(const struct prefix *p);
/* Address number INDEX inside P (network + INDEX); INDEX < prefix_size. */
void prefix_nth(const struct prefix *p, uint64_t index, struct addr *out);

#endif
