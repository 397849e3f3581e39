/* fuzz: p2p-dnsd */
/* fuzz-dns.c: one datagram into dns_parse_query(), as p2p-dnsd does for
 * every UDP query and every TCP message; then the answer the server would
 * send, built with dns-wire.c and read back by an independent walker.
 *
 * The input is the whole message. Its id steers the answer: bits 0-1 the
 * size limit (the client's UDP size, 512, 65535 for TCP, or just above
 * the question), bits 2-7 how many A records, bits 8-10 the rcode, bit 11
 * a CNAME, bit 12 an SOA in the authority section, bit 13 an NS in the
 * additional section, bits 14-15 the record set's owner (the question's
 * name, in any case, or another name).
 *
 * Checks beyond the sanitizers:
 * - the verdict: less than a header or QR set is DROP; an opcode other than
 *   QUERY is NOTIMP; OK means one question whose wire form is the input's
 *   bytes at 12, a presentation name of printable bytes without empty
 *   labels, EDNS size >= 512;
 * - the answer (also every error answer) never exceeds its limit, is a
 *   response with the query's id and opcode, echoes the question byte for
 *   byte, has exactly the records its counts say and nothing after them,
 *   pointers only backward, an OPT (last, root owner, our size) iff the
 *   query had EDNS; TC is set iff an answer or authority record was
 *   refused for room; a record for the question's name carries its case. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns-wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "fuzz-dns: %s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                                        \
			abort();                                                         \
		}                                                                        \
	} while (0)

static unsigned get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* A name at *OFF of MSG (LEN bytes): pointers strictly backward, labels <=
 * 63, <= 255 bytes; TEXT gets it with '.' between labels (bytes as they
 * are). -1 if a client could not read it. */
static int walk_name(const uint8_t *msg, size_t len, size_t *off, char *text, size_t textsize)
{
	size_t o = *off, end = 0, total = 0, t = 0, bound = *off;
	int jumped = 0;

	for (;;) {
		unsigned n;

		if (o >= len)
			return -1;
		n = msg[o];
		if ((n & 0xc0) == 0xc0) {
			size_t to;

			if (o + 1 >= len)
				return -1;
			to = (size_t)(n & 0x3f) << 8 | msg[o + 1];
			if (to < DNS_HEADER_LEN || to >= bound)
				return -1;
			if (!jumped)
				end = o + 2;
			jumped = 1;
			bound = to;
			o = to;
			continue;
		}
		if (n & 0xc0)
			return -1;
		total += n + 1;
		if (total > DNS_NAME_MAX)
			return -1;
		if (n == 0)
			break;
		if (o + 1 + n > len || t + n + 2 > textsize)
			return -1;
		if (t)
			text[t++] = '.';
		memcpy(text + t, msg + o + 1, n);
		t += n;
		o += 1 + n;
	}
	text[t] = '\0';
	*off = jumped ? end : o + 1;
	return 0;
}

struct walked {
	unsigned id, flags, counts[4];
	int opt_index;       /* -1 without OPT */
	uint32_t opt_ttl;
	unsigned opt_class;
	int owner_is_qname;  /* every answer record's owner spelled the question's name */
};

