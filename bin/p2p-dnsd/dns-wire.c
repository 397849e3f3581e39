/* dns-wire.c: DNS messages on the wire for p2p-dnsd (RFC 1035 4.1, EDNS(0)
 * RFC 6891, the same messages over TCP RFC 7766: the 2-byte length prefix is
 * the caller's). No allocation, no global state; every read and every write
 * is checked against the length it may use.
 *
 * Names in a query. The question's name is read label by label into
 * q->wire_name (bytes as received, so the letter case a 0x20 resolver chose
 * is kept for the echo) and into q->name (presentation form, the same case).
 * A label byte that is a control byte, a space, DEL, not ASCII (>= 0x80) or
 * '.' makes the query FORMERR: such a name has no presentation form without
 * escapes, would reach log lines and the map look-up as something else, and
 * no name in a map can hold it. Every other printable byte is kept as it is
 * (so "foo!.example.internal" parses, and the zone code answers that it does
 * not exist, or, under a wildcard, answers it). dns_name_to_wire, which
 * makes the names of replies, is narrower: letters, digits, '-', '_' and
 * '*'; only the question's own name, written as a pointer to the question,
 * may hold more.
 *
 * Compression in replies. Every name written (the question's at offset 12
 * first, then owners and the names inside NS/PTR/CNAME/SOA data) has the
 * offset of each of its suffixes noted; a new name is written as its labels
 * up to the longest suffix already in the message and a pointer to it.
 * Suffixes match regardless of letter case (RFC 1035 2.3.3, 4.1.4), and the
 * question's suffixes are tried first, so an answer for the question's name
 * is a pointer to offset 12 and carries the case the client sent. */
#include "dns-wire.h"

#include <string.h>

#define DNS_OPT_LEN 11 /* root owner, type, class, TTL, RDLENGTH 0 */
#define DNS_PTR_MAX 0x3fff /* the farthest offset a pointer reaches */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
}

/* The question's name at *OFF: uncompressed, each label 1..63 bytes of
 * printable ASCII other than '.', 255 bytes at most with the root byte.
 * Copied to q->wire_name (*WLEN bytes) and, in presentation form, to
 * q->name. */
static int read_qname(const uint8_t *msg, size_t len, size_t *off, struct dns_query *q,
		      size_t *wlen)
{
	size_t o = *off, w = 0, t = 0;

	for (;;) {
		uint8_t n;

		if (o >= len)
			return -1;
		n = msg[o];
		if (n == 0)
			break;
		if (n > 63)
			return -1; /* a pointer (0xc0), or the obsolete 0x40/0x80 types */
		if (o + 1 + n > len || w + 1 + n + 1 > DNS_NAME_MAX)
			return -1;
		if (t > 0)
			q->name[t++] = '.';
		for (size_t i = 0; i < n; i++) {
			uint8_t c = msg[o + 1 + i];

			/* a backslash too: the name goes to libunbound as text,
			 * which reads escapes in it (interna\108 would be
			 * "internal" there, and not here) */
			if (c <= 0x20 || c >= 0x7f || c == '.' || c == '\\')
				return -1;
			q->name[t++] = (char)c;
		}
		memcpy(q->wire_name + w, msg + o, 1 + (size_t)n);
		w += 1 + (size_t)n;
		o += 1 + (size_t)n;
	}
	/* w + 1 <= 255 by the check above; t <= w - 1 <= 253. */
	q->wire_name[w++] = 0;
	q->name[t] = '\0';
	*wlen = w;
	*off = o + 1;
	return 0;
}

/* Step over a name at *OFF outside the question, where compression is
 * allowed: each pointer must go to a label in the message after the header
 * and before the previous pointer's target (before the name itself for the
 * first), so a loop is impossible; the name it spells stays under 256
 * bytes. *ROOT says whether the name was the root, uncompressed. With
 * TEXT (DNS_TEXT_MAX + 1 bytes), the name it spells is written there:
 * labels as they are, without escaping, for matching against zones. */
