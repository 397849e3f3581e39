/* dns-wire.h: DNS messages (RFC 1035) as p2p-dnsd reads and writes them:
 * a strict parser for queries, and a builder for answers with name
 * compression, EDNS(0) (RFC 6891) and truncation. Pure functions over byte
 * buffers, so the fuzz target and the tests drive them directly. */
#ifndef P2P_DNSD_DNS_WIRE_H
#define P2P_DNSD_DNS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define DNS_HEADER_LEN 12
#define DNS_NAME_MAX 255          /* wire length, RFC 1035 2.3.4 */
#define DNS_TEXT_MAX 254          /* presentation length, without the root dot */
#define DNS_UDP_MIN 512
#define DNS_EDNS_SIZE 1232        /* what we offer and cap at (DNS flag day 2020) */

enum { DNS_CLASS_IN = 1, DNS_CLASS_ANY = 255 };
enum {
	DNS_TYPE_A = 1, DNS_TYPE_NS = 2, DNS_TYPE_CNAME = 5, DNS_TYPE_SOA = 6,
	DNS_TYPE_PTR = 12, DNS_TYPE_AAAA = 28, DNS_TYPE_OPT = 41, DNS_TYPE_ANY = 255,
};
enum {
	DNS_RCODE_NOERROR = 0, DNS_RCODE_FORMERR = 1, DNS_RCODE_SERVFAIL = 2,
	DNS_RCODE_NXDOMAIN = 3, DNS_RCODE_NOTIMP = 4, DNS_RCODE_REFUSED = 5,
	DNS_RCODE_BADVERS = 16, /* extended (RFC 6891 9): only with EDNS, in OPT */
};
enum { DNS_SECTION_ANSWER = 0, DNS_SECTION_AUTHORITY = 1, DNS_SECTION_ADDITIONAL = 2 };

/* What dns_parse_query says of a message. */
enum dns_verdict {
	DNS_OK = 0,        /* a query we can answer */
	DNS_DROP = -1,     /* not worth an answer: shorter than a header, or a response */
	DNS_FORMERR = 1,   /* answer FORMERR (the header's id is valid) */
	DNS_NOTIMP = 4,    /* answer NOTIMP: an opcode other than QUERY */
};

struct dns_query {
	uint16_t id;
	uint8_t opcode;
	int rd, cd, ad;
	/* The question, its name in presentation form as received (case kept
	 * for 0x20; no trailing dot; "" is the root) and in wire form. */
	char name[DNS_TEXT_MAX + 1];
	uint8_t wire_name[DNS_NAME_MAX];
	size_t wire_name_len;
	uint16_t qtype, qclass;
	/* EDNS(0): present, the UDP size the client takes (never below 512),
	 * its version, DO bit. A version other than 0 gets BADVERS: the
	 * parser says DNS_OK and the caller answers
	 * dns_build_error(..., q, DNS_RCODE_BADVERS). */
	int edns;
	uint16_t edns_size;
	uint8_t edns_version;
	int edns_do;
};

/* Parse a query. Refused with DNS_FORMERR: QDCOUNT other than 1, ANCOUNT or
 * NSCOUNT not 0, a name over 255 bytes or a label over 63, compression in
 * the question (a loop or any pointer: a query has nothing to point at),
 * counts that overrun the message, trailing bytes, more than one OPT, an
 * OPT not in the additional section or not with the root owner, an EDNS(0)
 * option overrunning the OPT record; and a question name with a byte that
 * is a control byte, a space, DEL, not ASCII, or '.' inside a label (other
 * printable bytes are kept: the name then matches nothing in a zone).
 * Other records in the additional section are stepped over (pointers in
 * their names allowed, backward only). On any verdict Q holds what could be
 * read: the header fields always, the question (wire_name_len != 0) once it
 * parsed, edns once one OPT was read whole, so dns_build_error can echo them. */
enum dns_verdict dns_parse_query(const uint8_t *msg, size_t len, struct dns_query *q);

/* The size a UDP answer to Q may take: 512 without EDNS, else the client's
 * EDNS size capped at DNS_EDNS_SIZE. */
size_t dns_udp_limit(const struct dns_query *q);

/* An answer under construction in BUF (CAP bytes). LIMIT is the size the
 * client accepts (512, dns_udp_limit(), or 65535 over TCP, the length
 * prefix being the caller's); the answer never exceeds LIMIT or CAP. An
 * answer or authority record that does not fit is left out, TC is set and
 * no record is taken after it (an additional one is only left out). */
struct dns_builder {
	uint8_t *buf;
	size_t cap, limit, len; /* len: header, question, records (0: unusable) */
	uint16_t counts[3];
	int truncated;
	const struct dns_query *q;
	int rcode; /* as asked; above 15 its high bits go in OPT */
	/* Compression: offsets of names already written, and of each of their
	 * suffixes (the question's first: answers point to its case). */
	uint16_t names[64];
	int nnames;
};

