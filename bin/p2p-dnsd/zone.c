/* zone.c: the private zones, answered from the map and from nothing else:
 * a resource name gets its overlay address, an unknown name NXDOMAIN with a
 * short negative TTL (a name with names below it, NODATA: RFC 8020), the
 * apex its SOA and NS, and a PTR under the overlay's reverse zones the
 * resource's name. These answers never depend on the
 * tunnel, so a browser that asks too early caches no failure. */
#include "dnsd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

/* The names of the map, looked up at every query: an open-addressing hash
 * table of lower-case names (no trailing dot), each with its address
 * parsed once at load. A name whose address does not parse still exists
 * (family 0): it answers NODATA, as it always did. */
struct entry {
	char *name;         /* NULL: an empty slot */
	size_t len;
	uint32_t hash;
	struct addr addr;
};

struct table {
	struct entry *slots;
	size_t mask;        /* the number of slots less one, a power of two */
	size_t count;
};

struct zone {
	char name[DNS_TEXT_MAX + 1]; /* lower case, no trailing dot */
	size_t len;
	int reverse;                 /* one of the overlay's in-addr.arpa zones */
};

/* The in-addr.arpa zones that cover the overlay exactly: one for a prefix
 * on an octet boundary, else one per value of the partial octet (16 for
 * 100.96.0.0/12: 96.100 to 111.100.in-addr.arpa), so a PTR for an address
 * outside the overlay (100.64.0.1, say) still goes to the upstreams. */
#define REVERSE_ZONES_MAX 256

struct zones {
	json_t *zones;      /* lower-case zone names, for zones_list */
	struct zone *list;  /* the same, for zone_of */
	size_t nlist;
	struct table names;     /* name -> address */
	struct table wildcards; /* suffix of "*.suffix" -> address */
	struct table parents;   /* names with names below them (empty non-terminals) */
	json_t *ptr;        /* address -> the resource's first name */
	struct prefix overlay;
	int has_overlay;
	uint32_t ttl;
	uint32_t serial;
};

static uint8_t lower_byte(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
}

/* IN in lower case into OUT (SIZE bytes), one trailing dot dropped;
 * returns the length. */
static size_t lower(char *out, size_t size, const char *in)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < size; i++)
		out[i] = (char)lower_byte((uint8_t)in[i]);
	out[i] = '\0';
	if (i && out[i - 1] == '.')
		out[--i] = '\0';
	return i;
}

/* FNV-1a: names of a map are not chosen by the clients who ask them, and
 * a probe costs a few bytes' comparison, so a simple hash is enough. */
static uint32_t hash_name(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static void table_free(struct table *t)
{
	for (size_t i = 0; t->slots && i <= t->mask; i++)
		free(t->slots[i].name);
	free(t->slots);
	memset(t, 0, sizeof *t);
}

/* Room for N names at most half full. */
static int table_init(struct table *t, size_t n)
{
	size_t size = 16;

	memset(t, 0, sizeof *t);
	while (size < 2 * n)
		size *= 2;
	t->slots = calloc(size, sizeof *t->slots);
	if (!t->slots)
		return -1;
	t->mask = size - 1;
	return 0;
}

static struct entry *table_find(const struct table *t, const char *name, size_t len, uint32_t h)
{
	if (!t->slots)
		return NULL;
	for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
		struct entry *e = &t->slots[i];

		if (!e->name)
			return NULL;
		if (e->hash == h && e->len == len && !memcmp(e->name, name, len))
			return e;
	}
}

/* Twice the slots, the entries moved over: a table is kept at most half
 * full, whatever it was sized for (a name 100 labels deep has 100
 * parents), so a probe always ends at an empty slot. */