static int walk_name(const uint8_t *msg, size_t len, size_t *off, int *root, char *text)
{
	size_t o = *off, end = 0, total = 0, bound = *off, t = 0;
	int jumped = 0;

	*root = 0;
	for (;;) {
		uint8_t n;

		if (o >= len)
			return -1;
		n = msg[o];
		if ((n & 0xc0) == 0xc0) {
			size_t target;

			if (o + 1 >= len)
				return -1;
			target = (size_t)(n & 0x3f) << 8 | msg[o + 1];
			if (target < DNS_HEADER_LEN || target >= bound)
				return -1;
			if (!jumped)
				end = o + 2;
			jumped = 1;
			bound = target;
			o = target;
			continue;
		}
		if (n > 63)
			return -1;
		total += 1 + (size_t)n;
		if (total > DNS_NAME_MAX)
			return -1;
		if (n == 0)
			break;
		if (o + 1 + n > len)
			return -1;
		if (text) {
			if (t)
				text[t++] = '.';
			memcpy(text + t, msg + o + 1, n);
			t += n;
		}
		o += 1 + (size_t)n;
	}
	if (text)
		text[t] = '\0';
	if (!jumped) {
		*root = o == *off;
		end = o + 1;
	}
	*off = end;
	return 0;
}

static int skip_name(const uint8_t *msg, size_t len, size_t *off, int *root)
{
	return walk_name(msg, len, off, root, NULL);
}

/* The OPT record's fixed part read, RDATA at msg[o, o + rdlen). */
static int read_opt(const uint8_t *msg, size_t o, uint16_t rdlen, uint16_t class, uint32_t ttl,
		    struct dns_query *q)
{
	size_t end = o + rdlen;

	q->edns_size = class < DNS_UDP_MIN ? DNS_UDP_MIN : class; /* RFC 6891 6.2.5 */
	q->edns_version = (uint8_t)(ttl >> 16);
	q->edns_do = (ttl & 0x8000) != 0;
	/* Options of another version may be laid out otherwise: that query is
	 * answered BADVERS, not read further. Version 0: {code, length, data}
	 * each, none known to us, all skipped, but they must fill RDATA. */
	if (q->edns_version == 0) {
		while (o < end) {
			uint16_t olen;

			if (end - o < 4)
				return -1;
			olen = get16(msg + o + 2);
			if (end - o - 4 < olen)
				return -1;
			o += 4 + (size_t)olen;
		}
	}
	q->edns = 1;
	return 0;
}

enum dns_verdict dns_parse_query(const uint8_t *msg, size_t len, struct dns_query *q)
{
	size_t off = DNS_HEADER_LEN, wlen;
	uint16_t qdcount, ancount, nscount, arcount;
	int opts = 0;

	memset(q, 0, sizeof *q);
	if (!msg || len < DNS_HEADER_LEN)
		return DNS_DROP;
	q->id = get16(msg);
	if (msg[2] & 0x80)
		return DNS_DROP; /* a response: answering it could start a loop */
	q->opcode = (msg[2] >> 3) & 0x0f;
	q->rd = msg[2] & 0x01;
	q->ad = (msg[3] & 0x20) != 0;
	q->cd = (msg[3] & 0x10) != 0;
	if (q->opcode != 0)
		return DNS_NOTIMP;
	qdcount = get16(msg + 4);
	ancount = get16(msg + 6);
	nscount = get16(msg + 8);
	arcount = get16(msg + 10);
	if (qdcount != 1 || ancount != 0 || nscount != 0)
		return DNS_FORMERR;
	if (read_qname(msg, len, &off, q, &wlen) < 0 || len - off < 4) {
		q->name[0] = '\0';
		return DNS_FORMERR;
	}
	q->qtype = get16(msg + off);
	q->qclass = get16(msg + off + 2);
	off += 4;
	q->wire_name_len = wlen; /* from here on the question can be echoed */

	for (unsigned i = 0; i < arcount; i++) {
		uint16_t type, class, rdlen;
		uint32_t ttl;
		int root;

		if (skip_name(msg, len, &off, &root) < 0 || len - off < 10)
			return DNS_FORMERR;
		type = get16(msg + off);
		class = get16(msg + off + 2);
		ttl = get32(msg + off + 4);
		rdlen = get16(msg + off + 8);
		off += 10;
		if (len - off < rdlen)
			return DNS_FORMERR;
		if (type == DNS_TYPE_OPT) {
			if (++opts > 1 || !root) {
				q->edns = 0; /* RFC 6891 6.1.1: which one would count? */
				return DNS_FORMERR;
			}
			if (read_opt(msg, off, rdlen, class, ttl, q) < 0)
				return DNS_FORMERR;
		}
		/* Other records (TSIG, say) are stepped over: we sign nothing. */
		off += rdlen;
	}
	if (off != len)
		return DNS_FORMERR;
	return DNS_OK;
}

