/* alloc.c: stable overlay addresses. Every entity's address is recorded in
 * the allocation state under its key ("resource/vault"), so it survives
 * restarts, reloads and edits of other entries; an entity that leaves the
 * map keeps its address reserved for a grace period, so that traffic still
 * in flight (or a DNS answer still cached) never reaches a newcomer.
 *
 * New addresses start at a hash of the key inside the pool of the entity's
 * kind and probe upwards: the same map on a fresh host gives mostly the same
 * addresses even without the state file. */
#include "mapd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"

#define ALLOC_STATE_VERSION 1

static json_t *addresses(const struct alloc_state *st)
{
	return json_object_get(st->doc, "addresses");
}

static json_t *empty_state(void)
{
	return json_pack("{s:i,s:{}}", "version", ALLOC_STATE_VERSION, "addresses");
}

int alloc_state_load(struct alloc_state *st, const char *path, struct map_errors *errs)
{
	json_error_t jerr;
	json_t *doc, *rec, *seen;
	const char *key;

	st->doc = NULL;
	doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		FILE *f = fopen(path, "r");

		if (!f && errno == ENOENT) {
			st->doc = empty_state();
			return 0;
		}
		if (f)
			fclose(f);
		map_errors_add(errs, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		return -1;
	}
	if (json_integer_value(json_object_get(doc, "version")) != ALLOC_STATE_VERSION ||
	    !json_is_object(json_object_get(doc, "addresses"))) {
		map_errors_add(errs, "%s: not a version %d allocation state", path, ALLOC_STATE_VERSION);
		json_decref(doc);
		return -1;
	}
	seen = json_object();
	json_object_foreach(json_object_get(doc, "addresses"), key, rec) {
		struct addr a;
		json_t *until = json_object_get(rec, "released_until"), *other;
		char text[ADDR_STRLEN];

		if (!json_is_string(json_object_get(rec, "addr")) ||
		    addr_parse(json_string_value(json_object_get(rec, "addr")), &a) < 0 ||
		    (until && !json_is_integer(until))) {
			map_errors_add(errs, "%s: .addresses.%s: not an address record", path, key);
			goto bad;
		}
		/* Two records with one address: the file was edited by hand. */
		other = json_object_get(seen, addr_str(&a, text));
		if (other) {
			map_errors_add(errs, "%s: .addresses.%s: %s is also the address of %s", path,
				       key, text, json_string_value(other));
			goto bad;
		}
		json_object_set_new(seen, text, json_string(key));
	}
	json_decref(seen);
	st->doc = doc;
	return 0;
bad:
	json_decref(seen);
	json_decref(doc);
	return -1;
}

int alloc_state_save(const struct alloc_state *st, const char *path)
{
	char *text = json_dumps(st->doc, JSON_INDENT(1) | JSON_SORT_KEYS);
	int rc;

	if (!text) {
		errno = ENOMEM;
		return -1;
	}
	rc = file_replace(path, text, strlen(text), 0644);
	free(text);
	return rc;
}

void alloc_state_free(struct alloc_state *st)
{
	json_decref(st->doc);
	st->doc = NULL;
}

int alloc_state_copy(struct alloc_state *dst, const struct alloc_state *src)
{
	dst->doc = json_deep_copy(src->doc);
	return dst->doc ? 0 : -1;
}

/* Reserved addresses inside any prefix: the network address, and the last
 * (the IPv4 broadcast address; kept free in IPv6 too, for symmetry). */
static int usable(const struct prefix *overlay, const struct addr *a)
{
	uint64_t i;

	if (!prefix_contains(overlay, a))
		return 0;
	i = prefix_host_index(overlay, a);
	/* With 64 host bits prefix_size saturates: the last index is all ones. */
	return i != 0 && i != (addr_bits(&overlay->addr) - overlay->len >= 64
				       ? UINT64_MAX : prefix_size(overlay) - 1);
}

/* The pool of each kind, as fractions of the overlay: infrastructure in the
 * first sixteenth, clients up to the half, resources in the upper half. */