/* Walk a whole answer to QUERY (its question Q, NULL when not parsed). */
static void walk(const uint8_t *msg, size_t len, const struct dns_query *q, struct walked *w)
{
	size_t o = DNS_HEADER_LEN;
	unsigned total;
	char text[DNS_NAME_MAX * 2];

	memset(w, 0, sizeof *w);
	w->opt_index = -1;
	w->owner_is_qname = 1;
	CHECK(len >= DNS_HEADER_LEN);
	w->id = get16(msg);
	w->flags = get16(msg + 2);
	for (int i = 0; i < 4; i++)
		w->counts[i] = get16(msg + 4 + 2 * i);
	CHECK(w->flags & 0x8000);
	CHECK(w->counts[0] <= 1);
	if (w->counts[0]) {
		CHECK(q && q->wire_name_len);
		CHECK(walk_name(msg, len, &o, text, sizeof text) == 0);
		CHECK(o == DNS_HEADER_LEN + q->wire_name_len);
		CHECK(memcmp(msg + DNS_HEADER_LEN, q->wire_name, q->wire_name_len) == 0);
		CHECK(strcmp(text, q->name) == 0);
		CHECK(len - o >= 4);
		CHECK(get16(msg + o) == q->qtype && get16(msg + o + 2) == q->qclass);
		o += 4;
	}
	total = w->counts[1] + w->counts[2] + w->counts[3];
	for (unsigned i = 0; i < total; i++) {
		unsigned type, class, rdlen;
		int root;
		size_t d;

		root = o < len && msg[o] == 0;
		CHECK(walk_name(msg, len, &o, text, sizeof text) == 0);
		if (i < w->counts[1] && (!q || strcmp(text, q->name) != 0))
			w->owner_is_qname = 0;
		CHECK(len - o >= 10);
		type = get16(msg + o);
		class = get16(msg + o + 2);
		rdlen = get16(msg + o + 8);
		o += 10;
		CHECK(len - o >= rdlen);
		d = o;
		switch (type) {
		case DNS_TYPE_A:
			CHECK(rdlen == 4);
			break;
		case DNS_TYPE_CNAME:
		case DNS_TYPE_NS:
		case DNS_TYPE_PTR:
			CHECK(walk_name(msg, o + rdlen, &d, text, sizeof text) == 0);
			CHECK(d == o + rdlen);
			break;
		case DNS_TYPE_SOA:
			CHECK(walk_name(msg, o + rdlen, &d, text, sizeof text) == 0);
			CHECK(walk_name(msg, o + rdlen, &d, text, sizeof text) == 0);
			CHECK(d + 20 == o + rdlen);
			break;
		case DNS_TYPE_OPT:
			CHECK(w->opt_index < 0 && root && i + 1 == total && rdlen == 0);
			w->opt_index = (int)i;
			w->opt_class = class;
			w->opt_ttl = (uint32_t)get16(msg + o - 6) << 16 | get16(msg + o - 4);
			break;
		default:
			CHECK(!"a type the target never adds");
		}
		if (type != DNS_TYPE_OPT)
			CHECK(class == DNS_CLASS_IN);
		o += rdlen;
	}
	CHECK(o == len);
	if (q && q->edns) {
		CHECK(w->opt_index >= 0);
		CHECK(w->opt_class == DNS_EDNS_SIZE);
		CHECK(((w->opt_ttl >> 16) & 0xff) == 0);              /* version 0 */
		CHECK(!!(w->opt_ttl & 0x8000) == !!q->edns_do); /* DO echoed */
	} else {
		CHECK(w->opt_index < 0);
	}
}

static void check_query(const uint8_t *data, size_t size, const struct dns_query *q)
{
	size_t t = strlen(q->name);

	CHECK(q->wire_name_len >= 1 && q->wire_name_len <= DNS_NAME_MAX);
	CHECK(size >= DNS_HEADER_LEN + q->wire_name_len + 4);
	CHECK(memcmp(data + DNS_HEADER_LEN, q->wire_name, q->wire_name_len) == 0);
	CHECK(t <= DNS_TEXT_MAX && (t == 0) == (q->wire_name_len == 1));
	CHECK(q->name[0] != '.' && (t == 0 || q->name[t - 1] != '.') && !strstr(q->name, ".."));
	for (size_t i = 0; i < t; i++)
		CHECK(q->name[i] > ' ' && q->name[i] < 0x7f);
	CHECK(get16(data + 4) == 1 && get16(data + 6) == 0 && get16(data + 8) == 0);
	CHECK(!q->edns || q->edns_size >= DNS_UDP_MIN);
	CHECK(dns_udp_limit(q) >= DNS_UDP_MIN && dns_udp_limit(q) <= DNS_EDNS_SIZE);
	CHECK(dns_name_in_zone(q->name, q->name));
	CHECK(dns_name_in_zone(q->name, ""));
}

static const char *const owners[] = { "vault.example.internal", "a.b.c.example.internal",
				      "x.other.internal", "" };

