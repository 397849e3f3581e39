/* test: p2p-dnsd */
/* test-dnsd-wire.c: bin/p2p-dnsd/dns-wire.c, the DNS messages p2p-dnsd
 * reads and writes. Queries are real ones (captured from kdig 3.2 and
 * dnspython 2.3, embedded as hex) or built byte by byte for the malformed
 * cases; every answer is read back by the small independent decoder below
 * (pointers followed, every length checked, the message read to its exact
 * end), so a client's view is what is asserted: the parser refuses what it
 * must, the id and the question come back as sent (0x20 case included),
 * names are compressed, truncation keeps a message that parses with TC set,
 * and EDNS sizes are honoured. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "dns-wire.h"

/* kdig @server vault.example.internal A (RD, AD, no EDNS) */
#define Q_KDIG_A "e18101200001000000000000057661756c74076578616d706c6508696e7465726e616c0000010001"
/* kdig VaUlT.eXaMpLe.InTeRnAl AAAA +edns +dnssec +cookie +nsid (kdig lower-cases
 * the name; the EDNS options are NSID, empty, and an 8-byte client COOKIE) */
#define Q_KDIG_COOKIE                                                                  \
	"a0aa01200001000000000001057661756c74076578616d706c6508696e7465726e616c00001c0001" \
	"000029100000008000001000030000000a0008b55d67e687879911"
/* kdig -x 100.96.128.20 */
#define Q_KDIG_PTR "1add01200001000000000000023230033132380239360331303007696e2d61646472046172706100000c0001"
/* kdig example.internal SOA +edns=1 (EDNS version 1) */
#define Q_KDIG_EDNS1 \
	"862f01200001000000000001076578616d706c6508696e7465726e616c00000600010000291000000100000000"
/* kdig nope.example.internal A +bufsize=4096 +padding=64 +subnet=10.1.2.0/24 */
#define Q_KDIG_PADDING                                                                 \
	"90e201200001000000000001046e6f7065076578616d706c6508696e7465726e616c0000010001" \
	"000029100000000000004f00080007000118000a0102000c0040"                           \
	"00000000000000000000000000000000000000000000000000000000000000000000000000000000" \
	"000000000000000000000000000000000000000000000000"
/* dnspython: make_query("VaUlT.eXaMpLe.InTeRnAl", "A", use_edns=0, payload=1232),
 * a 0x20 resolver's question */
#define Q_DNSPY_0X20                                                                   \
	"2a2001000001000000000001055661556c54076558614d704c6508496e5465526e416c0000010001" \
	"00002904d0000000000000"
/* dnspython: make_query("20.128.96.100.in-addr.arpa", "PTR", use_edns=0,
 * payload=1232, want_dnssec=True) */
#define Q_DNSPY_PTR_DO                                                                 \
	"0ff001000001000000000001023230033132380239360331303007696e2d61646472046172706100" \
	"000c000100002904d0000080000000"

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;

	for (; hex[0] && hex[1]; hex += 2) {
		unsigned v = 0;

		assert_true(n < cap);
		assert_int_equal(sscanf(hex, "%2x", &v), 1);
		out[n++] = (uint8_t)v;
	}
	return n;
}

/* A message assembled byte by byte. */
struct msg {
	uint8_t b[70000];
	size_t n;
};

static void put(struct msg *m, const void *p, size_t n)
{
	assert_true(m->n + n <= sizeof m->b);
	if (n > 0)
		memcpy(m->b + m->n, p, n);
	m->n += n;
}

static void put8(struct msg *m, unsigned v)
{
	uint8_t b = (uint8_t)v;

	put(m, &b, 1);
}

static void put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8);
	put8(m, v);
}

static void put32(struct msg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xffff);
}

static void header(struct msg *m, unsigned id, unsigned flags, unsigned qd, unsigned an,
		   unsigned ns, unsigned ar)
{
	m->n = 0;
	put16(m, id);
	put16(m, flags);
	put16(m, qd);
	put16(m, an);
	put16(m, ns);
	put16(m, ar);
}

/* "a.b" as labels and the root byte, no checks: the test says what it wants. */
static void name(struct msg *m, const char *text)
{
	while (*text) {
		const char *dot = strchr(text, '.');
		size_t n = dot ? (size_t)(dot - text) : strlen(text);

		put8(m, (unsigned)n);
		put(m, text, n);
		text += n + (dot ? 1 : 0);
	}
	put8(m, 0);
}

/* An OPT record: root owner, SIZE, TTL (ext rcode, version, DO), RDATA. */
static void opt(struct msg *m, unsigned size, uint32_t ttl, const uint8_t *rdata, size_t rdlen)
{
	put8(m, 0);
	put16(m, DNS_TYPE_OPT);
	put16(m, size);
	put32(m, ttl);
	put16(m, (unsigned)rdlen);
	put(m, rdata, rdlen);
}

/* The usual query: id 0x1234, RD, one question NAME/TYPE IN, AR records to follow. */
static void query(struct msg *m, const char *qname, unsigned type, unsigned ar)
{
	header(m, 0x1234, 0x0100, 1, 0, 0, ar);
	name(m, qname);
	put16(m, type);
	put16(m, DNS_CLASS_IN);
}

static enum dns_verdict parse(const struct msg *m, struct dns_query *q)
{
	return dns_parse_query(m->b, m->n, q);
}

static enum dns_verdict parse_hex(const char *hex, struct msg *m, struct dns_query *q)
{
	m->n = unhex(hex, m->b, sizeof m->b);
	return parse(m, q);
}

/* The decoder: what a client reads of an answer. */

#define MAXRR 256

struct rr {
	char owner[DNS_NAME_MAX * 4 + 1]; /* bytes outside [!-~] shown as \DDD */
	uint16_t type, class;
	uint32_t ttl;
	size_t owner_off, rdata_off;
	uint16_t rdlen;
	char target[DNS_NAME_MAX * 4 + 1]; /* NS, PTR, CNAME; SOA MNAME */
	char rname[DNS_NAME_MAX * 4 + 1];
	uint32_t soa[5];
};

struct reply {
	uint16_t id;
	uint8_t flags[2];
	uint16_t count[4];
	char qname[DNS_NAME_MAX * 4 + 1];
	size_t qname_end;
	uint16_t qtype, qclass;
	int nrr;       /* all records read */
	struct rr rr[MAXRR]; /* the first MAXRR of them */
	int opt;       /* an OPT record: index in rr[], or -1 */
};

static int get16(const uint8_t *p)
{
	return p[0] << 8 | p[1];
}

/* A name at *OFF: pointers only backward, labels <= 63, total <= 255. */
static int read_name(const uint8_t *b, size_t len, size_t *off, char *out)
{
	size_t o = *off, end = 0, total = 0, t = 0, bound = *off;
	int jumped = 0;

	for (;;) {
		unsigned n;

		if (o >= len)
			return -1;
		n = b[o];
		if ((n & 0xc0) == 0xc0) {
			size_t to;

			if (o + 1 >= len)
				return -1;
			to = (size_t)(n & 0x3f) << 8 | b[o + 1];
			if (to >= bound)
				return -1;
			if (!jumped)
				end = o + 2;
			jumped = 1;
			bound = to;
			o = to;
			continue;
		}
		if (n > 63 || (total += n + 1) > DNS_NAME_MAX)
			return -1;
		if (n == 0)
			break;
		if (o + 1 + n > len)
			return -1;
		if (t)
			out[t++] = '.';
		for (unsigned i = 1; i <= n; i++) {
			uint8_t c = b[o + i];

			if (c > ' ' && c < 0x7f)
				out[t++] = (char)c;
			else
				t += (size_t)sprintf(out + t, "\\%03u", c);
		}
		o += 1 + n;
	}
	out[t] = '\0';
	*off = jumped ? end : o + 1;
	return 0;
}