size_t dns_udp_limit(const struct dns_query *q)
{
	if (!q || !q->edns)
		return DNS_UDP_MIN;
	return q->edns_size < DNS_EDNS_SIZE ? q->edns_size : DNS_EDNS_SIZE;
}

/* Names. */

int dns_name_to_wire(const char *text, uint8_t *out, size_t cap, size_t *len)
{
	size_t w = 0, tlen;

	if (!text)
		return -1;
	tlen = strlen(text);
	if (tlen == 1 && text[0] == '.')
		tlen = 0; /* "." is the root, like "" */
	else if (tlen > 0 && text[tlen - 1] == '.')
		tlen--;
	if (tlen > 0 && text[tlen - 1] == '.')
		return -1; /* "a..": an empty label */
	for (size_t i = 0; i < tlen;) {
		size_t n = 0;

		while (i + n < tlen && text[i + n] != '.') {
			char c = text[i + n];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '*'))
				return -1;
			n++;
		}
		if (n == 0 || n > 63)
			return -1; /* "a..b", ".a", a label too long */
		if (w + 1 + n + 1 > DNS_NAME_MAX || w + 1 + n + 1 > cap)
			return -1;
		out[w] = (uint8_t)n;
		memcpy(out + w + 1, text + i, n);
		w += 1 + n;
		i += n + 1; /* past the dot, or past the end */
	}
	if (w + 1 > cap)
		return -1;
	out[w++] = 0;
	*len = w;
	return 0;
}

int dns_name_in_zone(const char *name, const char *zone)
{
	size_t n = strlen(name), z = strlen(zone);

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (z > 0 && zone[z - 1] == '.')
		z--;
	if (z == 0)
		return 1; /* the root holds every name */
	if (n < z || (n > z && name[n - z - 1] != '.'))
		return 0;
	for (size_t i = 0; i < z; i++)
		if (lower((uint8_t)name[n - z + i]) != lower((uint8_t)zone[i]))
			return 0;
	return 1;
}

/* The builder. */

/* Is the (possibly compressed) name at OFF in what was written equal to the
 * uncompressed, well-formed WIRE, letter case aside? */
static int name_at_equals(const struct dns_builder *b, size_t off, const uint8_t *wire)
{
	size_t i = 0;
	int hops = 0;

	for (;;) {
		uint8_t n;

		if (off >= b->len)
			return 0;
		n = b->buf[off];
		if ((n & 0xc0) == 0xc0) {
			if (off + 1 >= b->len || ++hops > DNS_NAME_MAX / 2)
				return 0;
			off = (size_t)(n & 0x3f) << 8 | b->buf[off + 1];
			continue;
		}
		if (n != wire[i])
			return 0;
		if (n == 0)
			return 1;
		if (off + 1 + n > b->len)
			return 0;
		for (size_t k = 1; k <= n; k++)
			if (lower(b->buf[off + k]) != lower(wire[i + k]))
				return 0;
		off += 1 + (size_t)n;
		i += 1 + (size_t)n;
	}
}

/* Note the offsets of the labels of the name just written at AT, up to its
 * first pointer: each is a suffix later names may point to. Past 0x3fff no
 * pointer reaches; past the table's end the names go uncompressed. */
static void note_name(struct dns_builder *b, size_t at)
{
	size_t cap = sizeof b->names / sizeof b->names[0];

	while (at < b->len && b->buf[at] != 0 && (b->buf[at] & 0xc0) == 0) {
		if (at > DNS_PTR_MAX || (size_t)b->nnames >= cap)
			return;
		b->names[b->nnames++] = (uint16_t)at;
		at += 1 + (size_t)b->buf[at];
	}
}

/* Room up to END (the limit less what finish needs) for N more bytes? */
static int room(const struct dns_builder *b, size_t end, size_t n)
{
	return b->len <= end && end - b->len >= n;
}

/* TEXT in wire form. The question's own name is taken as it came, even
 * with bytes dns_name_to_wire refuses (a wildcard can match such a name):
 * it is in the message already, and becomes a pointer to it. */
