/* test: p2p-dnsd */
/* test-dnsd-zone.c: bin/p2p-dnsd/zone.c, the private zones answered from
 * the map. Each query is built on the wire and parsed by dns_parse_query,
 * as the server does; each answer is read back by a small decoder here
 * (pointers followed), so what is asserted is what a client sees: a name's
 * address, its case echoed, wildcards (the closest one wins), NODATA and
 * NXDOMAIN with the zone's SOA and the short negative TTL, the apex's SOA
 * and NS, the longest private zone, PTR under the overlay's reverse zone,
 * and a new map version replacing the old names entirely. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "dnsd.h"

/* ---- queries ---- */

static size_t make_query(uint8_t *m, const char *name, uint16_t type)
{
	size_t n = 0;
	const char *p = name;

	memcpy(m, "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
	n = 12;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);

		m[n++] = (uint8_t)len;
		memcpy(m + n, p, len);
		n += len;
		p += len + (dot ? 1 : 0);
	}
	m[n++] = 0;
	m[n++] = (uint8_t)(type >> 8);
	m[n++] = (uint8_t)type;
	m[n++] = 0;
	m[n++] = 1;
	return n;
}

/* ---- answers, decoded ---- */

struct rr {
	char owner[256];
	uint16_t type, class;
	uint32_t ttl;
	uint8_t rdata[512];
	size_t rdlen;
	char target[256]; /* NS, PTR: the name; SOA: MNAME */
	char rname[256];  /* SOA */
	uint32_t serial, minimum;
};