/* Read a whole answer; -1 (and a message saying where) if a client could not. */
static int decode(const uint8_t *b, size_t len, struct reply *r)
{
	size_t o = DNS_HEADER_LEN;
	int total;

	memset(r, 0, sizeof *r);
	r->opt = -1;
	if (len < DNS_HEADER_LEN)
		return -1;
	r->id = (uint16_t)get16(b);
	r->flags[0] = b[2];
	r->flags[1] = b[3];
	for (int i = 0; i < 4; i++)
		r->count[i] = (uint16_t)get16(b + 4 + 2 * i);
	if (r->count[0] > 1)
		return -1;
	if (r->count[0] == 1) {
		if (read_name(b, len, &o, r->qname) < 0 || len - o < 4)
			return -1;
		r->qname_end = o;
		r->qtype = (uint16_t)get16(b + o);
		r->qclass = (uint16_t)get16(b + o + 2);
		o += 4;
	}
	total = r->count[1] + r->count[2] + r->count[3];
	for (int i = 0; i < total; i++) {
		struct rr tmp, *rr = i < MAXRR ? &r->rr[i] : &tmp;
		size_t d;

		memset(rr, 0, sizeof *rr);
		rr->owner_off = o;
		if (read_name(b, len, &o, rr->owner) < 0 || len - o < 10) {
			print_message("decode: record %d: bad owner or header\n", i);
			return -1;
		}
		rr->type = (uint16_t)get16(b + o);
		rr->class = (uint16_t)get16(b + o + 2);
		rr->ttl = (uint32_t)get16(b + o + 4) << 16 | (uint32_t)get16(b + o + 6);
		rr->rdlen = (uint16_t)get16(b + o + 8);
		o += 10;
		rr->rdata_off = o;
		if (len - o < rr->rdlen) {
			print_message("decode: record %d: RDATA overruns\n", i);
			return -1;
		}
		d = o;
		switch (rr->type) {
		case DNS_TYPE_A:
			if (rr->rdlen != 4)
				return -1;
			break;
		case DNS_TYPE_AAAA:
			if (rr->rdlen != 16)
				return -1;
			break;
		case DNS_TYPE_NS:
		case DNS_TYPE_PTR:
		case DNS_TYPE_CNAME:
			if (read_name(b, o + rr->rdlen, &d, rr->target) < 0 || d != o + rr->rdlen)
				return -1;
			break;
		case DNS_TYPE_SOA:
			if (read_name(b, o + rr->rdlen, &d, rr->target) < 0 ||
			    read_name(b, o + rr->rdlen, &d, rr->rname) < 0 || d + 20 != o + rr->rdlen)
				return -1;
			for (int k = 0; k < 5; k++)
				rr->soa[k] = (uint32_t)get16(b + d + 4 * k) << 16 |
					     (uint32_t)get16(b + d + 4 * k + 2);
			break;
		case DNS_TYPE_OPT:
			/* RFC 6891 6.1.1: one, root owner, additional section. */
			if (r->opt >= 0 || rr->owner[0] || i < r->count[1] + r->count[2])
				return -1;
			r->opt = i;
			break;
		}
		o += rr->rdlen;
		r->nrr++;
	}
	if (o != len) {
		print_message("decode: %zu bytes after the last record\n", len - o);
		return -1;
	}
	return 0;
}

#define QR 0x80
#define AA 0x04
#define TC 0x02
#define RD 0x01
#define RA 0x80
#define AD 0x20
#define CD 0x10
#define RCODE(r) ((r)->flags[1] & 0x0f)

/* Build an answer of one A record for the question's name. */
static size_t answer_a(const struct dns_query *q, uint8_t *buf, size_t cap, const char *owner)
{
	static const uint8_t addr[4] = { 100, 96, 128, 20 };
	struct dns_builder b;

	dns_build_start(&b, buf, cap, dns_udp_limit(q), q, DNS_RCODE_NOERROR, 1, 1);
	assert_int_equal(dns_add_rr(&b, DNS_SECTION_ANSWER, owner, DNS_TYPE_A, 5, addr, 4), 0);
	return dns_build_finish(&b);
}

/* Parsing real queries. */

static void test_parse_plain_query(void **ctx)
{
	struct msg m;
	struct dns_query q;
	static const uint8_t wire[] = "\005vault\007example\010internal";

	(void)ctx;
	assert_int_equal(parse_hex(Q_KDIG_A, &m, &q), DNS_OK);
	assert_int_equal(q.id, 0xe181);
	assert_int_equal(q.opcode, 0);
	assert_true(q.rd);
	assert_true(q.ad);
	assert_false(q.cd);
	assert_string_equal(q.name, "vault.example.internal");
	assert_int_equal(q.wire_name_len, sizeof wire);
	assert_memory_equal(q.wire_name, wire, sizeof wire);
	assert_int_equal(q.qtype, DNS_TYPE_A);
	assert_int_equal(q.qclass, DNS_CLASS_IN);
	assert_false(q.edns);
	assert_int_equal(dns_udp_limit(&q), 512);

	assert_int_equal(parse_hex(Q_KDIG_PTR, &m, &q), DNS_OK);
	assert_string_equal(q.name, "20.128.96.100.in-addr.arpa");
	assert_int_equal(q.qtype, DNS_TYPE_PTR);
}

static void test_parse_edns_options_skipped(void **ctx)
{
	struct msg m;
	struct dns_query q;

	(void)ctx;
	/* NSID and COOKIE, unknown to us, stepped over. */
	assert_int_equal(parse_hex(Q_KDIG_COOKIE, &m, &q), DNS_OK);
	assert_int_equal(q.qtype, DNS_TYPE_AAAA);
	assert_true(q.edns);
	assert_int_equal(q.edns_size, 4096);
	assert_int_equal(q.edns_version, 0);
	assert_true(q.edns_do);
	assert_int_equal(dns_udp_limit(&q), DNS_EDNS_SIZE);

	/* ECS and 64 bytes of PADDING. */
	assert_int_equal(parse_hex(Q_KDIG_PADDING, &m, &q), DNS_OK);
	assert_string_equal(q.name, "nope.example.internal");
	assert_true(q.edns);
	assert_false(q.edns_do);

	/* An option with a length past the OPT record, past the message. */
	{
		static const uint8_t over[] = { 0xfd, 0xe9, 0x00, 0x05, 1, 2, 3, 4 };
		static const uint8_t half[] = { 0x00, 0x0a, 0x00 };

		query(&m, "a.example.internal", DNS_TYPE_A, 1);
		opt(&m, 1232, 0, over, sizeof over);
		assert_int_equal(parse(&m, &q), DNS_FORMERR);
		query(&m, "a.example.internal", DNS_TYPE_A, 1);
		opt(&m, 1232, 0, half, sizeof half);
		assert_int_equal(parse(&m, &q), DNS_FORMERR);
		/* RDLENGTH says more than the message has. */
		query(&m, "a.example.internal", DNS_TYPE_A, 1);
		opt(&m, 1232, 0, over, sizeof over);
		m.b[m.n - sizeof over - 1] = 0x20;
		assert_int_equal(parse(&m, &q), DNS_FORMERR);
	}
	/* Unknown options, empty ones, back to back: fine. */
	{
		static const uint8_t many[] = { 0xff, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x02,
						0xab, 0xcd, 0x12, 0x34, 0x00, 0x01, 0x07 };

		query(&m, "a.example.internal", DNS_TYPE_A, 1);
		opt(&m, 1232, 0, many, sizeof many);
		assert_int_equal(parse(&m, &q), DNS_OK);
		assert_true(q.edns);
	}
}

static void test_parse_edns_size(void **ctx)
{
	struct msg m;
	struct dns_query q;
	static const struct {
		unsigned size, stored, limit;
	} cases[] = {
		{ 0, 512, 512 },       { 100, 512, 512 },    { 511, 512, 512 },
		{ 512, 512, 512 },     { 700, 700, 700 },    { 1232, 1232, 1232 },
		{ 4096, 4096, 1232 },  { 65535, 65535, 1232 },
	};

	(void)ctx;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		query(&m, "a.example.internal", DNS_TYPE_A, 1);
		opt(&m, cases[i].size, 0, NULL, 0);
		assert_int_equal(parse(&m, &q), DNS_OK);
		assert_int_equal(q.edns_size, cases[i].stored);
		assert_int_equal(dns_udp_limit(&q), cases[i].limit);
	}
}

static void test_parse_short_and_responses_dropped(void **ctx)
{
	struct msg m;
	struct dns_query q;

	(void)ctx;
	m.n = unhex(Q_KDIG_A, m.b, sizeof m.b);
	for (size_t n = 0; n < DNS_HEADER_LEN; n++)
		assert_int_equal(dns_parse_query(m.b, n, &q), DNS_DROP);
	assert_int_equal(dns_parse_query(NULL, 0, &q), DNS_DROP);
	/* Header only: FORMERR (qdcount 1 but no question), id known. */
	assert_int_equal(dns_parse_query(m.b, DNS_HEADER_LEN, &q), DNS_FORMERR);
	assert_int_equal(q.id, 0xe181);
	/* Every truncation of the message: never OK, never a read past it. */
	for (size_t n = DNS_HEADER_LEN; n < m.n; n++)
		assert_int_equal(dns_parse_query(m.b, n, &q), DNS_FORMERR);
	/* QR set: a response, never answered (whatever else it holds). */
	m.b[2] |= 0x80;
	assert_int_equal(parse(&m, &q), DNS_DROP);
	m.b[4] = 7;
	assert_int_equal(parse(&m, &q), DNS_DROP);
}