static int to_wire(const struct dns_builder *b, const char *text, uint8_t *wire, size_t *wlen)
{
	const struct dns_query *q = b->q;

	if (dns_name_to_wire(text, wire, DNS_NAME_MAX, wlen) == 0)
		return 0;
	if (!q || q->wire_name_len == 0 || q->wire_name_len > DNS_NAME_MAX ||
	    strcmp(text, q->name) != 0)
		return -1;
	memcpy(wire, q->wire_name, q->wire_name_len);
	*wlen = q->wire_name_len;
	return 0;
}

/* Is TEXT the question's own name, the very string (an answer's owner,
 * nearly always)? It is then a pointer to the question at offset 12 when
 * that was noted: what the search in put_name would find first, found
 * without converting and comparing the name. The root is left to it. */
static int is_question_name(const struct dns_builder *b, const char *text)
{
	return b->q && text == b->q->name && b->q->wire_name_len > 1 &&
	       b->q->wire_name_len <= DNS_NAME_MAX && b->nnames > 0 &&
	       b->names[0] == DNS_HEADER_LEN;
}

/* Write the presentation name TEXT, compressed. */
static int put_name(struct dns_builder *b, size_t end, const char *text)
{
	uint8_t wire[DNS_NAME_MAX];
	size_t wlen, i = 0, at = b->len;
	int target = -1;

	if (text && is_question_name(b, text)) {
		if (!room(b, end, 2))
			return -1;
		put16(b->buf + b->len, 0xc000u | DNS_HEADER_LEN);
		b->len += 2;
		return 0;
	}
	if (!text || to_wire(b, text, wire, &wlen) < 0)
		return -1;
	for (i = 0; wire[i] != 0; i += 1 + (size_t)wire[i]) {
		for (int j = 0; j < b->nnames && target < 0; j++)
			if (name_at_equals(b, b->names[j], wire + i))
				target = b->names[j];
		if (target >= 0)
			break;
	}
	if (target < 0) {
		if (!room(b, end, wlen))
			return -1;
		memcpy(b->buf + b->len, wire, wlen);
		b->len += wlen;
	} else {
		if (!room(b, end, i + 2))
			return -1;
		memcpy(b->buf + b->len, wire, i);
		put16(b->buf + b->len + i, 0xc000u | (unsigned)target);
		b->len += i + 2;
	}
	note_name(b, at);
	return 0;
}

/* Where records must end: the limit, less the OPT record finish adds. */
static size_t records_end(const struct dns_builder *b)
{
	size_t opt = b->q && b->q->edns ? DNS_OPT_LEN : 0;

	return b->limit >= opt ? b->limit - opt : 0;
}

/* The header and the question. RCODE above 15 goes to OPT; without EDNS it
 * cannot be said and becomes SERVFAIL. A builder that cannot hold even this
 * has len 0: it takes no record and finishes as 0. */
static void begin(struct dns_builder *b, uint8_t *buf, size_t cap, size_t limit,
		  const struct dns_query *q, const uint8_t *qhdr, int rcode, int aa, int ra)
{
	int edns = q && q->edns;
	size_t qlen = q && q->wire_name_len ? q->wire_name_len + 4 : 0;
	uint8_t *h = buf;

	memset(b, 0, sizeof *b);
	b->buf = buf;
	b->cap = cap;
	b->q = q;
	if (rcode < 0 || rcode > 0xfff || (rcode > 15 && !edns))
		rcode = DNS_RCODE_SERVFAIL;
	b->rcode = rcode;
	b->limit = limit < cap ? limit : cap;
	if (b->limit > 65535)
		b->limit = 65535;
	if (!buf || (q && q->wire_name_len > DNS_NAME_MAX) ||
	    DNS_HEADER_LEN + qlen + (edns ? DNS_OPT_LEN : 0) > b->limit) {
		b->truncated = 1;
		return;
	}
	h[0] = qhdr[0];
	h[1] = qhdr[1];
	h[2] = (uint8_t)(0x80 | (qhdr[2] & 0x78) | (aa ? 0x04 : 0) | (qhdr[2] & 0x01));
	h[3] = (uint8_t)((ra ? 0x80 : 0) | (qhdr[3] & 0x10) | (rcode & 0x0f));
	memset(h + 4, 0, 8);
	b->len = DNS_HEADER_LEN;
	if (qlen) {
		memcpy(buf + b->len, q->wire_name, q->wire_name_len);
		put16(buf + b->len + q->wire_name_len, q->qtype);
		put16(buf + b->len + q->wire_name_len + 2, q->qclass);
		b->len += qlen;
		note_name(b, DNS_HEADER_LEN);
	}
}

