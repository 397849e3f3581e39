/* cache.c: the answers libunbound gave for forwarded names, kept in front
 * of it. libunbound has its own cache, but reaching it costs a message to
 * its thread and back, a parse into a ub_result, a timer and two
 * allocations: about four times what answering a private name costs. A
 * name asked again is answered from here instead, in the same pass that
 * answers private names.
 *
 * What is kept is libunbound's answer as it came (its OPT dropped), under
 * the question's name in lower case, type and class, for as long as its
 * smallest TTL; given out again, each TTL is less the whole seconds it was
 * kept, as libunbound's own cache would say. Only NOERROR and NXDOMAIN
 * answers with at least one record (a negative answer's SOA carries its
 * TTL), not truncated, and small enough for any UDP client are kept. The
 * private zones are answered before this is asked, so a name the map takes
 * over is never answered from here; the server clears it when the
 * resolver is replaced (new upstreams, new zones to refuse).
 *
 * A fixed table of sets of CACHE_WAYS entries: a name can only be in its
 * set, and a new answer takes the set's empty, expired or soonest-expiring
 * entry, so memory is bounded and nothing needs sweeping. */
#include "dnsd.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_WAYS 4
#define CACHE_MAX_RRS 64

struct cache_entry {
	uint8_t key[DNS_NAME_MAX + 4]; /* lower-case wire name, type, class */
	size_t keylen;                 /* 0: empty */
	uint32_t hash;
	uint64_t stored_ms, expires_ms;
	uint8_t *answer;
	size_t len;
	uint16_t ttl_at[CACHE_MAX_RRS];
	int nttl;
};

struct answer_cache {
	struct cache_entry *e;
	size_t sets;  /* a power of two */
	size_t count;
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Q's question as a key: its wire name in lower case, type, class. */
static size_t make_key(const struct dns_query *q, uint8_t *key, uint32_t *hash)
{
	size_t n = q->wire_name_len;
	uint32_t h = 2166136261u;

	if (n == 0 || n > DNS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = q->wire_name[i];

		key[i] = c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
	}
	key[n] = (uint8_t)(q->qtype >> 8);
	key[n + 1] = (uint8_t)q->qtype;
	key[n + 2] = (uint8_t)(q->qclass >> 8);
	key[n + 3] = (uint8_t)q->qclass;
	n += 4;
	for (size_t i = 0; i < n; i++)
		h = (h ^ key[i]) * 16777619u;
	*hash = h;
	return n;
}

/* Is the question of ANSWER (uncompressed, as libunbound writes it) the
 * one KEY holds, letter case aside? */
static int same_question(const uint8_t *answer, size_t len, const uint8_t *key, size_t keylen)
{
	const uint8_t *p = answer + DNS_HEADER_LEN;

	if (len - DNS_HEADER_LEN < keylen)
		return 0;
	for (size_t i = 0; i + 4 < keylen; i++)
		if ((p[i] >= 'A' && p[i] <= 'Z' ? (uint8_t)(p[i] - 'A' + 'a') : p[i]) != key[i])
			return 0;
	return !memcmp(p + keylen - 4, key + keylen - 4, 4); /* type and class */
}

struct answer_cache *cache_new(size_t entries)
{
	struct answer_cache *c = calloc(1, sizeof *c);
	size_t sets = 1;

	if (!c)
		return NULL;
	while (sets * CACHE_WAYS < entries)
		sets *= 2;
	c->e = calloc(sets * CACHE_WAYS, sizeof *c->e);
	if (!c->e) {
		free(c);
		return NULL;
	}
	c->sets = sets;
	return c;
}

static void drop(struct answer_cache *c, struct cache_entry *e)
{
	if (!e->keylen)
		return;
	free(e->answer);
	e->answer = NULL;
	e->keylen = 0;
	c->count--;
}

void cache_clear(struct answer_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->sets * CACHE_WAYS; i++)
		drop(c, &c->e[i]);
}

void cache_free(struct answer_cache *c)
{
	if (!c)
		return;
	cache_clear(c);
	free(c->e);
	free(c);
}

size_t cache_count(const struct answer_cache *c)
{
	return c ? c->count : 0;
}