static void test_parse_opcode_notimp(void **ctx)
{
	struct msg m;
	struct dns_query q;
	struct reply r;
	uint8_t out[512];
	size_t n;

	(void)ctx;
	/* An UPDATE (opcode 5), or any opcode but QUERY. */
	for (unsigned op = 1; op < 16; op++) {
		query(&m, "example.internal", DNS_TYPE_SOA, 0);
		m.b[2] = (uint8_t)(op << 3 | 0x01);
		assert_int_equal(parse(&m, &q), DNS_NOTIMP);
		assert_int_equal(q.opcode, op);
		n = dns_build_error(out, sizeof out, m.b, m.n, &q, DNS_RCODE_NOTIMP);
		assert_int_equal(decode(out, n, &r), 0);
		assert_int_equal(r.id, 0x1234);
		assert_int_equal(r.flags[0], QR | op << 3 | RD); /* opcode copied (RFC 1035 4.1.1) */
		assert_int_equal(RCODE(&r), DNS_RCODE_NOTIMP);
		assert_int_equal(r.count[0] + r.count[1] + r.count[2] + r.count[3], 0);
	}
}

static void test_parse_counts_refused(void **ctx)
{
	struct msg m;
	struct dns_query q;
	struct reply r;
	uint8_t out[512];
	size_t n;

	(void)ctx;
	/* QDCOUNT 0. */
	header(&m, 0x4242, 0x0100, 0, 0, 0, 0);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	/* QDCOUNT 2, both questions present. */
	header(&m, 0x4242, 0x0100, 2, 0, 0, 0);
	name(&m, "a.example.internal");
	put32(&m, 0x00010001);
	name(&m, "b.example.internal");
	put32(&m, 0x00010001);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	n = dns_build_error(out, sizeof out, m.b, m.n, &q, DNS_RCODE_FORMERR);
	assert_int_equal(decode(out, n, &r), 0);
	assert_int_equal(r.id, 0x4242);
	assert_int_equal(r.flags[0], QR | RD);
	assert_int_equal(RCODE(&r), DNS_RCODE_FORMERR);
	assert_int_equal(r.count[0], 0); /* which question would it be? */
	/* ANCOUNT 1, with an answer record present; NSCOUNT 1 likewise. */
	for (int section = 0; section < 2; section++) {
		header(&m, 0x4242, 0x0100, 1, section == 0, section == 1, 0);
		name(&m, "a.example.internal");
		put32(&m, 0x00010001);
		put16(&m, 0xc00c);
		put16(&m, DNS_TYPE_A);
		put16(&m, DNS_CLASS_IN);
		put32(&m, 5);
		put16(&m, 4);
		put32(&m, 0x64608014);
		assert_int_equal(parse(&m, &q), DNS_FORMERR);
	}
	/* ARCOUNT 1 and nothing there; ARCOUNT 2 and one OPT. */
	query(&m, "a.example.internal", DNS_TYPE_A, 1);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	query(&m, "a.example.internal", DNS_TYPE_A, 2);
	opt(&m, 1232, 0, NULL, 0);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	/* A question without its class. */
	query(&m, "a.example.internal", DNS_TYPE_A, 0);
	m.n -= 2;
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	assert_int_equal(q.wire_name_len, 0); /* not echoed */
	/* An OPT record cut short. */
	query(&m, "a.example.internal", DNS_TYPE_A, 1);
	opt(&m, 1232, 0, NULL, 0);
	m.n -= 3;
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
}

static void test_parse_trailing_garbage(void **ctx)
{
	struct msg m;
	struct dns_query q;
	struct reply r;
	uint8_t out[512];
	size_t n;

	(void)ctx;
	query(&m, "VaUlT.example.internal", DNS_TYPE_A, 0);
	put8(&m, 0);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	/* The question read, so the FORMERR carries it: the client can match it. */
	n = dns_build_error(out, sizeof out, m.b, m.n, &q, DNS_RCODE_FORMERR);
	assert_int_equal(decode(out, n, &r), 0);
	assert_int_equal(r.count[0], 1);
	assert_string_equal(r.qname, "VaUlT.example.internal");
	assert_int_equal(RCODE(&r), DNS_RCODE_FORMERR);
	assert_int_equal(r.opt, -1);
	/* After an OPT too; that FORMERR carries OPT (RFC 6891 6.1.1). */
	query(&m, "a.example.internal", DNS_TYPE_A, 1);
	opt(&m, 1232, 0, NULL, 0);
	put(&m, "junk", 4);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	n = dns_build_error(out, sizeof out, m.b, m.n, &q, DNS_RCODE_FORMERR);
	assert_int_equal(decode(out, n, &r), 0);
	assert_true(r.opt >= 0);
	/* With a NULL query, the header alone. */
	n = dns_build_error(out, sizeof out, m.b, m.n, NULL, DNS_RCODE_FORMERR);
	assert_int_equal(n, DNS_HEADER_LEN);
	assert_int_equal(decode(out, n, &r), 0);
	assert_int_equal(r.id, 0x1234);
	assert_int_equal(r.count[0] + r.count[3], 0);
	/* Nothing for less than a header. */
	assert_int_equal(dns_build_error(out, sizeof out, m.b, 11, NULL, DNS_RCODE_FORMERR), 0);
	assert_int_equal(dns_build_error(out, sizeof out, NULL, 0, NULL, DNS_RCODE_FORMERR), 0);
}

static void test_error_from_query_alone(void **ctx)
{
	struct msg m;
	struct dns_query q;
	struct reply r;
	uint8_t out[512];
	size_t n;

	(void)ctx;
	/* The query parsed, the message gone (a forwarded query timed out). */
	assert_int_equal(parse_hex(Q_DNSPY_PTR_DO, &m, &q), DNS_OK);
	q.cd = 1;
	memset(m.b, 0, m.n);
	n = dns_build_error(out, sizeof out, NULL, 0, &q, DNS_RCODE_SERVFAIL);
	assert_int_equal(decode(out, n, &r), 0);
	assert_int_equal(r.id, 0x0ff0);
	assert_int_equal(r.flags[0], QR | RD);
	assert_int_equal(r.flags[1], CD | DNS_RCODE_SERVFAIL);
	assert_int_equal(r.count[0], 1);
	assert_string_equal(r.qname, "20.128.96.100.in-addr.arpa");
	assert_int_equal(r.qtype, DNS_TYPE_PTR);
	assert_int_equal(r.nrr, 1);
	assert_int_equal(r.opt, 0);
	assert_int_equal(r.rr[0].ttl, 0x00008000);
	assert_int_equal(n, 12 + 32 + 11);
	/* A CAP too small for it: nothing. */
	assert_int_equal(dns_build_error(out, 50, NULL, 0, &q, DNS_RCODE_SERVFAIL), 0);
}

/* A question whose name is LABELS labels of LEN bytes ('a'), then one of LAST. */
static void long_name(struct msg *m, int labels, int len, int last)
{
	header(m, 0x1234, 0x0100, 1, 0, 0, 0);
	for (int i = 0; i <= labels; i++) {
		int n = i < labels ? len : last;

		if (n == 0)
			break;
		put8(m, (unsigned)n);
		for (int k = 0; k < n; k++)
			put8(m, 'a' + (unsigned)(k % 26));
	}
	put8(m, 0);
	put32(m, 0x00010001);
}

static void test_parse_name_limits(void **ctx)
{
	struct msg m;
	struct dns_query q;

	(void)ctx;
	/* Label of 63: fine; 64 (0x40, an obsolete label type) refused. */
	long_name(&m, 1, 63, 0);
	assert_int_equal(parse(&m, &q), DNS_OK);
	assert_int_equal(strlen(q.name), 63);
	long_name(&m, 1, 64, 0);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	/* 255 bytes on the wire (3 x 64 + 62 + root): the longest name, 253
	 * characters; one more byte is refused. */
	long_name(&m, 3, 63, 61);
	assert_int_equal(parse(&m, &q), DNS_OK);
	assert_int_equal(q.wire_name_len, 255);
	assert_int_equal(strlen(q.name), 253);
	long_name(&m, 3, 63, 62);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	long_name(&m, 200, 1, 0);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	/* The root: "" */
	query(&m, "", DNS_TYPE_NS, 0);
	assert_int_equal(parse(&m, &q), DNS_OK);
	assert_string_equal(q.name, "");
	assert_int_equal(q.wire_name_len, 1);
}

static void test_parse_label_bytes(void **ctx)
{
	struct msg m;
	struct dns_query q;
	static const uint8_t refused[] = { 0x00, 0x01, 0x1f, ' ', '.', '\\', 0x7f, 0x80, 0xc3, 0xff };

	(void)ctx;
	/* Kept, case and all: printable bytes that are not '.' or '\'. */
	query(&m, "_sip._tcp.Host-1.*.x!y~z.example.internal", DNS_TYPE_A, 0);
	assert_int_equal(parse(&m, &q), DNS_OK);
	assert_string_equal(q.name, "_sip._tcp.Host-1.*.x!y~z.example.internal");
	/* Refused: control bytes, space, '.', '\' (libunbound reads the name
	 * as text, escapes and all), DEL, non-ASCII. */
	for (size_t i = 0; i < sizeof refused; i++) {
		query(&m, "abc.example.internal", DNS_TYPE_A, 0);
		m.b[DNS_HEADER_LEN + 2] = refused[i];
		assert_int_equal(parse(&m, &q), DNS_FORMERR);
		assert_int_equal(q.wire_name_len, 0);
		assert_string_equal(q.name, "");
	}
}