void dns_build_start(struct dns_builder *b, uint8_t *buf, size_t cap, size_t limit,
		     const struct dns_query *q, int rcode, int aa, int ra)
{
	uint8_t qhdr[4];

	if (!q || q->wire_name_len == 0) {
		/* Not a parsed query: nothing to answer. */
		memset(b, 0, sizeof *b);
		b->truncated = 1;
		return;
	}
	qhdr[0] = (uint8_t)(q->id >> 8);
	qhdr[1] = (uint8_t)q->id;
	qhdr[2] = q->rd ? 0x01 : 0; /* opcode QUERY: the only one parsed */
	qhdr[3] = q->cd ? 0x10 : 0;
	begin(b, buf, cap, limit, q, qhdr, rcode, aa, ra);
}

/* Records. A record is checked before a byte is written (a bad section, a
 * section out of order, a name we never write: the caller's mistake, -1
 * without TC), then written up to records_end(); one that overruns it is
 * undone. Not fitting in the answer or authority section sets TC and closes
 * the message to further records; an additional record that does not fit is
 * left out without TC (RFC 2181 9), and a smaller one may still follow. */

struct rr_mark {
	size_t len;      /* where the record starts, to undo it */
	int nnames;      /* the compression table before it */
	size_t rdlen_at; /* where its RDLENGTH goes */
};

static int valid_name(const struct dns_builder *b, const char *text)
{
	uint8_t wire[DNS_NAME_MAX];
	size_t len;

	if (text && is_question_name(b, text))
		return 1; /* to_wire takes the question's name in any case */
	return text && to_wire(b, text, wire, &len) == 0;
}

static int rr_allowed(const struct dns_builder *b, int section, const char *owner)
{
	if (b->len == 0 || b->truncated || section < DNS_SECTION_ANSWER ||
	    section > DNS_SECTION_ADDITIONAL || !valid_name(b, owner))
		return 0;
	/* Records go in section order: an answer written after an authority
	 * record would be read as an authority record. */
	for (int s = section + 1; s <= DNS_SECTION_ADDITIONAL; s++)
		if (b->counts[s])
			return 0;
	return 1;
}

/* Owner, type, class IN, TTL, and room for RDLENGTH. */
static int rr_begin(struct dns_builder *b, const char *owner, uint16_t type, uint32_t ttl,
		    struct rr_mark *m)
{
	size_t end = records_end(b);

	m->len = b->len;
	m->nnames = b->nnames;
	if (put_name(b, end, owner) < 0 || !room(b, end, 10))
		return -1;
	put16(b->buf + b->len, type);
	put16(b->buf + b->len + 2, DNS_CLASS_IN);
	put32(b->buf + b->len + 4, ttl);
	m->rdlen_at = b->len + 8;
	b->len += 10;
	return 0;
}

/* Close the record: RDLENGTH and the count; or undo it when it did not fit. */
static int rr_end(struct dns_builder *b, int section, const struct rr_mark *m, int fits)
{
	if (!fits) {
		b->len = m->len;
		b->nnames = m->nnames;
		if (section != DNS_SECTION_ADDITIONAL)
			b->truncated = 1;
		return -1;
	}
	put16(b->buf + m->rdlen_at, (unsigned)(b->len - m->rdlen_at - 2));
	b->counts[section]++;
	return 0;
}

int dns_add_rr(struct dns_builder *b, int section, const char *owner, uint16_t type,
	       uint32_t ttl, const uint8_t *rdata, size_t rdlen)
{
	struct rr_mark m;
	int fits;

	if (!rr_allowed(b, section, owner) || (rdlen > 0 && !rdata) || rdlen > 65535)
		return -1;
	fits = rr_begin(b, owner, type, ttl, &m) == 0 && room(b, records_end(b), rdlen);
	if (fits && rdlen > 0) {
		memcpy(b->buf + b->len, rdata, rdlen);
		b->len += rdlen;
	}
	return rr_end(b, section, &m, fits);
}