/* Header (QR, AA, RD echoed, RA, CD echoed, RCODE) and the question echoed
 * as asked, byte for byte. Q is a query dns_parse_query said DNS_OK of. An
 * RCODE above 15 without EDNS cannot be said and becomes SERVFAIL. With a
 * LIMIT or CAP too small for the header, the question and OPT (never with
 * 512), the builder takes nothing and dns_build_finish returns 0. */
void dns_build_start(struct dns_builder *b, uint8_t *buf, size_t cap, size_t limit,
		     const struct dns_query *q, int rcode, int aa, int ra);
/* Add a record of class IN; OWNER is a presentation name ("" for the root),
 * compressed against what was written. RDATA is raw, for types whose data
 * hold no names. Sections in order: answer, authority, additional. Returns
 * 0, or -1 when it does not fit (TC is then set, see above) or is refused:
 * after TC, a section out of order, a name dns_name_to_wire refuses (but
 * q->name itself is always taken: it is written as a pointer to the
 * question, so a name with other bytes can still be answered). */
int dns_add_rr(struct dns_builder *b, int section, const char *owner, uint16_t type,
	       uint32_t ttl, const uint8_t *rdata, size_t rdlen);
/* Records whose data are names (compressed): NS, PTR, CNAME. */
int dns_add_name_rr(struct dns_builder *b, int section, const char *owner, uint16_t type,
		    uint32_t ttl, const char *target);
/* SOA: MNAME, RNAME, then SERIAL REFRESH RETRY EXPIRE MINIMUM. */
int dns_add_soa(struct dns_builder *b, int section, const char *owner, uint32_t ttl,
		const char *mname, const char *rname, uint32_t serial, uint32_t refresh,
		uint32_t retry, uint32_t expire, uint32_t minimum);
/* Close the message: the OPT record when the query had EDNS (class
 * DNS_EDNS_SIZE, the extended RCODE, version 0, DO echoed), the counts, TC.
 * Returns its length (0: nothing to send). Calling it again is harmless. */
size_t dns_build_finish(struct dns_builder *b);

/* A whole FORMERR/NOTIMP/SERVFAIL/REFUSED/BADVERS answer for a query we
 * could at least read the header of: id, opcode, RD and CD from MSG, or
 * from Q when MSG is NULL; the question echoed when Q is not NULL and its
 * question parsed; OPT when Q had EDNS. No AA, no RA. Returns its length, 0
 * with neither a header in MSG nor Q, or a CAP too small (512 suffices). */
size_t dns_build_error(uint8_t *buf, size_t cap, const uint8_t *msg, size_t len,
		       const struct dns_query *q, int rcode);

/* An answer from libunbound, IN (LEN bytes), into OUT (CAP bytes) as a
 * client may get it, before its own OPT is added: every OPT record left
 * out, and with STRIP_DNSSEC the RRSIG, NSEC and NSEC3 records too (unless
 * the question asked for that type). Compression pointers are moved with
 * the bytes they point at. Returns the length, or 0 when IN does not read
 * to its exact end, a pointer pointed into a record left out, it has more
 * than DNS_STRIP_MAX_RR records, or OUT is too small. */
#define DNS_STRIP_MAX_RR 1024
size_t dns_strip_answer(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
			int strip_dnssec);

/* Whether a record of response MSG (answer, authority or additional) has
 * an owner MATCH(name, CTX) says yes to: 1, 0, or -1 when MSG is not read
 * to its records' end (names as dns_strip_answer reads them). */
int dns_any_owner(const uint8_t *msg, size_t len, int (*match)(const char *name, void *ctx), void *ctx);

/* Where the TTLs of response MSG are: the offset of the TTL field of each
 * record of the answer, authority and additional sections, OPT records
 * left out (their TTL field holds flags), at most MAX of them into OFFS.
 * Returns how many, or -1 when MSG does not read to its exact end (names
 * as dns_strip_answer reads them) or has more than MAX. */
int dns_ttl_offsets(const uint8_t *msg, size_t len, uint16_t *offs, int max);

/* Names: wire to presentation and back (escaping not supported: labels of
 * other bytes than letters, digits, '-', '_' and '*' are refused by
 * dns_name_to_wire, so they never reach a reply). TEXT may end in one dot;
 * "" and "." are the root. Returns 0 (OUT holds *LEN bytes, the root byte
 * last, case kept) or -1. */
int dns_name_to_wire(const char *text, uint8_t *out, size_t cap, size_t *len);
/* Case-insensitive: is NAME equal to ZONE or below it? (A trailing dot on
 * either is ignored; every name is in the root zone "".) */
int dns_name_in_zone(const char *name, const char *zone);

#endif