static void test_parse_compression_refused(void **ctx)
{
	struct msg m;
	struct dns_query q;

	(void)ctx;
	/* A pointer in the question, to itself, and to the header. */
	header(&m, 0x1234, 0x0100, 1, 0, 0, 0);
	put8(&m, 1);
	put8(&m, 'a');
	put16(&m, 0xc00c);
	put32(&m, 0x00010001);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	header(&m, 0x1234, 0x0100, 1, 0, 0, 0);
	put16(&m, 0xc00c);
	put32(&m, 0x00010001);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	header(&m, 0x1234, 0x0100, 1, 0, 0, 0);
	put16(&m, 0xc002);
	put32(&m, 0x00010001);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	/* The 0x80 label type. */
	header(&m, 0x1234, 0x0100, 1, 0, 0, 0);
	put16(&m, 0x8001);
	put8(&m, 0);
	put32(&m, 0x00010001);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
}

/* An additional record (type 250, TSIG, say) whose owner is OWNER_BYTES. */
static void with_additional(struct msg *m, const uint8_t *owner, size_t n)
{
	query(m, "a.example.internal", DNS_TYPE_A, 1);
	put(m, owner, n);
	put16(m, 250);
	put16(m, 255);
	put32(m, 0);
	put16(m, 2);
	put16(m, 0xabcd);
}

static void test_parse_additional_pointers(void **ctx)
{
	struct msg m;
	struct dns_query q;
	/* Offsets: the question's name at 12, "example.internal" at 14. */
	const uint8_t to_question[] = { 0xc0, 12 };
	const uint8_t key_then_pointer[] = { 3, 'k', 'e', 'y', 0xc0, 14 };
	const uint8_t forward[] = { 0xc0, 60 };
	uint8_t self[2], loop[4];

	(void)ctx;
	/* Backward pointers, as a TSIG key name may have: stepped over. */
	with_additional(&m, to_question, sizeof to_question);
	assert_int_equal(parse(&m, &q), DNS_OK);
	with_additional(&m, key_then_pointer, sizeof key_then_pointer);
	assert_int_equal(parse(&m, &q), DNS_OK);
	assert_false(q.edns);
	/* Forward, to itself, a loop of two: refused. */
	with_additional(&m, forward, sizeof forward);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	query(&m, "a.example.internal", DNS_TYPE_A, 1);
	self[0] = (uint8_t)(0xc0 | m.n >> 8);
	self[1] = (uint8_t)m.n;
	with_additional(&m, self, sizeof self);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	/* "x" at P and a pointer back to P: x.x.x.x... for ever. */
	query(&m, "a.example.internal", DNS_TYPE_A, 1);
	{
		size_t p = m.n;

		loop[0] = 1;
		loop[1] = 'x';
		loop[2] = (uint8_t)(0xc0 | p >> 8);
		loop[3] = (uint8_t)p;
	}
	with_additional(&m, loop, 4);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	/* Two pointers at P and P + 2 pointing at each other. */
	query(&m, "a.example.internal", DNS_TYPE_A, 1);
	{
		size_t p = m.n;

		loop[0] = (uint8_t)(0xc0 | (p + 2) >> 8);
		loop[1] = (uint8_t)(p + 2);
		loop[2] = (uint8_t)(0xc0 | p >> 8);
		loop[3] = (uint8_t)p;
	}
	with_additional(&m, loop, 4);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	/* A pointer whose second byte is missing. */
	query(&m, "a.example.internal", DNS_TYPE_A, 1);
	put8(&m, 0xc0);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
}

static void test_parse_opt_rules(void **ctx)
{
	struct msg m;
	struct dns_query q;

	(void)ctx;
	/* Two OPTs. */
	query(&m, "a.example.internal", DNS_TYPE_A, 2);
	opt(&m, 1232, 0, NULL, 0);
	opt(&m, 1232, 0, NULL, 0);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	assert_false(q.edns);
	/* OPT owned by a name. */
	query(&m, "a.example.internal", DNS_TYPE_A, 1);
	name(&m, "a");
	put16(&m, DNS_TYPE_OPT);
	put16(&m, 1232);
	put32(&m, 0);
	put16(&m, 0);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	/* ... or by a pointer to the question's name. */
	query(&m, "a.example.internal", DNS_TYPE_A, 1);
	put16(&m, 0xc00c);
	put16(&m, DNS_TYPE_OPT);
	put16(&m, 1232);
	put32(&m, 0);
	put16(&m, 0);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	/* OPT in the answer or authority section: those counts must be 0. */
	header(&m, 0x1234, 0x0100, 1, 1, 0, 0);
	name(&m, "a.example.internal");
	put32(&m, 0x00010001);
	opt(&m, 1232, 0, NULL, 0);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	header(&m, 0x1234, 0x0100, 1, 0, 1, 0);
	name(&m, "a.example.internal");
	put32(&m, 0x00010001);
	opt(&m, 1232, 0, NULL, 0);
	assert_int_equal(parse(&m, &q), DNS_FORMERR);
	/* OPT after another additional record: fine. */
	query(&m, "a.example.internal", DNS_TYPE_A, 2);
	put16(&m, 0xc00c);
	put16(&m, 250);
	put16(&m, 255);
	put32(&m, 0);
	put16(&m, 0);
	opt(&m, 1400, 0x00008000, NULL, 0);
	assert_int_equal(parse(&m, &q), DNS_OK);
	assert_true(q.edns);
	assert_true(q.edns_do);
	assert_int_equal(q.edns_size, 1400);
}

static void test_edns_version_1_badvers(void **ctx)
{
	struct msg m;
	struct dns_query q;
	struct reply r;
	uint8_t out[512];
	size_t n;
	uint8_t *ttl;

	(void)ctx;
	/* The parser reads it; the caller sees edns_version and answers BADVERS. */
	assert_int_equal(parse_hex(Q_KDIG_EDNS1, &m, &q), DNS_OK);
	assert_true(q.edns);
	assert_int_equal(q.edns_version, 1);
	n = dns_build_error(out, sizeof out, m.b, m.n, &q, DNS_RCODE_BADVERS);
	assert_int_equal(decode(out, n, &r), 0);
	assert_int_equal(r.id, 0x862f);
	assert_int_equal(r.count[0], 1);
	assert_string_equal(r.qname, "example.internal");
	/* BADVERS is 16: 0 in the header, 1 in OPT's extended RCODE, and we
	 * speak version 0. */
	assert_int_equal(RCODE(&r), 0);
	assert_true(r.opt >= 0);
	assert_int_equal(r.rr[r.opt].class, DNS_EDNS_SIZE);
	ttl = out + r.rr[r.opt].rdata_off - 6;
	assert_int_equal(ttl[0], 1);
	assert_int_equal(ttl[1], 0);
	/* A version 1 OPT with options laid out otherwise is not read into. */
	{
		static const uint8_t odd[] = { 0xff };

		query(&m, "a.example.internal", DNS_TYPE_A, 1);
		opt(&m, 1232, 0x00010000, odd, sizeof odd);
		assert_int_equal(parse(&m, &q), DNS_OK);
		assert_int_equal(q.edns_version, 1);
	}
	/* Without EDNS, 16 cannot be said: SERVFAIL. */
	query(&m, "a.example.internal", DNS_TYPE_A, 0);
	assert_int_equal(parse(&m, &q), DNS_OK);
	n = dns_build_error(out, sizeof out, m.b, m.n, &q, DNS_RCODE_BADVERS);
	assert_int_equal(decode(out, n, &r), 0);
	assert_int_equal(RCODE(&r), DNS_RCODE_SERVFAIL);
	assert_int_equal(r.opt, -1);
}

/* Building answers. */