int dns_add_name_rr(struct dns_builder *b, int section, const char *owner, uint16_t type,
		    uint32_t ttl, const char *target)
{
	struct rr_mark m;
	int fits;

	if (!rr_allowed(b, section, owner) || !valid_name(b, target))
		return -1;
	fits = rr_begin(b, owner, type, ttl, &m) == 0 && put_name(b, records_end(b), target) == 0;
	return rr_end(b, section, &m, fits);
}

int dns_add_soa(struct dns_builder *b, int section, const char *owner, uint32_t ttl,
		const char *mname, const char *rname, uint32_t serial, uint32_t refresh,
		uint32_t retry, uint32_t expire, uint32_t minimum)
{
	size_t end = records_end(b);
	struct rr_mark m;
	int fits;

	if (!rr_allowed(b, section, owner) || !valid_name(b, mname) || !valid_name(b, rname))
		return -1;
	fits = rr_begin(b, owner, DNS_TYPE_SOA, ttl, &m) == 0 && put_name(b, end, mname) == 0 &&
	       put_name(b, end, rname) == 0 && room(b, end, 20);
	if (fits) {
		put32(b->buf + b->len, serial);
		put32(b->buf + b->len + 4, refresh);
		put32(b->buf + b->len + 8, retry);
		put32(b->buf + b->len + 12, expire);
		put32(b->buf + b->len + 16, minimum);
		b->len += 20;
	}
	return rr_end(b, section, &m, fits);
}

/* The OPT record goes after the records without moving b->len, so finishing
 * twice, or adding a record after finishing and finishing again, still
 * makes one well-formed message. */
size_t dns_build_finish(struct dns_builder *b)
{
	uint8_t *h = b->buf;
	size_t len = b->len;
	unsigned arcount = b->counts[DNS_SECTION_ADDITIONAL];

	if (b->len == 0)
		return 0;
	if (b->q && b->q->edns) {
		uint8_t *o = b->buf + len;

		if (!room(b, b->limit, DNS_OPT_LEN))
			return 0; /* cannot be: begin() and records_end() kept room */
		o[0] = 0; /* root */
		put16(o + 1, DNS_TYPE_OPT);
		put16(o + 3, DNS_EDNS_SIZE);
		/* Extended RCODE, VERSION 0, DO echoed (RFC 3225 3), Z 0. */
		put32(o + 5, (uint32_t)(b->rcode >> 4) << 24 | (b->q->edns_do ? 0x8000u : 0));
		put16(o + 9, 0);
		len += DNS_OPT_LEN;
		arcount++;
	}
	put16(h + 4, b->q && b->q->wire_name_len ? 1 : 0);
	put16(h + 6, b->counts[DNS_SECTION_ANSWER]);
	put16(h + 8, b->counts[DNS_SECTION_AUTHORITY]);
	put16(h + 10, arcount);
	if (b->truncated)
		h[2] |= 0x02;
	else
		h[2] &= (uint8_t)~0x02;
	return len;
}

size_t dns_build_error(uint8_t *buf, size_t cap, const uint8_t *msg, size_t len,
		       const struct dns_query *q, int rcode)
{
	struct dns_builder b;
	uint8_t qhdr[4];

	if (msg && len >= DNS_HEADER_LEN) {
		memcpy(qhdr, msg, 4);
	} else if (q) {
		qhdr[0] = (uint8_t)(q->id >> 8);
		qhdr[1] = (uint8_t)q->id;
		qhdr[2] = (uint8_t)((q->opcode & 0x0f) << 3 | (q->rd ? 0x01 : 0));
		qhdr[3] = q->cd ? 0x10 : 0;
	} else {
		return 0;
	}
	begin(&b, buf, cap, cap, q, qhdr, rcode, 0, 0);
	return dns_build_finish(&b);
}

/* ---- answers from elsewhere (libunbound), made the client's ---- */

/* A record of an answer, as dns_strip_answer finds it. */
struct rr_span {
	size_t start, end;  /* the whole record */
	int keep;
};

/* Types whose RDATA may hold compressed names (RFC 1035; RFC 3597 4
 * freezes the list), and how: the number of names, after SKIP bytes; SOA's
 * two names come first. */
static int rdata_names(uint16_t type, size_t *skip)
{
	*skip = 0;
	switch (type) {
	case 2: case 3: case 4: case 5: case 7: case 8: case 9: case 12:
		return 1;     /* NS MD MF CNAME MB MG MR PTR */
	case 6: case 14:
		return 2;     /* SOA MINFO */
	case 15:
		*skip = 2;    /* MX: preference, then the exchange */
		return 1;
	default:
		return 0;
	}
}

