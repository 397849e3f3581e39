/* reuse.c: p2p-authz's answers, kept so that the same check need not be
 * asked again. The key holds every input of the check, each with its
 * length (resource, host, method, target, source, each Authorization and
 * Cookie field: authz-client.c's check_key): two requests share an entry
 * only when p2p-authz would see the same question.
 * An entry lives for the reuse_ms p2p-authz gave (the token's and the
 * assertion's lifetime, at most a minute) and all go at once when
 * p2p-authz says its decisions changed (authz-client.c). Full: the oldest
 * goes first. The table is seeded at start, so that chosen keys do not
 * pile into one bucket. */
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "tlsterm.h"

struct entry {
	uint64_t hash, expires;
	struct verdict *verdict;
	struct entry *next_in_bucket, *older, *newer;
	size_t len;
	char key[];
};

static struct {
	struct entry **buckets;
	size_t nbuckets, n, max;
	struct entry *oldest, *newest;
	uint64_t seed;
} rt;

void reuse_init(size_t max)
{
	size_t nb = 16;

	reuse_clear();
	free(rt.buckets);
	rt.buckets = NULL;
	rt.max = max;
	rt.nbuckets = 0;
	if (!max)
		return;
	while (nb < max * 2)
		nb *= 2;
	if (!(rt.buckets = calloc(nb, sizeof *rt.buckets))) {
		rt.max = 0; /* no reuse: every request is asked */
		return;
	}
	rt.nbuckets = nb;
	if (RAND_bytes((unsigned char *)&rt.seed, sizeof rt.seed) != 1)
		rt.seed = (uint64_t)(uintptr_t)&rt ^ 0x9e3779b97f4a7c15u;
}

/* The key eight bytes at a time, each word mixed in with a multiply and a
 * shift (the last, short word with the key's length), from the seed: a
 * key is a request's target and credentials, and a byte at a time was
 * most of a reused check's cost. */
static uint64_t hash_of(const char *key, size_t len)
{
	const uint64_t k = 0x9e3779b97f4a7c15u;
	uint64_t h = rt.seed, w;

	for (; len >= 8; key += 8, len -= 8) {
		memcpy(&w, key, 8);
		h = (h ^ w) * k;
		h ^= h >> 29;
	}
	w = 0;
	memcpy(&w, key, len);   /* the bytes left, fewer than eight */
	h = (h ^ w ^ (uint64_t)len << 56) * k;
	return h ^ (h >> 32);
}

static void unlink_entry(struct entry *e)
{
	struct entry **pp = &rt.buckets[e->hash & (rt.nbuckets - 1)];

	while (*pp && *pp != e)
		pp = &(*pp)->next_in_bucket;
	if (*pp)
		*pp = e->next_in_bucket;
	if (e->older)
		e->older->newer = e->newer;
	else
		rt.oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		rt.newest = e->older;
	verdict_unref(e->verdict);
	free(e);
	rt.n--;
}

struct verdict *reuse_get(const char *key, size_t len, uint64_t now_ms)
{
	uint64_t h;

	if (!rt.nbuckets)
		return NULL;
	h = hash_of(key, len);
	for (struct entry *e = rt.buckets[h & (rt.nbuckets - 1)]; e; e = e->next_in_bucket) {
		if (e->hash != h || e->len != len || memcmp(e->key, key, len))
			continue;
		if (now_ms >= e->expires) {
			unlink_entry(e);
			return NULL;
		}
		return e->verdict;
	}
	return NULL;
}

void reuse_put(const char *key, size_t len, struct verdict *verdict, uint64_t expires_ms)
{
	struct entry *e;
	uint64_t h;

	if (!rt.nbuckets || len > REUSE_KEY_MAX)
		return;
	h = hash_of(key, len);
	for (e = rt.buckets[h & (rt.nbuckets - 1)]; e; e = e->next_in_bucket)
		if (e->hash == h && e->len == len && !memcmp(e->key, key, len)) {
			unlink_entry(e);
			break;
		}
	while (rt.n >= rt.max && rt.oldest)
		unlink_entry(rt.oldest);
	if (!(e = malloc(sizeof *e + len)))
		return; /* not kept: the next such request is asked */
	e->hash = h;
	e->expires = expires_ms;
	e->verdict = verdict_ref(verdict);
	e->len = len;
	memcpy(e->key, key, len);
	e->next_in_bucket = rt.buckets[h & (rt.nbuckets - 1)];
	rt.buckets[h & (rt.nbuckets - 1)] = e;
	e->newer = NULL;
	e->older = rt.newest;
	if (rt.newest)
		rt.newest->newer = e;
	else
		rt.oldest = e;
	rt.newest = e;
	rt.n++;
}

void reuse_clear(void)
{
	while (rt.oldest)
		unlink_entry(rt.oldest);
}

size_t reuse_size(void)
{
	return rt.n;
}