static void answer(size_t size, const struct dns_query *q)
{
	static uint8_t buf[65536];
	static const uint8_t a[4] = { 100, 96, 128, 20 };
	struct dns_builder b;
	struct walked w;
	char upper[DNS_TEXT_MAX + 1];
	const char *owner;
	unsigned id = q->id, nA = (id >> 2) & 0x3f;
	size_t limit, len, qlen = DNS_HEADER_LEN + q->wire_name_len + 4 + (q->edns ? 11 : 0);
	int rcode = (int)(id >> 8) & 7, refused = 0, valid;

	switch (id & 3) {
	case 0:
		limit = dns_udp_limit(q);
		break;
	case 1:
		limit = DNS_UDP_MIN;
		break;
	case 2:
		limit = 65535;
		break;
	default:
		limit = qlen + (size & 0xff);
		break;
	}
	/* The owner: the question's name as sent, in upper case, or another. */
	for (size_t i = 0;; i++) {
		char c = q->name[i];

		upper[i] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
		if (!c)
			break;
	}
	switch (id >> 14) {
	case 0:
		owner = q->name;
		break;
	case 1:
		owner = upper;
		break;
	default:
		owner = owners[size % 4];
		break;
	}
	/* An owner with bytes we never write is refused, without TC; the
	 * question's own name never is. */
	{
		uint8_t wire[DNS_NAME_MAX];
		size_t wlen;

		valid = dns_name_to_wire(owner, wire, sizeof wire, &wlen) == 0 ||
			strcmp(owner, q->name) == 0;
	}
	dns_build_start(&b, buf, sizeof buf, limit, q, rcode, 1, 1);
	for (unsigned i = 0; i < nA; i++) {
		uint8_t rr[4] = { a[0], a[1], (uint8_t)i, a[3] };

		if (dns_add_rr(&b, DNS_SECTION_ANSWER, owner, DNS_TYPE_A, 5, rr, 4) < 0)
			refused |= valid;
	}
	if (id & 0x0800 && dns_add_name_rr(&b, DNS_SECTION_ANSWER, owner, DNS_TYPE_CNAME, 5,
					   "vault.example.internal") < 0)
		refused |= valid;
	if (id & 0x1000 && dns_add_soa(&b, DNS_SECTION_AUTHORITY, "example.internal", 10,
				       "dns.example.internal", "hostmaster.example.internal", 1,
				       3600, 600, 86400, 10) < 0)
		refused = 1;
	if (id & 0x2000)
		(void)dns_add_name_rr(&b, DNS_SECTION_ADDITIONAL, "example.internal", DNS_TYPE_NS, 5,
				      "dns.example.internal");
	len = dns_build_finish(&b);
	CHECK(dns_build_finish(&b) == len);
	if (qlen > limit) {
		CHECK(len == 0);
		return;
	}
	CHECK(len >= qlen && len <= limit);
	walk(buf, len, q, &w);
	CHECK(w.id == q->id);
	CHECK(w.counts[0] == 1);
	CHECK(((w.flags >> 11) & 0xf) == 0);           /* opcode QUERY */
	CHECK(!!(w.flags & 0x0100) == !!q->rd);         /* RD echoed */
	CHECK(!!(w.flags & 0x0010) == !!q->cd);         /* CD echoed */
	CHECK((w.flags & 0x000f) == (unsigned)rcode);
	CHECK(!!(w.flags & 0x0200) == refused);         /* TC iff refused for room */
	CHECK(w.counts[1] <= nA + 1);
	if (!valid)
		CHECK(w.counts[1] == 0);
	if (owner != owners[size % 4] && w.counts[1] > 0)
		CHECK(w.owner_is_qname); /* 0x20: the client's case, whatever we wrote */
}

static void error_answer(const uint8_t *data, size_t size, const struct dns_query *q, int rcode)
{
	static uint8_t buf[512];
	struct walked w;
	size_t len = dns_build_error(buf, sizeof buf, data, size, q, rcode);

	CHECK(len >= DNS_HEADER_LEN && len <= sizeof buf);
	walk(buf, len, q, &w);
	CHECK(w.id == get16(data));
	CHECK(((w.flags >> 11) & 0xf) == ((data[2] >> 3) & 0xf));
	CHECK(!!(w.flags & 0x0100) == (data[2] & 1));
	if (rcode <= 15 || (q && q->edns))
		CHECK((w.flags & 0xf) == ((unsigned)rcode & 0xf));
	if (q && q->edns)
		CHECK(w.opt_ttl >> 24 == (unsigned)rcode >> 4);
	CHECK(w.counts[0] == (q && q->wire_name_len ? 1u : 0u));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_query q;
	enum dns_verdict v = dns_parse_query(data, size, &q);

	if (size < DNS_HEADER_LEN || data[2] & 0x80) {
		CHECK(v == DNS_DROP);
		return 0;
	}
	CHECK(v != DNS_DROP);
	CHECK(q.id == get16(data));
	CHECK((v == DNS_NOTIMP) == (((data[2] >> 3) & 0xf) != 0));
	switch (v) {
	case DNS_OK:
		check_query(data, size, &q);
		if (q.edns && q.edns_version != 0) {
			error_answer(data, size, &q, DNS_RCODE_BADVERS);
			return 0;
		}
		answer(size, &q);
		/* The same refusals, from the query alone. */
		error_answer(data, size, &q, DNS_RCODE_REFUSED);
		{
			static uint8_t buf[512];
			size_t n = dns_build_error(buf, sizeof buf, NULL, 0, &q, DNS_RCODE_SERVFAIL);
			CHECK(n >= DNS_HEADER_LEN && memcmp(buf, data, 2) == 0);
		}
		break;
	case DNS_FORMERR:
		if (q.wire_name_len)
			check_query(data, DNS_HEADER_LEN + q.wire_name_len + 4, &q);
		error_answer(data, size, &q, DNS_RCODE_FORMERR);
		error_answer(data, size, NULL, DNS_RCODE_FORMERR);
		break;
	case DNS_NOTIMP:
		CHECK(q.wire_name_len == 0 && !q.edns);
		error_answer(data, size, &q, DNS_RCODE_NOTIMP);
		break;
	default:
		CHECK(!"a verdict not in the header");
	}
	return 0;
}