static int table_grow(struct table *t)
{
	size_t size = 2 * (t->mask + 1);
	struct entry *slots = calloc(size, sizeof *slots);

	if (!slots)
		return -1;
	for (size_t i = 0; i <= t->mask; i++) {
		size_t k;

		if (!t->slots[i].name)
			continue;
		for (k = t->slots[i].hash & (size - 1); slots[k].name; k = (k + 1) & (size - 1))
			;
		slots[k] = t->slots[i];
	}
	free(t->slots);
	t->slots = slots;
	t->mask = size - 1;
	return 0;
}

/* Add NAME (lower case) with ADDR (NULL: none), or replace the address of a
 * name already there (the last resource that names it wins, as before). */
static int table_put(struct table *t, const char *name, const char *addr)
{
	size_t len = strlen(name);
	uint32_t h = hash_name(name, len);
	struct entry *e = table_find(t, name, len, h);
	size_t i;

	if (!e && 2 * (t->count + 1) > t->mask + 1 && table_grow(t) < 0)
		return -1;
	if (!e) {
		for (i = h & t->mask; t->slots[i].name; i = (i + 1) & t->mask)
			;
		e = &t->slots[i];
		e->name = strdup(name);
		if (!e->name)
			return -1;
		e->len = len;
		e->hash = h;
		t->count++;
	}
	if (!addr || addr_parse(addr, &e->addr) < 0)
		e->addr.family = 0;
	return 0;
}

struct zones *zones_new(void)
{
	struct zones *z = calloc(1, sizeof *z);

	if (!z)
		return NULL;
	z->zones = json_array();
	z->ptr = json_object();
	z->ttl = 5;
	if (!z->zones || !z->ptr || table_init(&z->names, 0) < 0 ||
	    table_init(&z->wildcards, 0) < 0 || table_init(&z->parents, 0) < 0) {
		zones_free(z);
		return NULL;
	}
	return z;
}

void zones_free(struct zones *z)
{
	if (!z)
		return;
	json_decref(z->zones);
	free(z->list);
	table_free(&z->names);
	table_free(&z->wildcards);
	table_free(&z->parents);
	json_decref(z->ptr);
	free(z);
}

/* Add the overlay's reverse zones to the list (which has room for
 * REVERSE_ZONES_MAX more); an IPv6 overlay has none yet. */
static int add_reverse_zones(struct zones *z)
{
	int len = z->overlay.len, octets = (len + 7) / 8, spare;
	unsigned first, count;

	if (z->overlay.addr.family != AF_INET || octets == 0)
		return 0;
	spare = octets * 8 - len;
	first = z->overlay.addr.bytes[octets - 1];
	count = 1u << spare;
	for (unsigned v = first; v < first + count; v++) {
		struct zone *zn = &z->list[z->nlist];
		char *p = zn->name;
		size_t room = sizeof zn->name;
		int n = snprintf(p, room, "%u.", v);

		for (int i = octets - 2; i >= 0; i--) {
			p += n;
			room -= (size_t)n;
			n = snprintf(p, room, "%u.", z->overlay.addr.bytes[i]);
		}
		p += n;
		room -= (size_t)n;
		snprintf(p, room, "in-addr.arpa");
		zn->len = strlen(zn->name);
		zn->reverse = 1;
		z->nlist++;
		if (json_array_append_new(z->zones, json_string(zn->name)) < 0)
			return -1;
	}
	return 0;
}

/* Every name strictly between NAME (lower case) and its zone's apex has
 * names below it: it exists, with no data (RFC 8020 says NXDOMAIN there
 * would deny the names below too). */
static int add_parents(struct zones *n, const char *name)
{
	size_t len = strlen(name);
	const char *apex = NULL;
	size_t apex_len = 0;

	for (size_t i = 0; i < n->nlist; i++) {
		const struct zone *zn = &n->list[i];

		if (zn->len < len && name[len - zn->len - 1] == '.' &&
		    !memcmp(name + len - zn->len, zn->name, zn->len) && zn->len >= apex_len) {
			apex = zn->name;
			apex_len = zn->len;
		}
	}
	if (!apex)
		return 0;
	for (const char *dot = strchr(name, '.'); dot && strlen(dot + 1) > apex_len;
	     dot = strchr(dot + 1, '.'))
		if (table_put(&n->parents, dot + 1, NULL) < 0)
			return -1;
	return 0;
}

