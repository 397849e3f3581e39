/* cache.c: the decision cache. A key is a SHA-256 over what a decision
 * depends on (token, resource, route, method, source address); the value
 * the reply's members. Entries expire at the time the caller gives (never
 * after the token does) and the oldest go first when the cache is full, so
 * memory stays bounded whatever tokens are thrown at it. */
#include <stdlib.h>
#include <string.h>

#include "authz.h"

struct entry {
	uint8_t key[CACHE_KEY_LEN];
	json_t *fields;
	time_t expires;
	struct entry *next_in_bucket;
	struct entry *older, *newer;   /* insertion order, for eviction */
};

struct dcache {
	size_t max, n, nbuckets;
	struct entry **buckets;
	struct entry *oldest, *newest;
};

struct dcache *dcache_new(size_t max)
{
	struct dcache *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->max = max;
	c->nbuckets = 64;
	while (c->nbuckets < max && c->nbuckets < (1u << 20))
		c->nbuckets <<= 1;
	c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
	if (!c->buckets) {
		free(c);
		return NULL;
	}
	return c;
}

static size_t bucket_of(const struct dcache *c, const uint8_t key[CACHE_KEY_LEN])
{
	size_t h;

	memcpy(&h, key, sizeof h); /* the key is a hash already */
	return h & (c->nbuckets - 1);
}

static void unlink_entry(struct dcache *c, struct entry *e)
{
	struct entry **pp = &c->buckets[bucket_of(c, e->key)];

	while (*pp != e)
		pp = &(*pp)->next_in_bucket;
	*pp = e->next_in_bucket;
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	json_decref(e->fields);
	free(e);
	c->n--;
}

json_t *dcache_get(struct dcache *c, const uint8_t key[CACHE_KEY_LEN], time_t now, time_t *expires)
{
	struct entry *e;

	if (!c)
		return NULL;
	for (e = c->buckets[bucket_of(c, key)]; e; e = e->next_in_bucket) {
		if (memcmp(e->key, key, CACHE_KEY_LEN))
			continue;
		if (now >= e->expires) {
			unlink_entry(c, e);
			return NULL;
		}
		if (expires)
			*expires = e->expires;
		return e->fields;
	}
	return NULL;
}

void dcache_put(struct dcache *c, const uint8_t key[CACHE_KEY_LEN], json_t *fields,
		time_t expires, time_t now)
{
	struct entry *e;
	size_t b;

	if (!c || c->max == 0 || expires <= now)
		return;
	for (e = c->buckets[bucket_of(c, key)]; e; e = e->next_in_bucket)
		if (!memcmp(e->key, key, CACHE_KEY_LEN)) {
			unlink_entry(c, e);
			break;
		}
	while (c->n >= c->max && c->oldest)
		unlink_entry(c, c->oldest);
	e = calloc(1, sizeof *e);
	if (!e)
		return; /* not cached: the next check verifies again */
	memcpy(e->key, key, CACHE_KEY_LEN);
	e->fields = json_incref(fields);
	e->expires = expires;
	b = bucket_of(c, key);
	e->next_in_bucket = c->buckets[b];
	c->buckets[b] = e;
	e->older = c->newest;
	if (c->newest)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
	c->n++;
}

void dcache_clear(struct dcache *c)
{
	if (!c)
		return;
	while (c->oldest)
		unlink_entry(c, c->oldest);
}

size_t dcache_size(const struct dcache *c)
{
	return c ? c->n : 0;
}

void dcache_free(struct dcache *c)
{
	if (!c)
		return;
	dcache_clear(c);
	free(c->buckets);
	free(c);
}