static void pool_of(enum entity_kind kind, uint64_t size, uint64_t *lo, uint64_t *hi)
{
	switch (kind) {
	case ENT_DNS:
	case ENT_CONTROL:
	case ENT_CONNECTOR:
		*lo = 1;
		*hi = size / 16;
		break;
	case ENT_CLIENT:
		*lo = size / 16;
		*hi = size / 2;
		break;
	default:
		*lo = size / 2;
		*hi = size - 1;
		break;
	}
	if (*hi <= *lo + 1) { /* a tiny overlay: one pool for all */
		*lo = 1;
		*hi = size - 1;
	}
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static int taken(json_t *used, json_t *reserved, const struct addr *a)
{
	char text[ADDR_STRLEN];

	addr_str(a, text);
	return json_object_get(used, text) || json_object_get(reserved, text);
}

static int probe_range(const struct prefix *overlay, json_t *used, json_t *reserved,
		       const char *key, uint64_t lo, uint64_t hi, struct addr *out)
{
	uint64_t n = hi - lo, start = fnv1a(key) % n;

	for (uint64_t k = 0; k < n; k++) {
		prefix_nth(overlay, lo + (start + k) % n, out);
		if (usable(overlay, out) && !taken(used, reserved, out))
			return 0;
	}
	return -1;
}

static int choose_address(const struct prefix *overlay, json_t *used, json_t *reserved,
			  struct alloc_request *r)
{
	uint64_t size = prefix_size(overlay), lo, hi;

	pool_of(r->kind, size, &lo, &hi);
	if (probe_range(overlay, used, reserved, r->key, lo, hi, &r->addr) == 0)
		return 0;
	return probe_range(overlay, used, reserved, r->key, 1, size - 1, &r->addr);
}

/* Explicit addresses first: they are the operator's word. */
static void place_explicit(const struct prefix *overlay, json_t *used, json_t *live,
			   struct alloc_request *reqs, size_t n, struct map_errors *errs)
{
	for (size_t i = 0; i < n; i++) {
		struct alloc_request *r = &reqs[i];
		char text[ADDR_STRLEN], ptext[PREFIX_STRLEN];
		json_t *other;

		if (!r->explicit_addr)
			continue;
		addr_str(&r->addr, text);
		if (!prefix_contains(overlay, &r->addr)) {
			map_errors_add(errs, "%s: %s is outside the overlay %s", r->path, text,
				       prefix_str(overlay, ptext));
			continue;
		}
		if (!usable(overlay, &r->addr)) {
			map_errors_add(errs, "%s: %s is the first or last address of the overlay",
				       r->path, text);
			continue;
		}
		other = json_object_get(used, text);
		if (other) {
			map_errors_add(errs, "%s: %s is also the address of %s", r->path, text,
				       json_string_value(other));
			continue;
		}
		json_object_set_new(used, text, json_string(r->key));
		json_object_set_new(live, r->key, json_true());
	}
}

/* Entities the state already knows keep their address, unless an explicit
 * address of another entity claims it: moving a live address silently
 * would send one entity's traffic to another, so that is refused. */
static void place_known(const struct prefix *overlay, json_t *recs, json_t *used,
			json_t *live, struct alloc_request *reqs, size_t n,
			struct map_errors *errs)
{
	for (size_t i = 0; i < n; i++) {
		struct alloc_request *r = &reqs[i];
		json_t *rec = json_object_get(recs, r->key), *other;
		const char *text;

		json_object_set_new(live, r->key, json_true());
		if (r->explicit_addr || !rec)
			continue;
		text = json_string_value(json_object_get(rec, "addr"));
		if (addr_parse(text, &r->addr) < 0 || !usable(overlay, &r->addr))
			continue; /* the overlay changed: allocate anew */
		other = json_object_get(used, text);
		if (other) {
			const char *key = json_string_value(other);
			const struct alloc_request *o = NULL;

			for (size_t j = 0; j < n && !o; j++)
				if (strcmp(reqs[j].key, key) == 0)
					o = &reqs[j];
			map_errors_add(errs, "%s: %s is the allocated address of %s; give %s another",
				       o ? o->path : key, text, r->key, key);
			continue;
		}
		r->placed = 1;
		json_object_set_new(used, text, json_string(r->key));
	}
}

/* Addresses of entities that left, still within their grace period. */
static json_t *reserved_addresses(json_t *recs, json_t *live, time_t now)
{
	json_t *reserved = json_object(), *rec;
	const char *key;

	json_object_foreach(recs, key, rec) {
		json_t *until = json_object_get(rec, "released_until");

		if (json_object_get(live, key))
			continue;
		if (!until || json_integer_value(until) > (json_int_t)now)
			json_object_set(reserved, json_string_value(json_object_get(rec, "addr")),
					json_true());
	}
	return reserved;
}

/* Write the outcome back into the state; returns how many records changed. */
static int record(json_t *recs, json_t *used, json_t *live, struct alloc_request *reqs,
		  size_t n, time_t now, long grace)
{
	int changes = 0;
	json_t *rec;
	const char *key;
	void *tmp;

	for (size_t i = 0; i < n; i++) {
		char text[ADDR_STRLEN];
		json_t *want;

		addr_str(&reqs[i].addr, text);
		json_object_set_new(reqs[i].obj, "addr", json_string(text));
		want = json_pack("{s:s}", "addr", text);
		rec = json_object_get(recs, reqs[i].key);
		if (!rec || !json_equal(rec, want)) {
			json_object_set(recs, reqs[i].key, want);
			changes++;
		}
		json_decref(want);
	}
	json_object_foreach_safe(recs, tmp, key, rec) {
		json_t *until = json_object_get(rec, "released_until");
		const char *addr = json_string_value(json_object_get(rec, "addr"));
		json_t *owner = json_object_get(used, addr);

		if (json_object_get(live, key))
			continue;
		if ((owner && strcmp(json_string_value(owner), key) != 0) ||
		    (until && json_integer_value(until) <= (json_int_t)now)) {
			/* Reused by the operator's explicit choice, or its grace is over. */
			json_object_del(recs, key);
			changes++;
		} else if (!until) {
			json_object_set_new(rec, "released_until", json_integer((json_int_t)now + grace));
			changes++;
		}
	}
	return changes;
}

int alloc_assign(struct alloc_state *st, const struct prefix *overlay,
		 struct alloc_request *reqs, size_t n, time_t now, long grace,
		 struct map_errors *errs)
{
	json_t *recs = addresses(st);
	json_t *used = json_object(), *live = json_object(), *reserved = NULL;
	int before = errs->count, changes = -1;

	place_explicit(overlay, used, live, reqs, n, errs);
	place_known(overlay, recs, used, live, reqs, n, errs);
	if (errs->count != before)
		goto out;
	reserved = reserved_addresses(recs, live, now);
	for (size_t i = 0; i < n; i++) {
		struct alloc_request *r = &reqs[i];
		char text[ADDR_STRLEN], ptext[PREFIX_STRLEN];

		if (r->explicit_addr || r->placed)
			continue;
		if (choose_address(overlay, used, reserved, r) < 0) {
			map_errors_add(errs, "%s: no free address left in the overlay %s", r->path,
				       prefix_str(overlay, ptext));
			goto out;
		}
		json_object_set_new(used, addr_str(&r->addr, text), json_string(r->key));
	}
	changes = record(recs, used, live, reqs, n, now, grace);
out:
	json_decref(used);
	json_decref(live);
	json_decref(reserved);
	return changes;
}
