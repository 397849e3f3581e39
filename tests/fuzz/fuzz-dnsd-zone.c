/* fuzz: p2p-dnsd */
/* fuzz-dnsd-zone.c: one query, as p2p-dnsd gets it, through
 * dns_parse_query() and then the private zones (zone.c) of a fixed map
 * with names, wildcards at two depths, IPv6, an address that does not
 * parse, and the overlay's reverse zone: the hash look-up, the wildcard
 * walk over the name's suffixes and the PTR name reading all see the
 * client's bytes.
 *
 * Checks beyond the sanitizers: zones_try_answer says private exactly when
 * zones_private does, and then answers byte for byte as zones_answer does;
 * the answer is within the client's limit, a response with the query's id
 * and the question echoed, NOERROR or NXDOMAIN, authoritative. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "fuzz-dnsd-zone: %s:%d: check failed: %s\n",     \
				__FILE__, __LINE__, #cond);                              \
			abort();                                                         \
		}                                                                        \
	} while (0)

static const char *settings =
	"{\"overlay\":\"100.96.0.0/12\",\"dns\":{\"zones\":[\"example.internal\","
	"\"sub.example.internal\",\"corp.test\"],\"ttl\":30}}";
static const char *resources =
	"{\"vault\":{\"names\":[\"vault.example.internal\",\"v.corp.test\"],\"addr\":\"100.104.0.20\"},"
	"\"apps\":{\"names\":[\"apps.example.internal\",\"*.apps.example.internal\"],"
	"\"addr\":\"100.104.0.21\"},"
	"\"deep\":{\"names\":[\"*.x.apps.example.internal\"],\"addr\":\"100.104.0.22\"},"
	"\"git\":{\"names\":[\"git.sub.example.internal\"],\"addr\":\"100.104.0.23\"},"
	"\"six\":{\"names\":[\"six.example.internal\",\"*.corp.test\"],\"addr\":\"fd00::1\"},"
	"\"odd\":{\"names\":[\"odd.example.internal\"],\"addr\":\"not an address\"}}";

static struct zones *zones(void)
{
	static struct zones *z;
	json_error_t err;
	json_t *s, *r;

	if (z)
		return z;
	z = zones_new();
	s = json_loads(settings, 0, &err);
	r = json_loads(resources, 0, &err);
	CHECK(z && s && r);
	CHECK(zones_load(z, s, r, 3) == 0);
	json_decref(s);
	json_decref(r);
	return z;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t a[DNSD_MAX_MSG], b[DNSD_MAX_MSG];
	struct zones *z = zones();
	struct dnsd_stats st = { 0 };
	struct dns_query q;
	size_t limit, na, nb;
	int private;

	if (dns_parse_query(data, size, &q) != DNS_OK || q.qclass != DNS_CLASS_IN)
		return 0;
	/* The id's low bit picks UDP (the client's limit) or TCP. */
	limit = q.id & 1 ? DNSD_MAX_MSG : dns_udp_limit(&q);
	na = zones_try_answer(z, &q, a, sizeof a, limit, &st, &private);
	CHECK(private == zones_private(z, q.name));
	if (!private) {
		CHECK(na == 0);
		return 0;
	}
	nb = zones_answer(z, &q, b, sizeof b, limit, &st);
	CHECK(na == nb && !memcmp(a, b, na));
	CHECK(na >= DNS_HEADER_LEN + q.wire_name_len + 4 && na <= limit);
	CHECK(a[0] == q.id >> 8 && a[1] == (q.id & 0xff));
	CHECK((a[2] & 0x80) && (a[2] & 0x04));
	CHECK((a[3] & 0x0f) == DNS_RCODE_NOERROR || (a[3] & 0x0f) == DNS_RCODE_NXDOMAIN);
	CHECK(!memcmp(a + DNS_HEADER_LEN, data + DNS_HEADER_LEN, q.wire_name_len + 4));
	return 0;
}
