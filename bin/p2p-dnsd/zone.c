/* zone.c: the private zones, answered from the map and from nothing else:
 * a resource name gets its overlay address, an unknown name NXDOMAIN with a
 * short negative TTL, the apex its SOA and NS, and a PTR under the overlay's
 * reverse zone the resource's name. These answers never depend on the
 * tunnel, so a browser that asks too early caches no failure. */
#include "dnsd.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

struct zones {
	json_t *zones;      /* lower-case zone names */
	json_t *names;      /* lower-case name -> address */
	json_t *wildcards;  /* lower-case suffix of "*.suffix" -> address */
	json_t *ptr;        /* address -> the resource's first name */
	struct prefix overlay;
	char reverse_apex[80];
	int has_overlay;
	uint32_t ttl;
	uint32_t serial;
};

struct zones *zones_new(void)
{
	struct zones *z = calloc(1, sizeof *z);

	if (!z)
		return NULL;
	z->zones = json_array();
	z->names = json_object();
	z->wildcards = json_object();
	z->ptr = json_object();
	z->ttl = 5;
	return z;
}

void zones_free(struct zones *z)
{
	if (!z)
		return;
	json_decref(z->zones);
	json_decref(z->names);
	json_decref(z->wildcards);
	json_decref(z->ptr);
	free(z);
}

static void lower(char *out, size_t size, const char *in)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < size; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[i] = '\0';
	if (i && out[i - 1] == '.')
		out[i - 1] = '\0';
}

/* The in-addr.arpa zone of the overlay, at an octet boundary. */
static void make_reverse_apex(struct zones *z)
{
	int octets = z->overlay.len / 8;
	char *p = z->reverse_apex;
	size_t room = sizeof z->reverse_apex;

	z->reverse_apex[0] = '\0';
	if (z->overlay.addr.family != AF_INET)
		return;
	for (int i = octets - 1; i >= 0; i--) {
		int n = snprintf(p, room, "%u.", z->overlay.addr.bytes[i]);

		p += n;
		room -= (size_t)n;
	}
	snprintf(p, room, "in-addr.arpa");
}

int zones_load(struct zones *z, json_t *settings, json_t *resources, json_int_t version)
{
	json_t *dns = json_object_get(settings, "dns"), *v, *r;
	const char *name;
	size_t i;

	json_array_clear(z->zones);
	json_object_clear(z->names);
	json_object_clear(z->wildcards);
	json_object_clear(z->ptr);
	json_array_foreach(json_object_get(dns, "zones"), i, v) {
		char zone[DNS_TEXT_MAX + 1];

		lower(zone, sizeof zone, json_string_value(v) ? json_string_value(v) : "");
		json_array_append_new(z->zones, json_string(zone));
	}
	z->ttl = json_is_integer(json_object_get(dns, "ttl"))
			 ? (uint32_t)json_integer_value(json_object_get(dns, "ttl")) : 5;
	z->serial = (uint32_t)version;
	z->has_overlay = json_is_string(json_object_get(settings, "overlay")) &&
			 prefix_parse(json_string_value(json_object_get(settings, "overlay")),
				      &z->overlay, 0, 0) == 0;
	if (z->has_overlay)
		make_reverse_apex(z);
	json_object_foreach(resources, name, r) {
		const char *addr = json_string_value(json_object_get(r, "addr"));

		if (!addr)
			continue;
		json_array_foreach(json_object_get(r, "names"), i, v) {
			char n[DNS_TEXT_MAX + 1];

			lower(n, sizeof n, json_string_value(v) ? json_string_value(v) : "");
			if (!strncmp(n, "*.", 2))
				json_object_set_new(z->wildcards, n + 2, json_string(addr));
			else
				json_object_set_new(z->names, n, json_string(addr));
			if (i == 0 || !json_object_get(z->ptr, addr))
				json_object_set_new(z->ptr, addr, json_string(strncmp(n, "*.", 2) ? n : n + 2));
		}
	}
	return 0;
}

json_t *zones_list(const struct zones *z)
{
	json_t *list = json_deep_copy(z->zones);

	if (z->reverse_apex[0])
		json_array_append_new(list, json_string(z->reverse_apex));
	return list;
}

size_t zones_count_names(const struct zones *z)
{
	return json_object_size(z->names) + json_object_size(z->wildcards);
}

/* The private zone holding NAME (lower case), the longest, or NULL. */
static const char *zone_of(const struct zones *z, const char *name)
{
	const char *best = NULL;
	size_t i;
	json_t *v;

	json_array_foreach(z->zones, i, v)
		if (dns_name_in_zone(name, json_string_value(v)) &&
		    (!best || strlen(json_string_value(v)) > strlen(best)))
			best = json_string_value(v);
	if (z->reverse_apex[0] && dns_name_in_zone(name, z->reverse_apex) &&
	    (!best || strlen(z->reverse_apex) > strlen(best)))
		best = z->reverse_apex;
	return best;
}