/* The PTR names' parents in the reverse zones exist too
 * ("128.96.100.in-addr.arpa" above "20.128.96.100.in-addr.arpa"). */
static int add_reverse_parents(struct zones *n)
{
	const char *addr;
	json_t *v;

	json_object_foreach(n->ptr, addr, v) {
		struct addr a;
		char name[64];

		if (addr_parse(addr, &a) < 0 || a.family != AF_INET)
			continue;
		snprintf(name, sizeof name, "%u.%u.%u.%u.in-addr.arpa", a.bytes[3], a.bytes[2],
			 a.bytes[1], a.bytes[0]);
		if (add_parents(n, name) < 0)
			return -1;
	}
	return 0;
}

/* How many names the resources give (to size the tables). */
static size_t count_names(json_t *resources)
{
	const char *name;
	json_t *r;
	size_t n = 0;

	json_object_foreach(resources, name, r)
		n += json_array_size(json_object_get(r, "names"));
	return n;
}

/* Fill the fresh N from the map; -1 when out of memory. */
static int build(struct zones *n, json_t *settings, json_t *resources, json_int_t version)
{
	json_t *dns = json_object_get(settings, "dns"), *v, *r;
	const char *name;
	size_t i, names = count_names(resources);

	if (table_init(&n->names, names) < 0 || table_init(&n->wildcards, names) < 0 ||
	    table_init(&n->parents, 4 * names) < 0)
		return -1;
	n->list = calloc(json_array_size(json_object_get(dns, "zones")) + REVERSE_ZONES_MAX,
			 sizeof *n->list);
	if (!n->list)
		return -1;
	json_array_foreach(json_object_get(dns, "zones"), i, v) {
		struct zone *zn = &n->list[n->nlist++];

		zn->len = lower(zn->name, sizeof zn->name,
				json_string_value(v) ? json_string_value(v) : "");
		if (json_array_append_new(n->zones, json_string(zn->name)) < 0)
			return -1;
	}
	n->ttl = json_is_integer(json_object_get(dns, "ttl"))
			 ? (uint32_t)json_integer_value(json_object_get(dns, "ttl")) : 5;
	n->serial = (uint32_t)version;
	n->has_overlay = json_is_string(json_object_get(settings, "overlay")) &&
			 prefix_parse(json_string_value(json_object_get(settings, "overlay")),
				      &n->overlay, 0, 0) == 0;
	if (n->has_overlay && add_reverse_zones(n) < 0)
		return -1;
	json_object_foreach(resources, name, r) {
		const char *addr = json_string_value(json_object_get(r, "addr"));

		if (!addr)
			continue;
		json_array_foreach(json_object_get(r, "names"), i, v) {
			char nm[DNS_TEXT_MAX + 1];
			int wild;

			lower(nm, sizeof nm, json_string_value(v) ? json_string_value(v) : "");
			wild = !strncmp(nm, "*.", 2);
			if (table_put(wild ? &n->wildcards : &n->names, wild ? nm + 2 : nm, addr) < 0 ||
			    add_parents(n, nm) < 0) /* "*.w.zone": w.zone has a name below */
				return -1;
			if ((i == 0 || !json_object_get(n->ptr, addr)) &&
			    json_object_set_new(n->ptr, addr, json_string(wild ? nm + 2 : nm)) < 0)
				return -1;
		}
	}
	return add_reverse_parents(n);
}

/* A new map version: built aside, and swapped in only when whole, so a
 * failure keeps the previous version's answers. */
int zones_load(struct zones *z, json_t *settings, json_t *resources, json_int_t version)
{
	struct zones *n = calloc(1, sizeof *n), old;

	if (!n || !(n->zones = json_array()) || !(n->ptr = json_object()) ||
	    build(n, settings, resources, version) < 0) {
		zones_free(n);
		return -1;
	}
	old = *z;
	*z = *n;
	*n = old;
	zones_free(n);
	return 0;
}