static void test_answer_header_and_question(void **ctx)
{
	struct msg m;
	struct dns_query q;
	struct reply r;
	uint8_t out[DNS_EDNS_SIZE];
	size_t n;
	struct dns_builder b;

	(void)ctx;
	assert_int_equal(parse_hex(Q_KDIG_COOKIE, &m, &q), DNS_OK);
	n = answer_a(&q, out, sizeof out, "vault.example.internal");
	assert_int_equal(decode(out, n, &r), 0);
	assert_int_equal(r.id, 0xa0aa);
	assert_int_equal(r.flags[0], QR | AA | RD);
	assert_int_equal(r.flags[1], RA); /* AD never set: we validate nothing */
	/* The question byte for byte. */
	assert_int_equal(r.qname_end + 4, DNS_HEADER_LEN + q.wire_name_len + 4);
	assert_memory_equal(out + DNS_HEADER_LEN, m.b + DNS_HEADER_LEN, q.wire_name_len + 4);
	assert_int_equal(r.count[1], 1);
	assert_int_equal(r.count[3], 1);
	assert_int_equal(r.rr[0].type, DNS_TYPE_A);
	assert_int_equal(r.rr[0].ttl, 5);
	/* OPT: our size, version 0, DO echoed, no options. */
	assert_int_equal(r.opt, 1);
	assert_int_equal(r.rr[1].class, DNS_EDNS_SIZE);
	assert_int_equal(r.rr[1].ttl, 0x00008000);
	assert_int_equal(r.rr[1].rdlen, 0);

	/* CD echoed, RD clear echoed, NXDOMAIN, not authoritative, no RA. */
	query(&m, "nope.example.internal", DNS_TYPE_A, 0);
	m.b[2] = 0x00;
	m.b[3] = CD;
	assert_int_equal(parse(&m, &q), DNS_OK);
	dns_build_start(&b, out, sizeof out, 512, &q, DNS_RCODE_NXDOMAIN, 0, 0);
	n = dns_build_finish(&b);
	assert_int_equal(n, m.n);
	assert_int_equal(decode(out, n, &r), 0);
	assert_int_equal(r.flags[0], QR);
	assert_int_equal(r.flags[1], CD | DNS_RCODE_NXDOMAIN);
	/* Finishing again changes nothing. */
	assert_int_equal(dns_build_finish(&b), n);
	assert_int_equal(decode(out, n, &r), 0);
}

static void test_answer_0x20_case(void **ctx)
{
	struct msg m;
	struct dns_query q;
	struct reply r;
	uint8_t out[DNS_EDNS_SIZE];
	size_t n;

	(void)ctx;
	assert_int_equal(parse_hex(Q_DNSPY_0X20, &m, &q), DNS_OK);
	assert_string_equal(q.name, "VaUlT.eXaMpLe.InTeRnAl");
	/* The zone knows it in lower case; the answer carries the client's. */
	assert_true(dns_name_in_zone(q.name, "example.internal"));
	n = answer_a(&q, out, sizeof out, "vault.example.internal");
	assert_int_equal(decode(out, n, &r), 0);
	assert_string_equal(r.qname, "VaUlT.eXaMpLe.InTeRnAl");
	assert_string_equal(r.rr[0].owner, "VaUlT.eXaMpLe.InTeRnAl");
	assert_int_equal(out[r.rr[0].owner_off], 0xc0);
	assert_int_equal(out[r.rr[0].owner_off + 1], 12);
	/* Whatever case the owner is given in. */
	n = answer_a(&q, out, sizeof out, "VAULT.EXAMPLE.INTERNAL.");
	assert_int_equal(decode(out, n, &r), 0);
	assert_string_equal(r.rr[0].owner, "VaUlT.eXaMpLe.InTeRnAl");
	/* 12 + 24 + 4 + (2 + 10 + 4) + 11 */
	assert_int_equal(n, 67);

	/* A name with bytes we never write ("*.example.internal" matched
	 * "Foo!Bar"): as the question's own name, it is still answered. */
	query(&m, "Foo!Bar.example.internal", DNS_TYPE_A, 0);
	assert_int_equal(parse(&m, &q), DNS_OK);
	n = answer_a(&q, out, sizeof out, q.name);
	assert_int_equal(decode(out, n, &r), 0);
	assert_string_equal(r.rr[0].owner, "Foo!Bar.example.internal");
	assert_int_equal(get16(out + r.rr[0].owner_off), 0xc00c);
	{
		struct dns_builder b;

		dns_build_start(&b, out, sizeof out, 512, &q, 0, 1, 1);
		assert_int_equal(dns_add_rr(&b, 0, "x!y.example.internal", DNS_TYPE_A, 5,
					    out, 4), -1);
		assert_false(b.truncated);
	}
}

static void test_answer_compression_ptr_soa(void **ctx)
{
	struct msg m;
	struct dns_query q;
	struct reply r;
	uint8_t out[DNS_EDNS_SIZE];
	struct dns_builder b;
	size_t n, plain;

	(void)ctx;
	assert_int_equal(parse_hex(Q_DNSPY_PTR_DO, &m, &q), DNS_OK);
	dns_build_start(&b, out, sizeof out, dns_udp_limit(&q), &q, DNS_RCODE_NOERROR, 1, 1);
	assert_int_equal(dns_add_name_rr(&b, DNS_SECTION_ANSWER, "20.128.96.100.in-addr.arpa",
					 DNS_TYPE_PTR, 5, "vault.example.internal"), 0);
	assert_int_equal(dns_add_soa(&b, DNS_SECTION_AUTHORITY, "96.100.in-addr.arpa", 5,
				     "ns.example.internal", "hostmaster.example.internal", 7, 3600,
				     600, 86400, 5), 0);
	assert_int_equal(dns_add_name_rr(&b, DNS_SECTION_AUTHORITY, "96.100.in-addr.arpa",
					 DNS_TYPE_NS, 5, "ns.example.internal"), 0);
	n = dns_build_finish(&b);
	assert_int_equal(decode(out, n, &r), 0);
	assert_int_equal(r.count[1], 1);
	assert_int_equal(r.count[2], 2);
	assert_int_equal(r.count[3], 1);
	assert_true(r.flags[1] & RA);
	assert_string_equal(r.rr[0].owner, "20.128.96.100.in-addr.arpa");
	assert_string_equal(r.rr[0].target, "vault.example.internal");
	assert_string_equal(r.rr[1].owner, "96.100.in-addr.arpa");
	assert_string_equal(r.rr[1].target, "ns.example.internal");
	assert_string_equal(r.rr[1].rname, "hostmaster.example.internal");
	assert_int_equal(r.rr[1].soa[0], 7);
	assert_int_equal(r.rr[1].soa[1], 3600);
	assert_int_equal(r.rr[1].soa[2], 600);
	assert_int_equal(r.rr[1].soa[3], 86400);
	assert_int_equal(r.rr[1].soa[4], 5);
	assert_string_equal(r.rr[2].owner, "96.100.in-addr.arpa");
	assert_string_equal(r.rr[2].target, "ns.example.internal");
	/* Each name written once: the owners point into the question (PTR at
	 * 12, SOA at "96" 12 + 7), MNAME and RNAME into the PTR's target; the
	 * NS record is two pointers. */
	assert_int_equal(r.rr[0].rdlen, 24);
	assert_int_equal(r.rr[1].rdlen, 3 + 2 + 11 + 2 + 20);
	assert_int_equal(r.rr[2].rdlen, 2);
	assert_int_equal(get16(out + r.rr[1].owner_off), 0xc000 | 19);
	/* Uncompressed: 12 + 32 + (28+10+24) + (21+10+21+29+20) + (21+10+21) + 11 = 270. */
	plain = 270;
	assert_int_equal(n, 12 + 32 + (2 + 10 + 24) + (2 + 10 + 38) + (2 + 10 + 2) + 11);
	assert_true(n < plain * 2 / 3);
	/* DO echoed */
	assert_int_equal(r.rr[r.opt].ttl, 0x00008000);
}

/* Fill a reply for a query for many.example.internal A with A records until
 * one is refused; returns how many went in. */
static int fill(struct dns_builder *b, int max)
{
	int n = 0;

	for (int i = 0; i < max; i++) {
		uint8_t a[4] = { 100, 96, (uint8_t)(i >> 8), (uint8_t)i };

		if (dns_add_rr(b, DNS_SECTION_ANSWER, "many.example.internal", DNS_TYPE_A, 5, a,
			       4) < 0)
			break;
		n++;
	}
	return n;
}