int zones_private(const struct zones *z, const char *name)
{
	char n[DNS_TEXT_MAX + 1];

	lower(n, sizeof n, name);
	return zone_of(z, n) != NULL;
}

/* "20.128.96.100.in-addr.arpa" -> "100.96.128.20"; -1 if not four octets. */
static int ptr_address(const char *name, char *out, size_t size)
{
	unsigned o[4];
	char tail[32];

	if (sscanf(name, "%3u.%3u.%3u.%3u.%31s", &o[0], &o[1], &o[2], &o[3], tail) != 5 ||
	    strcmp(tail, "in-addr.arpa") || o[0] > 255 || o[1] > 255 || o[2] > 255 || o[3] > 255)
		return -1;
	snprintf(out, size, "%u.%u.%u.%u", o[3], o[2], o[1], o[0]);
	return 0;
}

static const char *lookup_address(const struct zones *z, const char *name)
{
	json_t *hit = json_object_get(z->names, name);
	const char *p;

	if (hit)
		return json_string_value(hit);
	for (p = strchr(name, '.'); p; p = strchr(p + 1, '.')) {
		hit = json_object_get(z->wildcards, p + 1);
		if (hit)
			return json_string_value(hit);
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

size_t zones_answer(const struct zones *z, const struct dns_query *q, uint8_t *buf, size_t cap,
		    size_t limit, struct dnsd_stats *st)
{
	struct dns_builder b;
	char name[DNS_TEXT_MAX + 1], ptr_addr[ADDR_STRLEN];
	const char *zone, *addr = NULL, *target = NULL;
	uint32_t neg = DNSD_NEGATIVE_TTL < z->ttl * 2 ? DNSD_NEGATIVE_TTL : z->ttl * 2;
	int exists;

	lower(name, sizeof name, q->name);
	zone = zone_of(z, name);
	if (zone == z->reverse_apex && ptr_address(name, ptr_addr, sizeof ptr_addr) == 0)
		target = json_string_value(json_object_get(z->ptr, ptr_addr));
	else if (zone != z->reverse_apex)
		addr = lookup_address(z, name);
	exists = addr || target || !strcmp(name, zone);
	dns_build_start(&b, buf, cap, limit, q, exists ? DNS_RCODE_NOERROR : DNS_RCODE_NXDOMAIN, 1, 1);
	st->private_answers++;
	if (!exists) {
		st->nxdomain++;
		add_soa(&b, zone, neg, z->serial);
		return dns_build_finish(&b);
	}
	/* Owners are the question's name, so the 0x20 case is echoed. */
	if (addr && q->qtype == DNS_TYPE_A && strchr(addr, '.')) {
		struct addr a;

		if (addr_parse(addr, &a) == 0)
			dns_add_rr(&b, DNS_SECTION_ANSWER, q->name, DNS_TYPE_A, z->ttl, a.bytes, 4);
	} else if (addr && q->qtype == DNS_TYPE_AAAA && strchr(addr, ':')) {
		struct addr a;

		if (addr_parse(addr, &a) == 0)
			dns_add_rr(&b, DNS_SECTION_ANSWER, q->name, DNS_TYPE_AAAA, z->ttl, a.bytes, 16);
	} else if (target && q->qtype == DNS_TYPE_PTR) {
		dns_add_name_rr(&b, DNS_SECTION_ANSWER, q->name, DNS_TYPE_PTR, z->ttl, target);
	} else if (!strcmp(name, zone) && q->qtype == DNS_TYPE_SOA) {
		char mname[DNS_TEXT_MAX + 1], rname[DNS_TEXT_MAX + 1];

		snprintf(mname, sizeof mname, "dns.%s", zone);
		snprintf(rname, sizeof rname, "hostmaster.%s", zone);
		dns_add_soa(&b, DNS_SECTION_ANSWER, q->name, z->ttl, mname, rname, z->serial, 3600,
			    600, 86400, DNSD_NEGATIVE_TTL);
	} else if (!strcmp(name, zone) && q->qtype == DNS_TYPE_NS) {
		char ns[DNS_TEXT_MAX + 1];

		snprintf(ns, sizeof ns, "dns.%s", zone);
		dns_add_name_rr(&b, DNS_SECTION_ANSWER, q->name, DNS_TYPE_NS, z->ttl, ns);
	} else {
		add_soa(&b, zone, neg, z->serial); /* NODATA */
	}
	return dns_build_finish(&b);
}