/* Where OLD (an offset into the answer) lands once the records not kept
 * are gone; -1 when it was inside one of them. */
static long moved(const struct rr_span *rr, size_t n, size_t old)
{
	size_t gone = 0;

	for (size_t i = 0; i < n && rr[i].start <= old; i++) {
		if (rr[i].keep)
			continue;
		if (old < rr[i].end)
			return -1;
		gone += rr[i].end - rr[i].start;
	}
	return (long)(old - gone);
}

/* Whether the name a pointer to TARGET names reads the same in OUT (of O
 * bytes written so far) as in IN: the labels at each target on the way,
 * up to their root or next pointer, moved as one piece (none of their
 * bytes left out), and each next pointer, as OUT holds it, aimed where its
 * target went. Pointers must go back (no loop); a chain of more than 64 is
 * refused. */
static int chain_moves(const uint8_t *in, const uint8_t *out, size_t o, const struct rr_span *rr,
		       size_t n, size_t target)
{
	long to = moved(rr, n, target);

	for (int hops = 0; hops < 64 && to >= 0; hops++) {
		size_t last = target, next;
		long at, next_to;

		while (in[last] && (in[last] & 0xc0) != 0xc0)
			last += 1 + (size_t)in[last];
		at = to + (long)(last - target);
		if (moved(rr, n, last) != at)
			return 0;
		if (!in[last])
			return 1;
		next = (size_t)(in[last] & 0x3f) << 8 | in[last + 1];
		next_to = moved(rr, n, next);
		if (moved(rr, n, last + 1) != at + 1 || (size_t)at + 2 > o || next >= target ||
		    next_to < 0 || get16(out + at) != (0xc000 | (unsigned)next_to))
			return 0;
		target = next;
		to = next_to;
	}
	return 0;
}

/* Copy the name at IN[*off] to OUT[*o], its pointer (if any) moved.
 * The name was checked by skip_name. */
static int copy_name(const uint8_t *in, size_t *off, uint8_t *out, size_t *o, size_t cap,
		     const struct rr_span *rr, size_t n)
{
	size_t i = *off;

	for (;;) {
		uint8_t len = in[i];

		if ((len & 0xc0) == 0xc0) {
			size_t target = (size_t)(len & 0x3f) << 8 | in[i + 1];
			long to = moved(rr, n, target);

			if (to < 0 || !chain_moves(in, out, *o, rr, n, target) || *o + 2 > cap)
				return -1;
			put16(out + *o, 0xc000 | (unsigned)to);
			*o += 2;
			*off = i + 2;
			return 0;
		}
		if (*o + 1 + len > cap)
			return -1;
		memcpy(out + *o, in + i, 1 + (size_t)len);
		*o += 1 + (size_t)len;
		i += 1 + (size_t)len;
		if (len == 0) {
			*off = i;
			return 0;
		}
	}
}

int dns_any_owner(const uint8_t *msg, size_t len, int (*match)(const char *name, void *ctx), void *ctx)
{
	size_t off = DNS_HEADER_LEN;
	char text[DNS_TEXT_MAX + 1];
	unsigned counts[4];
	int root;

	if (len < DNS_HEADER_LEN)
		return -1;
	for (int i = 0; i < 4; i++)
		counts[i] = get16(msg + 4 + 2 * i);
	for (unsigned i = 0; i < counts[0]; i++) {
		if (skip_name(msg, len, &off, &root) < 0 || off + 4 > len)
			return -1;
		off += 4;
	}
	for (int section = 1; section < 4; section++)
		for (unsigned i = 0; i < counts[section]; i++) {
			if (walk_name(msg, len, &off, &root, text) < 0 || off + 10 > len ||
			    off + 10 + get16(msg + off + 8) > len)
				return -1;
			if (match(text, ctx))
				return 1;
			off += 10 + get16(msg + off + 8);
		}
	return 0;
}

static int dnssec_type(uint16_t type)
{
	return type == 46 || type == 47 || type == 50; /* RRSIG, NSEC, NSEC3 */
}