static struct cache_entry *find(struct answer_cache *c, const uint8_t *key, size_t keylen,
				uint32_t hash)
{
	struct cache_entry *set = &c->e[(hash & (c->sets - 1)) * CACHE_WAYS];

	for (int i = 0; i < CACHE_WAYS; i++)
		if (set[i].keylen == keylen && set[i].hash == hash &&
		    !memcmp(set[i].key, key, keylen))
			return &set[i];
	return NULL;
}

void cache_put(struct answer_cache *c, const struct dns_query *q, const uint8_t *answer,
	       size_t len, uint64_t now_ms)
{
	uint8_t key[DNS_NAME_MAX + 4], *copy;
	uint16_t ttl_at[CACHE_MAX_RRS];
	uint32_t hash, min_ttl = UINT32_MAX;
	size_t keylen;
	struct cache_entry *e, *set;
	int nttl, rcode;

	if (!c || !answer || len < DNS_HEADER_LEN || len > CACHE_ANSWER_MAX ||
	    !(keylen = make_key(q, key, &hash)))
		return;
	rcode = answer[3] & 0x0f;
	if ((answer[2] & 0x02) || (rcode != DNS_RCODE_NOERROR && rcode != DNS_RCODE_NXDOMAIN) ||
	    get16(answer + 4) != 1 || !same_question(answer, len, key, keylen))
		return;
	copy = malloc(len);
	if (!copy)
		return;
	len = dns_strip_answer(answer, len, copy, len, 0);
	nttl = len ? dns_ttl_offsets(copy, len, ttl_at, CACHE_MAX_RRS) : -1;
	for (int i = 0; i < nttl; i++) {
		uint32_t t = get32(copy + ttl_at[i]);

		/* RFC 2181 8: a TTL with the top bit set is taken as 0. */
		if (t & 0x80000000u)
			t = 0;
		if (t < min_ttl)
			min_ttl = t;
	}
	if (nttl <= 0 || min_ttl == 0) {
		free(copy);
		return;
	}
	/* The same question, or an empty, expired or soonest-expiring entry. */
	e = find(c, key, keylen, hash);
	if (!e) {
		set = &c->e[(hash & (c->sets - 1)) * CACHE_WAYS];
		e = &set[0];
		for (int i = 0; i < CACHE_WAYS; i++) {
			if (!set[i].keylen || set[i].expires_ms <= now_ms) {
				e = &set[i];
				break;
			}
			if (set[i].expires_ms < e->expires_ms)
				e = &set[i];
		}
	}
	drop(c, e);
	memcpy(e->key, key, keylen);
	e->keylen = keylen;
	e->hash = hash;
	e->stored_ms = now_ms;
	e->expires_ms = now_ms + (uint64_t)min_ttl * 1000u;
	e->answer = copy;
	e->len = len;
	memcpy(e->ttl_at, ttl_at, (size_t)nttl * sizeof ttl_at[0]);
	e->nttl = nttl;
	c->count++;
}

size_t cache_get(struct answer_cache *c, const struct dns_query *q, uint64_t now_ms, uint8_t *out,
		 size_t cap)
{
	uint8_t key[DNS_NAME_MAX + 4];
	uint16_t check[CACHE_MAX_RRS];
	uint32_t hash, age;
	size_t keylen;
	struct cache_entry *e;

	if (!c || !c->count || !(keylen = make_key(q, key, &hash)))
		return 0;
	e = find(c, key, keylen, hash);
	if (!e)
		return 0;
	if (e->expires_ms <= now_ms) {
		drop(c, e);
		return 0;
	}
	if (e->len > cap)
		return 0;
	memcpy(out, e->answer, e->len);
	age = (uint32_t)((now_ms - e->stored_ms) / 1000u);
	for (int i = 0; i < e->nttl; i++) {
		uint32_t t = get32(out + e->ttl_at[i]);

		put32(out + e->ttl_at[i], (t & 0x80000000u) || t <= age ? 0 : t - age);
	}
	/* A name may point into a TTL (no resolver writes that, but the bytes
	 * came from the network): what goes out must still read as it did. */
	if (dns_ttl_offsets(out, e->len, check, CACHE_MAX_RRS) != e->nttl) {
		drop(c, e);
		return 0;
	}
	return e->len;
}