static void test_truncation_at_512(void **ctx)
{
	struct msg m;
	struct dns_query q;
	static struct reply r;
	uint8_t out[4096];
	static const uint8_t a[4] = { 1, 2, 3, 4 };
	struct dns_builder b;
	size_t n;
	int added;

	(void)ctx;
	query(&m, "many.example.internal", DNS_TYPE_A, 0);
	assert_int_equal(parse(&m, &q), DNS_OK);
	dns_build_start(&b, out, sizeof out, dns_udp_limit(&q), &q, DNS_RCODE_NOERROR, 1, 1);
	added = fill(&b, 100);
	/* 12 + 27 = 39; 16 bytes a record: 29 fit in 512. */
	assert_int_equal(added, 29);
	assert_true(b.truncated);
	/* Closed now. */
	assert_int_equal(dns_add_rr(&b, DNS_SECTION_ADDITIONAL, "", DNS_TYPE_A, 5, a, 4), -1);
	n = dns_build_finish(&b);
	assert_int_equal(n, 39 + 29 * 16);
	assert_true(n <= 512);
	assert_int_equal(decode(out, n, &r), 0);
	assert_true(r.flags[0] & TC);
	assert_int_equal(r.count[1], 29);
	assert_int_equal(r.nrr, 29);
	for (int i = 0; i < 29; i++) {
		assert_string_equal(r.rr[i].owner, "many.example.internal");
		assert_int_equal(out[r.rr[i].rdata_off + 3], i);
	}

	/* The same with EDNS: 1232 less 11 for OPT, 73 records, OPT last. */
	query(&m, "many.example.internal", DNS_TYPE_A, 1);
	opt(&m, 4096, 0, NULL, 0);
	assert_int_equal(parse(&m, &q), DNS_OK);
	dns_build_start(&b, out, sizeof out, dns_udp_limit(&q), &q, DNS_RCODE_NOERROR, 1, 1);
	assert_int_equal(fill(&b, 100), 73);
	n = dns_build_finish(&b);
	assert_int_equal(n, 39 + 73 * 16 + 11);
	assert_true(n <= DNS_EDNS_SIZE);
	assert_int_equal(decode(out, n, &r), 0);
	assert_true(r.flags[0] & TC);
	assert_int_equal(r.count[1], 73);
	assert_int_equal(r.count[3], 1);
	assert_int_equal(r.opt, 73);

	/* Exactly filling the limit is not truncation. */
	dns_build_start(&b, out, sizeof out, 39 + 3 * 16 + 11, &q, DNS_RCODE_NOERROR, 1, 1);
	assert_int_equal(fill(&b, 3), 3);
	assert_false(b.truncated);
	n = dns_build_finish(&b);
	assert_int_equal(n, 39 + 3 * 16 + 11);
	assert_int_equal(decode(out, n, &r), 0);
	assert_false(r.flags[0] & TC);
}

static void test_edns_size_honoured(void **ctx)
{
	struct msg m;
	struct dns_query q;
	static struct reply r;
	uint8_t out[4096];
	struct dns_builder b;
	static const struct {
		unsigned size;
		size_t limit;
	} cases[] = { { 100, 512 }, { 700, 700 }, { 1232, 1232 }, { 4096, 1232 } };

	(void)ctx;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n;
		int added;

		query(&m, "many.example.internal", DNS_TYPE_A, 1);
		opt(&m, cases[i].size, 0, NULL, 0);
		assert_int_equal(parse(&m, &q), DNS_OK);
		dns_build_start(&b, out, sizeof out, dns_udp_limit(&q), &q, 0, 1, 1);
		added = fill(&b, 500);
		n = dns_build_finish(&b);
		assert_true(n <= cases[i].limit);
		assert_true(n > cases[i].limit - 16); /* and it was used */
		assert_int_equal(added, (int)((cases[i].limit - 39 - 11) / 16));
		assert_int_equal(decode(out, n, &r), 0);
		assert_true(r.flags[0] & TC);
	}
	/* A buffer smaller than the limit bounds it too. */
	dns_build_start(&b, out, 300, 1232, &q, 0, 1, 1);
	fill(&b, 500);
	assert_true(dns_build_finish(&b) <= 300);
	/* One too small for the question: nothing to send. */
	dns_build_start(&b, out, 40, 1232, &q, 0, 1, 1);
	assert_int_equal(fill(&b, 1), 0);
	assert_int_equal(dns_build_finish(&b), 0);
}

static void test_tcp_large_answer(void **ctx)
{
	struct msg m;
	struct dns_query q;
	static struct reply r;
	static uint8_t out[65535];
	struct dns_builder b;
	size_t n;

	(void)ctx;
	query(&m, "many.example.internal", DNS_TYPE_A, 0);
	assert_int_equal(parse(&m, &q), DNS_OK);
	dns_build_start(&b, out, sizeof out, 65535, &q, DNS_RCODE_NOERROR, 1, 1);
	/* 1100 records take the message past 0x3fff, where no pointer reaches. */
	assert_int_equal(fill(&b, 1100), 1100);
	assert_true(b.len > 0x3fff);
	assert_int_equal(dns_add_name_rr(&b, DNS_SECTION_AUTHORITY, "deep.other.internal",
					 DNS_TYPE_NS, 5, "ns.deep.other.internal"), 0);
	assert_int_equal(dns_add_name_rr(&b, DNS_SECTION_AUTHORITY, "deep.other.internal",
					 DNS_TYPE_NS, 5, "ns2.example.internal"), 0);
	n = dns_build_finish(&b);
	assert_int_equal(decode(out, n, &r), 0);
	assert_false(r.flags[0] & TC);
	assert_int_equal(r.count[1], 1100);
	assert_int_equal(r.nrr, 1102);
	{
		/* The decoder keeps the first MAXRR records; read the last two
		 * here. The first owner, past 0x3fff, is pointed at by nothing:
		 * its target spells "deep.other" again and points only to
		 * "internal" in the question. */
		size_t o = DNS_HEADER_LEN + 27 + 1100 * 16;
		char text[DNS_NAME_MAX * 4 + 1];

		assert_int_equal(read_name(out, b.len, &o, text), 0);
		assert_string_equal(text, "deep.other.internal");
		o += 10;
		assert_memory_equal(out + o, "\002ns\004deep\005other\300\031", 16);
		assert_int_equal(read_name(out, b.len, &o, text), 0);
		assert_string_equal(text, "ns.deep.other.internal");
		assert_int_equal(read_name(out, b.len, &o, text), 0);
		assert_string_equal(text, "deep.other.internal");
		o += 10;
		/* "ns2" and a pointer to "example.internal" in the question. */
		assert_int_equal(out[o], 3);
		assert_int_equal(get16(out + o + 4), 0xc000 | (12 + 5));
		assert_int_equal(read_name(out, b.len, &o, text), 0);
		assert_string_equal(text, "ns2.example.internal");
		assert_int_equal(o, b.len);
	}
}

static void test_builder_refusals(void **ctx)
{
	struct msg m;
	struct dns_query q;
	struct reply r;
	uint8_t out[512];
	static const uint8_t a[4] = { 1, 2, 3, 4 };
	static uint8_t big[600];
	struct dns_builder b;
	size_t n;

	(void)ctx;
	query(&m, "a.example.internal", DNS_TYPE_A, 0);
	assert_int_equal(parse(&m, &q), DNS_OK);
	dns_build_start(&b, out, sizeof out, 512, &q, 0, 1, 1);
	/* Names we never write: refused, no TC. */
	assert_int_equal(dns_add_rr(&b, 0, "a b.example.internal", DNS_TYPE_A, 5, a, 4), -1);
	assert_int_equal(dns_add_rr(&b, 0, "a..example.internal", DNS_TYPE_A, 5, a, 4), -1);
	assert_int_equal(dns_add_name_rr(&b, 0, "a.example.internal", DNS_TYPE_CNAME, 5, "é"), -1);
	assert_int_equal(dns_add_rr(&b, 3, "a.example.internal", DNS_TYPE_A, 5, a, 4), -1);
	assert_false(b.truncated);
	/* Sections in order. */
	assert_int_equal(dns_add_rr(&b, DNS_SECTION_AUTHORITY, "example.internal", DNS_TYPE_A, 5,
				    a, 4), 0);
	assert_int_equal(dns_add_rr(&b, DNS_SECTION_ANSWER, "a.example.internal", DNS_TYPE_A, 5,
				    a, 4), -1);
	/* An additional record too big: left out, no TC, a small one follows. */
	assert_int_equal(dns_add_rr(&b, DNS_SECTION_ADDITIONAL, "a.example.internal", 99, 5, big,
				    sizeof big), -1);
	assert_false(b.truncated);
	assert_int_equal(dns_add_rr(&b, DNS_SECTION_ADDITIONAL, "ns.example.internal",
				    DNS_TYPE_A, 5, a, 4), 0);
	n = dns_build_finish(&b);
	assert_int_equal(decode(out, n, &r), 0);
	assert_false(r.flags[0] & TC);
	assert_int_equal(r.count[1], 0);
	assert_int_equal(r.count[2], 1);
	assert_int_equal(r.count[3], 1);
	assert_string_equal(r.rr[1].owner, "ns.example.internal");
	/* An authority record too big: TC. */
	dns_build_start(&b, out, sizeof out, 512, &q, 0, 1, 1);
	assert_int_equal(dns_add_rr(&b, DNS_SECTION_AUTHORITY, "x", 99, 5, big, sizeof big), -1);
	assert_true(b.truncated);
	/* ... and closes the message, even to a record that would fit. */
	assert_int_equal(dns_add_rr(&b, DNS_SECTION_AUTHORITY, "x", DNS_TYPE_A, 5, a, 4), -1);
	assert_int_equal(dns_add_rr(&b, DNS_SECTION_ADDITIONAL, "x", DNS_TYPE_A, 5, a, 4), -1);
	n = dns_build_finish(&b);
	assert_int_equal(n, m.n);
	assert_int_equal(decode(out, n, &r), 0);
	assert_true(r.flags[0] & TC);
	assert_int_equal(r.nrr, 0);
	/* A query that did not parse cannot be answered with the builder. */
	memset(&q, 0, sizeof q);
	dns_build_start(&b, out, sizeof out, 512, &q, 0, 1, 1);
	assert_int_equal(dns_add_rr(&b, 0, "a", DNS_TYPE_A, 5, a, 4), -1);
	assert_int_equal(dns_build_finish(&b), 0);
}