json_t *zones_list(const struct zones *z)
{
	return json_deep_copy(z->zones);
}

size_t zones_count_names(const struct zones *z)
{
	return z->names.count + z->wildcards.count;
}

/* Is NAME (LEN bytes, lower case) equal to ZONE or below it? The root
 * zone "" holds every name. */
static int in_zone(const char *name, size_t len, const char *zone, size_t zlen)
{
	if (zlen == 0)
		return 1;
	if (len < zlen || (len > zlen && name[len - zlen - 1] != '.'))
		return 0;
	return !memcmp(name + len - zlen, zone, zlen);
}

/* The private zone holding NAME (lower case), the longest, or NULL. */
static const struct zone *zone_of(const struct zones *z, const char *name, size_t len)
{
	const struct zone *best = NULL;

	for (size_t i = 0; i < z->nlist; i++)
		if (in_zone(name, len, z->list[i].name, z->list[i].len) &&
		    (!best || z->list[i].len > best->len))
			best = &z->list[i];
	return best;
}

int zones_private(const struct zones *z, const char *name)
{
	char n[DNS_TEXT_MAX + 1];
	size_t len = lower(n, sizeof n, name);

	return zone_of(z, n, len) != NULL;
}

/* "20.128.96.100.in-addr.arpa" -> "100.96.128.20"; -1 if not four octets. */
static int ptr_address(const char *name, char *out, size_t size)
{
	unsigned o[4];
	char tail[32];

	char again[32];

	if (sscanf(name, "%3u.%3u.%3u.%3u.%31s", &o[0], &o[1], &o[2], &o[3], tail) != 5 ||
	    strcmp(tail, "in-addr.arpa") || o[0] > 255 || o[1] > 255 || o[2] > 255 || o[3] > 255)
		return -1;
	/* Only the name's normal form: "020.128..." names nothing. */
	snprintf(again, sizeof again, "%u.%u.%u.%u.", o[0], o[1], o[2], o[3]);
	if (strncmp(name, again, strlen(again)))
		return -1;
	snprintf(out, size, "%u.%u.%u.%u", o[3], o[2], o[1], o[0]);
	return 0;
}

/* NAME (LEN bytes, lower case): its own entry, or the closest wildcard's
 * above it, or NULL. */
static const struct entry *lookup_address(const struct zones *z, const char *name, size_t len)
{
	const struct entry *hit = table_find(&z->names, name, len, hash_name(name, len));

	if (hit || z->wildcards.count == 0)
		return hit;
	for (size_t i = 0; i < len; i++) {
		if (name[i] != '.')
			continue;
		hit = table_find(&z->wildcards, name + i + 1, len - i - 1,
				 hash_name(name + i + 1, len - i - 1));
		if (hit)
			return hit;
	}
	return NULL;
}

static void add_soa(struct dns_builder *b, const char *zone, uint32_t ttl, uint32_t serial)
{
	char mname[DNS_TEXT_MAX + 1], rname[DNS_TEXT_MAX + 1];

	snprintf(mname, sizeof mname, "dns.%s", zone);
	snprintf(rname, sizeof rname, "hostmaster.%s", zone);
	dns_add_soa(b, DNS_SECTION_AUTHORITY, zone, ttl, mname, rname, serial, 3600, 600, 86400,
		    DNSD_NEGATIVE_TTL);
}

/* Answer Q, whose name (NAME, LEN bytes, lower case) is in ZONE. */
static size_t answer(const struct zones *z, const struct dns_query *q, const char *name,
		     size_t len, const struct zone *zn, uint8_t *buf, size_t cap, size_t limit,
		     struct dnsd_stats *st)
{
	struct dns_builder b;
	char ptr_addr[ADDR_STRLEN];
	const struct entry *addr = NULL;
	const char *target = NULL, *zone = zn->name;
	uint32_t neg = DNSD_NEGATIVE_TTL < z->ttl * 2 ? DNSD_NEGATIVE_TTL : z->ttl * 2;
	int exists, apex = len == zn->len;
	/* ANY gets what the name has (RFC 8482 lets us give a subset). */
	int any = q->qtype == DNS_TYPE_ANY;