struct answer {
	int rcode, aa, tc;
	unsigned an, ns, ar;
	struct rr rr[16];
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* The name at *OFF (pointers followed, backward only) into TEXT; *OFF past it. */
static void read_name(const uint8_t *m, size_t len, size_t *off, char *text)
{
	size_t o = *off, t = 0;
	int jumped = 0;

	text[0] = '\0';
	for (int hops = 0; hops < 128; hops++) {
		assert_true(o < len);
		if ((m[o] & 0xc0) == 0xc0) {
			size_t target = (size_t)(m[o] & 0x3f) << 8 | m[o + 1];

			assert_true(o + 1 < len);
			assert_true(target < o);
			if (!jumped)
				*off = o + 2;
			jumped = 1;
			o = target;
			continue;
		}
		if (m[o] == 0) {
			if (!jumped)
				*off = o + 1;
			text[t] = '\0';
			return;
		}
		assert_true(m[o] <= 63 && o + 1 + m[o] <= len && t + m[o] + 1 < 256);
		if (t)
			text[t++] = '.';
		memcpy(text + t, m + o + 1, m[o]);
		t += m[o];
		o += 1 + (size_t)m[o];
	}
	fail_msg("pointer loop");
}

static void decode(const uint8_t *m, size_t len, struct answer *a)
{
	size_t off = 12;
	char qname[256];
	unsigned total;

	memset(a, 0, sizeof *a);
	assert_true(len >= 12);
	assert_int_equal(get16(m), 0x1234);
	assert_true(m[2] & 0x80);
	a->aa = (m[2] & 0x04) != 0;
	a->tc = (m[2] & 0x02) != 0;
	a->rcode = m[3] & 0x0f;
	assert_int_equal(get16(m + 4), 1);
	a->an = get16(m + 6);
	a->ns = get16(m + 8);
	a->ar = get16(m + 10);
	read_name(m, len, &off, qname);
	off += 4;
	total = a->an + a->ns + a->ar;
	assert_true(total <= 16);
	for (unsigned i = 0; i < total; i++) {
		struct rr *r = &a->rr[i];
		size_t end;

		read_name(m, len, &off, r->owner);
		assert_true(off + 10 <= len);
		r->type = get16(m + off);
		r->class = get16(m + off + 2);
		r->ttl = get32(m + off + 4);
		r->rdlen = get16(m + off + 8);
		off += 10;
		end = off + r->rdlen;
		assert_true(end <= len && r->rdlen <= sizeof r->rdata);
		memcpy(r->rdata, m + off, r->rdlen);
		if (r->type == DNS_TYPE_NS || r->type == DNS_TYPE_PTR || r->type == DNS_TYPE_SOA) {
			size_t o = off;

			read_name(m, len, &o, r->target);
			if (r->type == DNS_TYPE_SOA) {
				read_name(m, len, &o, r->rname);
				assert_true(o + 20 == end);
				r->serial = get32(m + o);
				r->minimum = get32(m + o + 16);
			} else {
				assert_true(o == end);
			}
		}
		off = end;
	}
	assert_int_equal(off, len); /* nothing after the records */
}

/* ---- the map ---- */

static struct zones *Z;
static struct dnsd_stats St;

static void load(const char *settings, const char *resources, json_int_t version)
{
	json_error_t err;
	json_t *s = json_loads(settings, 0, &err), *r = json_loads(resources, 0, &err);

	assert_non_null(s);
	assert_non_null(r);
	assert_int_equal(zones_load(Z, s, r, version), 0);
	json_decref(s);
	json_decref(r);
}

static int setup(void **state)
{
	(void)state;
	Z = zones_new();
	assert_non_null(Z);
	memset(&St, 0, sizeof St);
	load("{\"overlay\":\"100.96.0.0/12\",\"dns\":{\"zones\":[\"Example.Internal.\","
	     "\"sub.example.internal\"],\"ttl\":30}}",
	     "{\"vault\":{\"names\":[\"vault.example.internal\"],\"addr\":\"100.104.0.20\"},"
	     "\"apps\":{\"names\":[\"apps.example.internal\",\"*.apps.example.internal\"],"
	     "\"addr\":\"100.104.0.21\"},"
	     "\"deep\":{\"names\":[\"*.x.apps.example.internal\"],\"addr\":\"100.104.0.22\"},"
	     "\"git\":{\"names\":[\"Git.Sub.Example.Internal\"],\"addr\":\"100.104.0.23\"},"
	     "\"six\":{\"names\":[\"six.example.internal\"],\"addr\":\"fd00::1\"},"
	     "\"pending\":{\"names\":[\"pending.example.internal\"]}}",
	     7);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	zones_free(Z);
	return 0;
}

/* Ask NAME/TYPE: the answer decoded into A. */
static void ask(const char *name, uint16_t type, struct answer *a)
{
	uint8_t m[512], out[2048];
	struct dns_query q;
	size_t n = make_query(m, name, type), len;

	assert_int_equal(dns_parse_query(m, n, &q), DNS_OK);
	assert_true(zones_private(Z, q.name));
	len = zones_answer(Z, &q, out, sizeof out, dns_udp_limit(&q), &St);
	assert_true(len > 12);
	decode(out, len, a);
}

static void assert_a(const struct rr *r, const char *owner, const char *addr)
{
	char text[INET6_ADDRSTRLEN];

	assert_string_equal(r->owner, owner);
	assert_int_equal(r->type, DNS_TYPE_A);
	assert_int_equal(r->class, DNS_CLASS_IN);
	assert_int_equal(r->rdlen, 4);
	assert_non_null(inet_ntop(AF_INET, r->rdata, text, sizeof text));
	assert_string_equal(text, addr);
}

static void assert_soa(const struct rr *r, const char *zone, uint32_t ttl)
{
	char mname[300], rname[300];

	snprintf(mname, sizeof mname, "dns.%s", zone);
	snprintf(rname, sizeof rname, "hostmaster.%s", zone);
	assert_int_equal(r->type, DNS_TYPE_SOA);
	assert_string_equal(r->owner, zone);
	assert_int_equal(r->ttl, ttl);
	assert_string_equal(r->target, mname);
	assert_string_equal(r->rname, rname);
	assert_int_equal(r->serial, 7);
	assert_int_equal(r->minimum, DNSD_NEGATIVE_TTL);
}

/* ---- tests ---- */

static void test_name_address(void **state)
{
	struct answer a;

	(void)state;
	ask("vault.example.internal", DNS_TYPE_A, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_true(a.aa);
	assert_false(a.tc);
	assert_int_equal(a.an, 1);
	assert_int_equal(a.ns, 0);
	assert_int_equal(a.ar, 0);
	assert_a(&a.rr[0], "vault.example.internal", "100.104.0.20");
	assert_int_equal(a.rr[0].ttl, 30);
	/* A name of the map written in mixed case is found in any case. */
	ask("git.sub.example.internal", DNS_TYPE_A, &a);
	assert_a(&a.rr[0], "git.sub.example.internal", "100.104.0.23");
	assert_int_equal(St.private_answers, 2);
	assert_int_equal(St.nxdomain, 0);
}

static void test_case_echoed(void **state)
{
	struct answer a;

	(void)state;
	ask("VaUlT.eXaMpLe.InTeRnAl", DNS_TYPE_A, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_a(&a.rr[0], "VaUlT.eXaMpLe.InTeRnAl", "100.104.0.20");
	ask("FOO.APPS.EXAMPLE.INTERNAL", DNS_TYPE_A, &a);
	assert_a(&a.rr[0], "FOO.APPS.EXAMPLE.INTERNAL", "100.104.0.21");
}

static void test_wildcards(void **state)
{
	struct answer a;

	(void)state;
	ask("apps.example.internal", DNS_TYPE_A, &a);
	assert_a(&a.rr[0], "apps.example.internal", "100.104.0.21");
	ask("foo.apps.example.internal", DNS_TYPE_A, &a);
	assert_a(&a.rr[0], "foo.apps.example.internal", "100.104.0.21");
	ask("a.b.apps.example.internal", DNS_TYPE_A, &a);
	assert_a(&a.rr[0], "a.b.apps.example.internal", "100.104.0.21");
	/* The closest wildcard wins; the wildcard's own suffix is no name. */
	ask("y.x.apps.example.internal", DNS_TYPE_A, &a);
	assert_a(&a.rr[0], "y.x.apps.example.internal", "100.104.0.22");
	ask("x.apps.example.internal", DNS_TYPE_A, &a);
	assert_a(&a.rr[0], "x.apps.example.internal", "100.104.0.21");
	/* A byte no map name holds still matches a wildcard (the question's
	 * own name is echoed by pointer). */
	ask("w!x.apps.example.internal", DNS_TYPE_A, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_a(&a.rr[0], "w!x.apps.example.internal", "100.104.0.21");
}

static void test_nxdomain_and_nodata(void **state)
{
	struct answer a;

	(void)state;
	ask("nothing.example.internal", DNS_TYPE_A, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NXDOMAIN);
	assert_true(a.aa);
	assert_int_equal(a.an, 0);
	assert_int_equal(a.ns, 1);
	assert_soa(&a.rr[0], "example.internal", DNSD_NEGATIVE_TTL);
	assert_int_equal(St.nxdomain, 1);
	/* A resource without an address (yet) does not exist. */
	ask("pending.example.internal", DNS_TYPE_A, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NXDOMAIN);
	/* Other types of a name that exists: NODATA. */
	ask("vault.example.internal", DNS_TYPE_AAAA, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a.an, 0);
	assert_int_equal(a.ns, 1);
	assert_soa(&a.rr[0], "example.internal", DNSD_NEGATIVE_TTL);
	ask("vault.example.internal", DNS_TYPE_PTR, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a.an, 0);
	ask("example.internal", DNS_TYPE_A, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a.an, 0);
	assert_int_equal(a.ns, 1);
}

static void test_ipv6(void **state)
{
	struct answer a;
	char text[INET6_ADDRSTRLEN];

	(void)state;
	ask("six.example.internal", DNS_TYPE_AAAA, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a.an, 1);
	assert_int_equal(a.rr[0].type, DNS_TYPE_AAAA);
	assert_int_equal(a.rr[0].rdlen, 16);
	assert_non_null(inet_ntop(AF_INET6, a.rr[0].rdata, text, sizeof text));
	assert_string_equal(text, "fd00::1");
	ask("six.example.internal", DNS_TYPE_A, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a.an, 0);
}

static void test_apex(void **state)
{
	struct answer a;

	(void)state;
	ask("Example.Internal", DNS_TYPE_SOA, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a.an, 1);
	assert_int_equal(a.rr[0].type, DNS_TYPE_SOA);
	assert_string_equal(a.rr[0].owner, "Example.Internal");
	assert_int_equal(a.rr[0].ttl, 30);
	/* Compressed against the question, so in its case. */
	assert_string_equal(a.rr[0].target, "dns.Example.Internal");
	assert_string_equal(a.rr[0].rname, "hostmaster.Example.Internal");
	ask("example.internal", DNS_TYPE_NS, &a);
	assert_int_equal(a.an, 1);
	assert_int_equal(a.rr[0].type, DNS_TYPE_NS);
	assert_string_equal(a.rr[0].target, "dns.example.internal");
	/* The longest zone holds a name. */
	ask("sub.example.internal", DNS_TYPE_SOA, &a);
	assert_int_equal(a.an, 1);
	assert_string_equal(a.rr[0].target, "dns.sub.example.internal");
	ask("nothing.sub.example.internal", DNS_TYPE_A, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NXDOMAIN);
	assert_soa(&a.rr[0], "sub.example.internal", DNSD_NEGATIVE_TTL);
}

static void test_ptr(void **state)
{
	struct answer a;

	(void)state;
	ask("20.0.104.100.in-addr.arpa", DNS_TYPE_PTR, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a.an, 1);
	assert_int_equal(a.rr[0].type, DNS_TYPE_PTR);
	assert_string_equal(a.rr[0].target, "vault.example.internal");
	/* A resource's first name; a wildcard's suffix. */
	ask("21.0.104.100.IN-ADDR.ARPA", DNS_TYPE_PTR, &a);
	assert_string_equal(a.rr[0].owner, "21.0.104.100.IN-ADDR.ARPA");
	assert_string_equal(a.rr[0].target, "apps.example.internal");
	ask("22.0.104.100.in-addr.arpa", DNS_TYPE_PTR, &a);
	assert_string_equal(a.rr[0].target, "x.apps.example.internal");
	ask("99.0.104.100.in-addr.arpa", DNS_TYPE_PTR, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NXDOMAIN);
	assert_soa(&a.rr[0], "104.100.in-addr.arpa", DNSD_NEGATIVE_TTL);
	/* Above a PTR name: NODATA (RFC 8020); one spelt with a leading
	 * zero is no name of ours. */
	ask("0.104.100.in-addr.arpa", DNS_TYPE_PTR, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a.an, 0);
	ask("1.104.100.in-addr.arpa", DNS_TYPE_PTR, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NXDOMAIN);
	ask("020.0.104.100.in-addr.arpa", DNS_TYPE_PTR, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NXDOMAIN);
	/* The apex of a reverse zone: SOA. ANY on a PTR name: the PTR. */
	ask("96.100.in-addr.arpa", DNS_TYPE_SOA, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a.an, 1);
	ask("20.0.104.100.in-addr.arpa", DNS_TYPE_ANY, &a);
	assert_int_equal(a.an, 1);
	assert_int_equal(a.rr[0].type, DNS_TYPE_PTR);
	/* Forward names are not looked up under the reverse zone. */
	ask("vault.example.internal.104.100.in-addr.arpa", DNS_TYPE_A, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NXDOMAIN);
}

static void test_private(void **state)
{
	json_t *list;

	(void)state;
	assert_true(zones_private(Z, "example.internal"));
	assert_true(zones_private(Z, "EXAMPLE.INTERNAL."));
	assert_true(zones_private(Z, "anything.at.all.example.internal"));
	assert_true(zones_private(Z, "5.0.104.100.in-addr.arpa"));
	/* 100.96.0.0/12: exactly 96.100 to 111.100.in-addr.arpa. */
	assert_true(zones_private(Z, "96.100.in-addr.arpa"));
	assert_true(zones_private(Z, "1.2.111.100.in-addr.arpa"));
	assert_false(zones_private(Z, "1.2.112.100.in-addr.arpa"));
	assert_false(zones_private(Z, "1.0.64.100.in-addr.arpa"));
	assert_false(zones_private(Z, "100.in-addr.arpa"));
	assert_false(zones_private(Z, "internal"));
	assert_false(zones_private(Z, "xexample.internal"));
	assert_false(zones_private(Z, "example.internal.com"));
	assert_false(zones_private(Z, "4.3.2.1.in-addr.arpa"));
	assert_false(zones_private(Z, ""));
	list = zones_list(Z);
	assert_int_equal(json_array_size(list), 2 + 16);
	assert_string_equal(json_string_value(json_array_get(list, 0)), "example.internal");
	assert_string_equal(json_string_value(json_array_get(list, 1)), "sub.example.internal");
	assert_string_equal(json_string_value(json_array_get(list, 2)), "96.100.in-addr.arpa");
	assert_string_equal(json_string_value(json_array_get(list, 17)), "111.100.in-addr.arpa");
	json_decref(list);
	assert_int_equal(zones_count_names(Z), 6); /* 4 names, 2 wildcards; "pending" has no address */
}

static void test_new_version_replaces(void **state)
{
	struct answer a;

	(void)state;
	load("{\"overlay\":\"100.64.0.0/16\",\"dns\":{\"zones\":[\"corp.test\"]}}",
	     "{\"wiki\":{\"names\":[\"wiki.corp.test\"],\"addr\":\"100.64.0.9\"}}", 8);
	assert_false(zones_private(Z, "vault.example.internal"));
	assert_false(zones_private(Z, "5.0.104.100.in-addr.arpa"));
	assert_true(zones_private(Z, "9.0.64.100.in-addr.arpa"));
	assert_false(zones_private(Z, "9.0.65.100.in-addr.arpa"));
	ask("wiki.corp.test", DNS_TYPE_A, &a);
	assert_a(&a.rr[0], "wiki.corp.test", "100.64.0.9");
	assert_int_equal(a.rr[0].ttl, 5); /* the default TTL */
	ask("nothing.corp.test", DNS_TYPE_A, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NXDOMAIN);
	assert_int_equal(a.rr[0].ttl, DNSD_NEGATIVE_TTL);
	assert_int_equal(a.rr[0].serial, 8);
	assert_int_equal(zones_count_names(Z), 1);
	/* A TTL of 0: the negative TTL follows it down. */
	load("{\"dns\":{\"zones\":[\"corp.test\"],\"ttl\":0}}",
	     "{\"wiki\":{\"names\":[\"wiki.corp.test\"],\"addr\":\"100.64.0.9\"}}", 9);
	ask("nothing.corp.test", DNS_TYPE_A, &a);
	assert_int_equal(a.rr[0].ttl, 0);
	ask("wiki.corp.test", DNS_TYPE_A, &a);
	assert_int_equal(a.rr[0].ttl, 0);
	/* No overlay: no reverse zone. */
	assert_false(zones_private(Z, "9.0.64.100.in-addr.arpa"));
}

/* Names with names below them exist (NODATA, RFC 8020); ANY gets what the
 * name has. */
static void test_empty_non_terminals_and_any(void **state)
{
	struct answer a;

	(void)state;
	load("{\"overlay\":\"100.64.0.0/16\",\"dns\":{\"zones\":[\"corp.test\"]}}",
	     "{\"deep\":{\"names\":[\"a.b.c.corp.test\",\"*.w.corp.test\"],\"addr\":\"100.64.0.9\"}}", 8);
	ask("b.c.corp.test", DNS_TYPE_A, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a.an, 0);
	assert_int_equal(a.ns, 1);
	ask("C.Corp.Test", DNS_TYPE_AAAA, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	ask("w.corp.test", DNS_TYPE_A, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a.an, 0);
	ask("x.c.corp.test", DNS_TYPE_A, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NXDOMAIN);
	ask("z.a.b.c.corp.test", DNS_TYPE_A, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NXDOMAIN);
	ask("a.b.c.corp.test", DNS_TYPE_ANY, &a);
	assert_int_equal(a.an, 1);
	assert_a(&a.rr[0], "a.b.c.corp.test", "100.64.0.9");
	ask("corp.test", DNS_TYPE_ANY, &a);
	assert_int_equal(a.an, 1);
	assert_int_equal(a.rr[0].type, DNS_TYPE_SOA);
}

/* One name 40 labels under the zone: 40 parents in a table sized for four
 * a name (it filled up and a probe for a name not there never ended). */
static void test_deep_name(void **state)
{
	char name[256] = "", res[400];
	struct answer a;

	(void)state;
	for (int i = 0; i < 40; i++)
		strcat(name, "l.");
	strcat(name, "corp.test");
	snprintf(res, sizeof res, "{\"deep\":{\"names\":[\"%s\"],\"addr\":\"100.64.0.9\"}}", name);
	load("{\"overlay\":\"100.64.0.0/16\",\"dns\":{\"zones\":[\"corp.test\"]}}", res, 9);
	ask(name, DNS_TYPE_A, &a);
	assert_int_equal(a.an, 1);
	ask(name + 20, DNS_TYPE_A, &a);          /* a parent: NODATA */
	assert_int_equal(a.rcode, DNS_RCODE_NOERROR);
	assert_int_equal(a.an, 0);
	ask("nothing.corp.test", DNS_TYPE_A, &a); /* not there: NXDOMAIN, at once */
	assert_int_equal(a.rcode, DNS_RCODE_NXDOMAIN);
}

static void test_many_names(void **state)
{
	json_t *r = json_object(), *s;
	json_error_t err;
	struct answer a;
	char name[64], addr[32];

	(void)state;
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof name, "r%d.example.internal", i);
		snprintf(addr, sizeof addr, "100.100.%d.%d", i / 250, i % 250 + 1);
		json_object_set_new(r, name, json_pack("{s:[s],s:s}", "names", name, "addr", addr));
	}
	s = json_loads("{\"dns\":{\"zones\":[\"example.internal\"]}}", 0, &err);
	assert_non_null(s);
	assert_int_equal(zones_load(Z, s, r, 10), 0);
	json_decref(s);
	json_decref(r);
	assert_int_equal(zones_count_names(Z), 5000);
	for (int i = 0; i < 5000; i += 7) {
		snprintf(name, sizeof name, "R%d.example.internal", i);
		snprintf(addr, sizeof addr, "100.100.%d.%d", i / 250, i % 250 + 1);
		ask(name, DNS_TYPE_A, &a);
		assert_a(&a.rr[0], name, addr);
	}
	ask("r5000.example.internal", DNS_TYPE_A, &a);
	assert_int_equal(a.rcode, DNS_RCODE_NXDOMAIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_name_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_case_echoed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wildcards, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nxdomain_and_nodata, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apex, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ptr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_non_terminals_and_any, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_version_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deep_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_names, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