size_t dns_strip_answer(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
			int strip_dnssec)
{
	struct rr_span rr[DNS_STRIP_MAX_RR];
	size_t nrr = 0, off = DNS_HEADER_LEN, o;
	unsigned counts[4], kept[4] = { 0 };
	uint16_t qtype = 0;

	if (len < DNS_HEADER_LEN || len > 65535 || cap < DNS_HEADER_LEN)
		return 0;
	for (int i = 0; i < 4; i++)
		counts[i] = get16(in + 4 + 2 * i);
	for (unsigned i = 0; i < counts[0]; i++) {
		int root;

		if (skip_name(in, len, &off, &root) < 0 || off + 4 > len)
			return 0;
		qtype = (uint16_t)get16(in + off);
		off += 4;
	}
	/* Which records go: every OPT (ours replaces it), and the DNSSEC
	 * records for a client that did not set DO (RFC 4035 3.2.1), unless
	 * its question asked for that type. */
	for (int section = 1; section < 4; section++) {
		for (unsigned i = 0; i < counts[section]; i++) {
			size_t start = off;
			uint16_t type;
			int root;

			if (nrr == DNS_STRIP_MAX_RR || skip_name(in, len, &off, &root) < 0 ||
			    off + 10 > len || off + 10 + get16(in + off + 8) > len)
				return 0;
			type = (uint16_t)get16(in + off);
			off += 10 + get16(in + off + 8);
			rr[nrr].start = start;
			rr[nrr].end = off;
			rr[nrr].keep = !(section == 3 && type == DNS_TYPE_OPT) &&
				       !(strip_dnssec && dnssec_type(type) && type != qtype);
			kept[section] += (unsigned)rr[nrr].keep;
			nrr++;
		}
	}
	if (off != len)
		return 0;
	/* The header and question as they are; then the records kept, each
	 * pointer moved back by what went before its target. */
	o = rr[0].start;
	if (nrr == 0)
		o = len;
	if (o > cap)
		return 0;
	memcpy(out, in, o);
	for (size_t i = 0; i < nrr; i++) {
		size_t at = rr[i].start, names, skip, rdstart, rdend, rdlen_at;
		uint16_t type;

		if (!rr[i].keep)
			continue;
		if (copy_name(in, &at, out, &o, cap, rr, nrr) < 0 || o + 10 > cap)
			return 0;
		type = (uint16_t)get16(in + at);
		memcpy(out + o, in + at, 10);
		rdlen_at = o + 8;
		o += 10;
		rdstart = at + 10;
		rdend = rr[i].end;
		names = (size_t)rdata_names(type, &skip);
		at = rdstart;
		if (names && skip <= rdend - rdstart) {
			memcpy(out + o, in + at, skip);
			o += skip;
			at += skip;
			for (size_t k = 0; k < names; k++) {
				int root;
				size_t check = at;

				if (skip_name(in, rdend, &check, &root) < 0 ||
				    copy_name(in, &at, out, &o, cap, rr, nrr) < 0)
					return 0;
			}
		}
		if (o + (rdend - at) > cap)
			return 0;
		memcpy(out + o, in + at, rdend - at);
		o += rdend - at;
		put16(out + rdlen_at, (unsigned)(o - rdlen_at - 2));
	}
	for (int i = 1; i < 4; i++)
		put16(out + 4 + 2 * i, kept[i]);
	return o;
}

int dns_ttl_offsets(const uint8_t *msg, size_t len, uint16_t *offs, int max)
{
	size_t o = DNS_HEADER_LEN;
	unsigned counts[4];
	int n = 0;

	if (len < DNS_HEADER_LEN || len > 65535)
		return -1;
	for (int i = 0; i < 4; i++)
		counts[i] = get16(msg + 4 + 2 * i);
	for (unsigned i = 0; i < counts[0]; i++) {
		int root;

		if (skip_name(msg, len, &o, &root) < 0 || len - o < 4)
			return -1;
		o += 4;
	}
	for (int section = 1; section < 4; section++) {
		for (unsigned i = 0; i < counts[section]; i++) {
			int root;

			if (skip_name(msg, len, &o, &root) < 0 || len - o < 10 ||
			    len - o - 10 < get16(msg + o + 8))
				return -1;
			if (get16(msg + o) != DNS_TYPE_OPT) {
				if (n == max)
					return -1;
				offs[n++] = (uint16_t)(o + 4);
			}
			o += 10 + (size_t)get16(msg + o + 8);
		}
	}
	return o == len ? n : -1;
}