	if (zn->reverse && ptr_address(name, ptr_addr, sizeof ptr_addr) == 0)
		target = json_string_value(json_object_get(z->ptr, ptr_addr));
	else if (!zn->reverse)
		addr = lookup_address(z, name, len);
	exists = addr || target || apex ||
		 table_find(&z->parents, name, len, hash_name(name, len)) != NULL;
	dns_build_start(&b, buf, cap, limit, q, exists ? DNS_RCODE_NOERROR : DNS_RCODE_NXDOMAIN, 1, 1);
	st->private_answers++;
	if (!exists) {
		st->nxdomain++;
		add_soa(&b, zone, neg, z->serial);
		return dns_build_finish(&b);
	}
	/* Owners are the question's name, so the 0x20 case is echoed. */
	if (addr && (q->qtype == DNS_TYPE_A || any) && addr->addr.family == AF_INET) {
		dns_add_rr(&b, DNS_SECTION_ANSWER, q->name, DNS_TYPE_A, z->ttl, addr->addr.bytes, 4);
	} else if (addr && (q->qtype == DNS_TYPE_AAAA || any) && addr->addr.family == AF_INET6) {
		dns_add_rr(&b, DNS_SECTION_ANSWER, q->name, DNS_TYPE_AAAA, z->ttl, addr->addr.bytes,
			   16);
	} else if (target && (q->qtype == DNS_TYPE_PTR || any)) {
		dns_add_name_rr(&b, DNS_SECTION_ANSWER, q->name, DNS_TYPE_PTR, z->ttl, target);
	} else if (apex && (q->qtype == DNS_TYPE_SOA || any)) {
		/* Room for any zone: a name too long comes out refused by the builder. */
		char mname[DNS_TEXT_MAX + 16], rname[DNS_TEXT_MAX + 16];

		snprintf(mname, sizeof mname, "dns.%s", zone);
		snprintf(rname, sizeof rname, "hostmaster.%s", zone);
		dns_add_soa(&b, DNS_SECTION_ANSWER, q->name, z->ttl, mname, rname, z->serial, 3600,
			    600, 86400, DNSD_NEGATIVE_TTL);
	} else if (apex && q->qtype == DNS_TYPE_NS) {
		char ns[DNS_TEXT_MAX + 16];

		snprintf(ns, sizeof ns, "dns.%s", zone);
		dns_add_name_rr(&b, DNS_SECTION_ANSWER, q->name, DNS_TYPE_NS, z->ttl, ns);
	} else {
		add_soa(&b, zone, neg, z->serial); /* NODATA */
	}
	return dns_build_finish(&b);
}

size_t zones_answer(const struct zones *z, const struct dns_query *q, uint8_t *buf, size_t cap,
		    size_t limit, struct dnsd_stats *st)
{
	char name[DNS_TEXT_MAX + 1];
	size_t len = lower(name, sizeof name, q->name);
	const struct zone *zone = zone_of(z, name, len);

	if (!zone) /* not ours: the caller asks zones_private first */
		return dns_build_error(buf, cap, NULL, 0, q, DNS_RCODE_REFUSED);
	return answer(z, q, name, len, zone, buf, cap, limit, st);
}

size_t zones_try_answer(const struct zones *z, const struct dns_query *q, uint8_t *buf,
			size_t cap, size_t limit, struct dnsd_stats *st, int *private)
{
	char name[DNS_TEXT_MAX + 1];
	size_t len = lower(name, sizeof name, q->name);
	const struct zone *zone = zone_of(z, name, len);

	*private = zone != NULL;
	return zone ? answer(z, q, name, len, zone, buf, cap, limit, st) : 0;
}