/* Names. */

static void test_name_to_wire(void **ctx)
{
	uint8_t w[DNS_NAME_MAX + 10];
	size_t n;
	char label63[64], name253[254], name254[255];

	(void)ctx;
	assert_int_equal(dns_name_to_wire("Vault.example.internal", w, sizeof w, &n), 0);
	assert_int_equal(n, 24);
	assert_memory_equal(w, "\005Vault\007example\010internal", 24);
	assert_int_equal(dns_name_to_wire("vault.example.internal.", w, sizeof w, &n), 0);
	assert_int_equal(n, 24);
	assert_int_equal(dns_name_to_wire("", w, sizeof w, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(w[0], 0);
	assert_int_equal(dns_name_to_wire(".", w, sizeof w, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(dns_name_to_wire("*.apps.example-1.internal", w, sizeof w, &n), 0);
	assert_int_equal(dns_name_to_wire("_dns._udp.x", w, sizeof w, &n), 0);
	static const char *const bad[] = { "..", "a..", "a..b", ".a", "a b", "a!b", "a\\.b",
					   "caf\xc3\xa9", "a/b" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (dns_name_to_wire(bad[i], w, sizeof w, &n) == 0)
			fail_msg("dns_name_to_wire accepted \"%s\"", bad[i]);
	memset(label63, 'x', 63);
	label63[63] = '\0';
	assert_int_equal(dns_name_to_wire(label63, w, sizeof w, &n), 0);
	memset(name253, 'y', 253);
	name253[253] = '\0';
	name253[63] = name253[127] = name253[191] = '.'; /* 63.63.63.61 */
	assert_int_equal(dns_name_to_wire(name253, w, sizeof w, &n), 0);
	assert_int_equal(n, 255);
	assert_int_equal(dns_name_to_wire(name253, w, 254, &n), -1); /* CAP */
	memset(name253, 'z', 64);
	name253[64] = '\0';
	assert_int_equal(dns_name_to_wire(name253, w, sizeof w, &n), -1);
	/* 63.63.63.62: 254 characters, 256 bytes on the wire. */
	memset(name254, 'y', 254);
	name254[254] = '\0';
	name254[63] = name254[127] = name254[191] = '.';
	assert_int_equal(dns_name_to_wire(name254, w, sizeof w, &n), -1);
}

static void test_name_in_zone(void **ctx)
{
	(void)ctx;
	assert_true(dns_name_in_zone("vault.example.internal", "example.internal"));
	assert_true(dns_name_in_zone("VAULT.Example.Internal.", "example.internal"));
	assert_true(dns_name_in_zone("example.internal", "EXAMPLE.internal."));
	assert_true(dns_name_in_zone("a.b.example.internal", "example.internal"));
	assert_true(dns_name_in_zone("anything", ""));
	assert_true(dns_name_in_zone("", ""));
	assert_false(dns_name_in_zone("xexample.internal", "example.internal"));
	assert_false(dns_name_in_zone("example.internal.evil", "example.internal"));
	assert_false(dns_name_in_zone("internal", "example.internal"));
	assert_false(dns_name_in_zone("", "example.internal"));
}

static int under_internal(const char *name, void *ctx)
{
	(void)ctx;
	return dns_name_in_zone(name, "example.internal");
}

/* The owners of an answer's records, compressed ones included, are looked
 * at: a public name's CNAME to a private one, with an address for the
 * private name, is found (p2p-dnsd refuses such an answer). */
static void test_any_owner(void **ctx)
{
	struct msg m;
	size_t target;
	static const uint8_t a[4] = { 203, 0, 113, 66 };

	(void)ctx;
	header(&m, 9, 0x8180, 1, 2, 0, 0);
	name(&m, "x.evil.test");
	put16(&m, DNS_TYPE_A);
	put16(&m, DNS_CLASS_IN);
	put16(&m, 0xc00c);             /* x.evil.test CNAME vault.example.internal */
	put16(&m, DNS_TYPE_CNAME);
	put16(&m, DNS_CLASS_IN);
	put32(&m, 60);
	put16(&m, 24);
	target = m.n;
	name(&m, "vault.example.internal");
	put16(&m, (uint16_t)(0xc000 | target));   /* vault.example.internal A ... */
	put16(&m, DNS_TYPE_A);
	put16(&m, DNS_CLASS_IN);
	put32(&m, 60);
	put16(&m, 4);
	put(&m, a, 4);
	assert_int_equal(dns_any_owner(m.b, m.n, under_internal, NULL), 1);
	/* the CNAME alone names a private target, but owns a public name */
	m.b[7] = 1;   /* ANCOUNT 1 */
	m.n = target + 24;
	assert_int_equal(dns_any_owner(m.b, m.n, under_internal, NULL), 0);
	/* cut short: -1 */
	assert_int_equal(dns_any_owner(m.b, m.n - 3, under_internal, NULL), -1);
}

/* libunbound's answer: its OPT goes (wherever it sits in the additional
 * section), other additional records and the other sections stay. */
static void test_strip_opt(void **ctx)
{
	struct msg m;
	static uint8_t out[70000];
	size_t before, n;
	static const uint8_t a[4] = { 198, 18, 0, 80 };

	(void)ctx;
	header(&m, 7, 0x8180, 1, 1, 0, 3);
	name(&m, "www.public.example");
	put16(&m, DNS_TYPE_A);
	put16(&m, DNS_CLASS_IN);
	put16(&m, 0xc00c); /* the answer, owner compressed */
	put16(&m, DNS_TYPE_A);
	put16(&m, DNS_CLASS_IN);
	put32(&m, 60);
	put16(&m, 4);
	put(&m, a, 4);
	opt(&m, 1232, 0x8000, NULL, 0);
	before = m.n;
	put16(&m, 0xc00c); /* a glue-like A after the OPT */
	put16(&m, DNS_TYPE_A);
	put16(&m, DNS_CLASS_IN);
	put32(&m, 60);
	put16(&m, 4);
	put(&m, a, 4);
	opt(&m, 4096, 0, NULL, 0); /* a second OPT: not valid, stripped too */
	n = dns_strip_answer(m.b, m.n, out, sizeof out, 0);
	assert_int_equal(n, m.n - 2 * 11);
	assert_int_equal(out[11], 1); /* ARCOUNT: the A alone */
	assert_int_equal(out[7], 1);  /* ANCOUNT kept */
	assert_memory_equal(out + before - 11, "\xc0\x0c\x00\x01", 4);

	/* Cut short, a bad pointer, bytes after the records: 0. */
	header(&m, 7, 0x8180, 1, 0, 0, 1);
	name(&m, "www.public.example");
	put16(&m, DNS_TYPE_A);
	put16(&m, DNS_CLASS_IN);
	opt(&m, 1232, 0, NULL, 0);
	assert_int_equal(dns_strip_answer(m.b, m.n - 1, out, sizeof out, 0), 0);
	put8(&m, 0);
	assert_int_equal(dns_strip_answer(m.b, m.n, out, sizeof out, 0), 0);
	header(&m, 7, 0x8180, 0, 1, 0, 0);
	put16(&m, 0xc0ff);
	put16(&m, DNS_TYPE_A);
	put16(&m, DNS_CLASS_IN);
	put32(&m, 60);
	put16(&m, 0);
	assert_int_equal(dns_strip_answer(m.b, m.n, out, sizeof out, 0), 0);
	assert_int_equal(dns_strip_answer(m.b, 11, out, sizeof out, 0), 0);
	/* Too small an output: 0, never past CAP. */
	header(&m, 7, 0x8180, 1, 0, 0, 0);
	name(&m, "www.public.example");
	put16(&m, DNS_TYPE_A);
	put16(&m, DNS_CLASS_IN);
	assert_int_equal(dns_strip_answer(m.b, m.n, out, m.n - 1, 0), 0);
	assert_int_equal(dns_strip_answer(m.b, m.n, out, m.n, 0), m.n);
}

/* An RRSIG with an NS set after it whose owner is spelt out, and a glue A
 * pointing at the NS's target: without DO the RRSIG goes and both
 * pointers move back by its size; with DO nothing but the OPT goes. */
static void test_strip_dnssec_moves_pointers(void **ctx)
{
	struct msg m;
	static uint8_t out[70000];
	size_t n, rrsig_start, rrsig_len, ns_owner, ns_target, glue_owner;
	static const uint8_t a[4] = { 192, 0, 2, 80 };
	static const uint8_t sig[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	(void)ctx;
	header(&m, 9, 0x81a0, 1, 2, 1, 2);
	name(&m, "www.signed.example");              /* at 12 */
	put16(&m, DNS_TYPE_A);
	put16(&m, DNS_CLASS_IN);
	put16(&m, 0xc00c);                           /* A */
	put16(&m, DNS_TYPE_A);
	put16(&m, DNS_CLASS_IN);
	put32(&m, 300);
	put16(&m, 4);
	put(&m, a, 4);
	rrsig_start = m.n;                           /* RRSIG: owner, 18 bytes, signer, sig */
	put16(&m, 0xc00c);
	put16(&m, 46);
	put16(&m, DNS_CLASS_IN);
	put32(&m, 300);
	put16(&m, 18 + 16 + 8);
	put(&m, "\x00\x01\x0d\x03\x00\x00\x01\x2c\x00\x00\x00\x00\x00\x00\x00\x00\x30\x39", 18);
	name(&m, "signed.example");                  /* 16 bytes, never compressed */
	put(&m, sig, 8);
	rrsig_len = m.n - rrsig_start;
	ns_owner = m.n;                              /* NS: owner spelt out, target compressed */
	name(&m, "signed.example");
	put16(&m, DNS_TYPE_NS);
	put16(&m, DNS_CLASS_IN);
	put32(&m, 300);
	put16(&m, 5);
	ns_target = m.n;
	put8(&m, 2);
	put(&m, "ns", 2);
	put16(&m, (unsigned)(0xc000 | ns_owner));
	glue_owner = m.n;                            /* glue: ns.signed.example */
	put16(&m, (unsigned)(0xc000 | ns_target));
	put16(&m, DNS_TYPE_A);
	put16(&m, DNS_CLASS_IN);
	put32(&m, 300);
	put16(&m, 4);
	put(&m, a, 4);
	opt(&m, 1232, 0x8000, NULL, 0);

	n = dns_strip_answer(m.b, m.n, out, sizeof out, 1);
	assert_int_equal(n, m.n - rrsig_len - 11);
	assert_int_equal(out[7], 1);  /* the A alone */
	assert_int_equal(out[9], 1);  /* the NS */
	assert_int_equal(out[11], 1); /* the glue */
	/* The NS's owner now where the RRSIG was, its target's pointer and
	 * the glue's owner pointer moved back by the RRSIG's size. */
	assert_memory_equal(out + rrsig_start, "\x06" "signed" "\x07" "example" "\x00", 16);
	assert_int_equal(out[ns_target - rrsig_len + 3] << 8 | out[ns_target - rrsig_len + 4],
			 0xc000 | rrsig_start);
	assert_int_equal(out[glue_owner - rrsig_len] << 8 | out[glue_owner - rrsig_len + 1],
			 0xc000 | (ns_target - rrsig_len));
	/* With DO: only the OPT goes. */
	assert_int_equal(dns_strip_answer(m.b, m.n, out, sizeof out, 0), m.n - 11);
	assert_int_equal(out[7], 2);
	/* The question asked for RRSIG: kept even without DO. */
	m.b[12 + 21] = 46; /* qtype, low byte */
	assert_int_equal(dns_strip_answer(m.b, m.n, out, sizeof out, 1), m.n - 11);
	m.b[12 + 21] = DNS_TYPE_A;
	/* A pointer into the record that goes cannot be moved: refused. */
	m.b[ns_target + 3] = (uint8_t)(0xc0 | (rrsig_start + 30) >> 8);
	m.b[ns_target + 4] = (uint8_t)(rrsig_start + 30);
	assert_int_equal(dns_strip_answer(m.b, m.n, out, sizeof out, 1), 0);
}

/* A name whose pointer leads to another pointer: every hop is followed.
 * After an RRSIG that goes, a TXT's data holds "ns" and a pointer (bytes
 * copied as they are), and a glue A's owner points at them. Its pointer
 * aimed at the question (which stays put) reads the same afterwards:
 * kept; aimed at a name after the RRSIG (which moves back), it would read
 * stale bytes: refused. So is a chain into the bytes of the OPT that goes
 * (found by fuzz-dns-answer: pointers into the question's label bytes,
 * whose labels run on into the OPT). */
static void test_strip_pointer_chains(void **ctx)
{
	struct msg m;
	static uint8_t out[70000];
	size_t rrsig_start, ns_owner, txt_data;
	static const uint8_t a[4] = { 192, 0, 2, 80 };
	static const uint8_t fuzzed[] = {
		0x00, 0x01, 0x81, 0x80, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x03, 0x3a,
		0x3a, 0x3a, 0x3a, 0x3a, 0x3a, 0x3a, 0x3a, 0x3a, 0x3a, 0x3a, 0x3a, 0x3a, 0x01, 0x01,
		0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
		0x01, 0x01, 0x01, 0x00, 0x01, 0x00, 0x0a, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0xc0, 0x2a, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
		0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x77, 0x06, 0x70, 0x65, 0x62, 0x6c, 0x69, 0x63,
		0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
		0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x3a, 0x3a, 0x3a,
		0x3a, 0x3a, 0x3a, 0x3a, 0x3a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00
	};

	(void)ctx;
	for (int aim_moved = 0; aim_moved <= 1; aim_moved++) {
		header(&m, 9, 0x81a0, 1, 1, 1, 2);      /* RRSIG; NS; TXT, glue */
		name(&m, "www.signed.example");      /* at 12 */
		put16(&m, DNS_TYPE_A);
		put16(&m, DNS_CLASS_IN);
		rrsig_start = m.n;                   /* an RRSIG, which goes without DO */
		put16(&m, 0xc00c);
		put16(&m, 46);
		put16(&m, DNS_CLASS_IN);
		put32(&m, 300);
		put16(&m, 18);
		put(&m, "\x00\x01\x0d\x03\x00\x00\x01\x2c\x00\x00\x00\x00\x00\x00\x00\x00\x30\x39", 18);
		ns_owner = m.n;                      /* NS, owner spelt out */
		name(&m, "signed.example");
		put16(&m, DNS_TYPE_NS);
		put16(&m, DNS_CLASS_IN);
		put32(&m, 300);
		put16(&m, 2);
		put16(&m, 0xc00c);
		put16(&m, 0xc00c);                   /* TXT: its data copied as it is */
		put16(&m, 16);
		put16(&m, DNS_CLASS_IN);
		put32(&m, 300);
		put16(&m, 5);
		txt_data = m.n;
		put8(&m, 2);
		put(&m, "ns", 2);
		put16(&m, (unsigned)(0xc000 | (aim_moved ? ns_owner : 12)));
		put16(&m, (unsigned)(0xc000 | txt_data)); /* glue owner: the TXT's bytes */
		put16(&m, DNS_TYPE_A);
		put16(&m, DNS_CLASS_IN);
		put32(&m, 300);
		put16(&m, 4);
		put(&m, a, 4);
		if (aim_moved)
			assert_int_equal(dns_strip_answer(m.b, m.n, out, sizeof out, 1), 0);
		else
			assert_int_equal(dns_strip_answer(m.b, m.n, out, sizeof out, 1),
					 m.n - (ns_owner - rrsig_start));
		/* with DO nothing moves: kept either way */
		assert_int_equal(dns_strip_answer(m.b, m.n, out, sizeof out, 0), m.n);
	}
	assert_int_equal(dns_strip_answer(fuzzed, sizeof fuzzed, out, sizeof out, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_plain_query),
		cmocka_unit_test(test_parse_edns_options_skipped),
		cmocka_unit_test(test_parse_edns_size),
		cmocka_unit_test(test_parse_short_and_responses_dropped),
		cmocka_unit_test(test_parse_opcode_notimp),
		cmocka_unit_test(test_parse_counts_refused),
		cmocka_unit_test(test_parse_trailing_garbage),
		cmocka_unit_test(test_error_from_query_alone),
		cmocka_unit_test(test_parse_name_limits),
		cmocka_unit_test(test_parse_label_bytes),
		cmocka_unit_test(test_parse_compression_refused),
		cmocka_unit_test(test_parse_additional_pointers),
		cmocka_unit_test(test_parse_opt_rules),
		cmocka_unit_test(test_edns_version_1_badvers),
		cmocka_unit_test(test_answer_header_and_question),
		cmocka_unit_test(test_answer_0x20_case),
		cmocka_unit_test(test_answer_compression_ptr_soa),
		cmocka_unit_test(test_truncation_at_512),
		cmocka_unit_test(test_edns_size_honoured),
		cmocka_unit_test(test_tcp_large_answer),
		cmocka_unit_test(test_strip_pointer_chains),
		cmocka_unit_test(test_builder_refusals),
		cmocka_unit_test(test_name_to_wire),
		cmocka_unit_test(test_name_in_zone),
		cmocka_unit_test(test_strip_opt),
		cmocka_unit_test(test_any_owner),
		cmocka_unit_test(test_strip_dnssec_moves_pointers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
