/* map.c: read map.json and check all of it. Every problem is reported with
 * the JSON path it sits at (".resources.vault.addr: ..."), all of them in
 * one pass, so an operator fixes a bad map in one edit, not one per run. */
#include "mapd.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "key.h"

#define DEFAULT_OVERLAY "100.96.0.0/12"
#define DEFAULT_TTL 5
#define DEFAULT_PROBE_PORT 51900

const char *const entity_kind_name[ENT_NKINDS] = {
	[ENT_DNS] = "dns",
	[ENT_CONTROL] = "control",
	[ENT_CONNECTOR] = "connector",
	[ENT_CLIENT] = "client",
	[ENT_RESOURCE] = "resource",
};

void map_errors_add(struct map_errors *e, const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	if (e->count++ >= MAP_ERRORS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	e->msg[e->count - 1] = strdup(buf);
}

void map_errors_clear(struct map_errors *e)
{
	for (int i = 0; i < e->count && i < MAP_ERRORS_MAX; i++)
		free(e->msg[i]);
	e->count = 0;
}

/* The state of one load: where we are and what we found so far. */
struct loader {
	const char *file;
	struct map_errors *errs;
	struct map *map;
	json_t *keys;        /* base64 key -> path of its first use */
	struct alloc_request *reqs;
	size_t nreqs, capreqs;
};

#define fail(ld, path, ...) fail_at((ld), (path), __VA_ARGS__)

static void fail_at(struct loader *ld, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail_at(struct loader *ld, const char *path, const char *fmt, ...)
{
	char what[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (what[0] == '.' || what[0] == '[') /* a member of PATH: one path */
		map_errors_add(ld->errs, "%s: %s%s", ld->file, path, what);
	else if (path[0])
		map_errors_add(ld->errs, "%s: %s: %s", ld->file, path, what);
	else /* the top level: WHAT starts with the member's own path */
		map_errors_add(ld->errs, "%s: %s", ld->file, what);
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/* Unknown members are refused: a typo ("conectors") must not silently
 * drop a whole section. */
static void check_members(struct loader *ld, json_t *obj, const char *path,
			  const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		int ok = 0;

		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, key) == 0)
				ok = 1;
		if (!ok)
			fail(ld, path, "unknown member \"%s\"", key);
	}
}

static json_t *member(struct loader *ld, json_t *obj, const char *path, const char *key,
		      json_type type, int required)
{
	json_t *v = json_object_get(obj, key);

	if (!v) {
		if (required)
			fail(ld, path, "\"%s\" is missing", key);
		return NULL;
	}
	if (json_typeof(v) != type && !(type == JSON_TRUE && json_is_boolean(v))) {
		fail(ld, path, ".%s: is %s, not %s", key, json_type_name(v),
		     type == JSON_STRING ? "a string" : type == JSON_OBJECT ? "an object" :
		     type == JSON_ARRAY ? "an array" : type == JSON_INTEGER ? "an integer" :
		     "a boolean");
		return NULL;
	}
	return v;
}

static int valid_entity_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) &&
		    s[i] != '-' && s[i] != '_')
			return 0;
	return 1;
}

int dns_name_normalise(char *out, size_t size, const char *name)
{
	size_t n = strlen(name), label = 0;

	if (n && name[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || n >= size)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_' || (c == '*' && i == 0 && name[1] == '.')) {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		out[i] = (char)tolower(c);
	}
	out[n] = '\0';
	return 0;
}

/* Is NAME (normalised) ZONE or below it? */
static int name_in_zone(const char *name, const char *zone)
{
	size_t n = strlen(name), z = strlen(zone);

	if (n == z)
		return strcmp(name, zone) == 0;
	return n > z && name[n - z - 1] == '.' && strcmp(name + n - z, zone) == 0;
}

const char *map_zone_of(const struct map *m, const char *name)
{
	const char *best = NULL;
	size_t i;
	json_t *z;

	json_array_foreach(m->zones, i, z) {
		const char *zone = json_string_value(z);

		if (name_in_zone(name, zone) && (!best || strlen(zone) > strlen(best)))
			best = zone;
	}
	return best;
}

static void add_request(struct loader *ld, enum entity_kind kind, const char *name,
			const char *path, json_t *obj)
{
	struct alloc_request *r;
	json_t *addr = json_object_get(obj, "addr");

	if (ld->nreqs == ld->capreqs) {
		size_t cap = ld->capreqs ? ld->capreqs * 2 : 64;
		struct alloc_request *p = realloc(ld->reqs, cap * sizeof *p);

		if (!p) {
			fail(ld, path, "out of memory");
			return;
		}
		ld->reqs = p;
		ld->capreqs = cap;
	}
	r = &ld->reqs[ld->nreqs];
	memset(r, 0, sizeof *r);
	r->kind = kind;
	r->obj = obj;
	if (name)
		snprintf(r->key, sizeof r->key, "%s/%s", entity_kind_name[kind], name);
	else
		snprintf(r->key, sizeof r->key, "%s", entity_kind_name[kind]);
	snprintf(r->path, sizeof r->path, "%s: %s.addr", ld->file, path);
	if (addr) {
		if (!json_is_string(addr) || addr_parse(json_string_value(addr), &r->addr) < 0) {
			fail(ld, path, ".addr: %s is not an IP address",
			     json_is_string(addr) ? json_string_value(addr) : json_type_name(addr));
			return;
		}
		r->explicit_addr = 1;
	}
	ld->nreqs++;
	ld->map->count[kind]++;
}

static void check_key(struct loader *ld, json_t *obj, const char *path)
{
	json_t *v = member(ld, obj, path, "key", JSON_STRING, 1);
	uint8_t key[KEY_LEN];
	json_t *seen;

	if (!v)
		return;
	if (key_from_base64(key, json_string_value(v)) < 0) {
		fail(ld, path, ".key: not a WireGuard public key (44 characters of base64)");
		return;
	}
	seen = json_object_get(ld->keys, json_string_value(v));
	if (seen)
		fail(ld, path, ".key: the same key as %s", json_string_value(seen));
	else
		json_object_set_new(ld->keys, json_string_value(v), json_string(path));
}

/* "HOST:PORT" with HOST an address ([v6] bracketed) or a DNS name. */
static int valid_hostport(const char *s)
{
	struct addr a;
	uint16_t port;
	const char *colon = strrchr(s, ':');
	char host[254];
	size_t n;
	long p;
	char *end;

	if (endpoint_parse(s, &a, &port) == 0)
		return 1;
	if (!colon || s[0] == '[')
		return 0;
	n = (size_t)(colon - s);
	if (n == 0 || n >= sizeof host)
		return 0;
	memcpy(host, s, n);
	host[n] = '\0';
	if (strchr(host, '*') || dns_name_normalise(host, sizeof host, host) < 0)
		return 0;
	p = strtol(colon + 1, &end, 10);
	return colon[1] >= '1' && colon[1] <= '9' && *end == '\0' && p >= 1 && p <= 65535;
}

static int url_has_port(const char *hostport)
{
	const char *close = strchr(hostport, ']');

	if (hostport[0] == '[')
		return close && close[1] == ':';
	return strchr(hostport, ':') != NULL;
}

/* "http://HOST[:PORT][/PATH]" or "https://...". */
static int valid_http_url(const char *s)
{
	const char *rest, *slash;
	char hostport[300];
	size_t n;

	if (strncmp(s, "http://", 7) == 0)
		rest = s + 7;
	else if (strncmp(s, "https://", 8) == 0)
		rest = s + 8;
	else
		return 0;
	slash = strchr(rest, '/');
	n = slash ? (size_t)(slash - rest) : strlen(rest);
	if (n == 0 || n >= sizeof hostport - 4)
		return 0;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return 0;
	memcpy(hostport, rest, n);
	hostport[n] = '\0';
	if (!url_has_port(hostport))
		strcat(hostport, ":80"); /* the port is optional in a URL */
	return valid_hostport(hostport);
}

static void check_string_array(struct loader *ld, json_t *arr, const char *path,
			       const char *what, int (*valid)(const char *), int nonempty)
{
	size_t i;
	json_t *v;

	if (nonempty && json_array_size(arr) == 0)
		fail(ld, path, "is empty: at least one %s is needed", what);
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			fail(ld, path, "[%zu]: is %s, not a string", i, json_type_name(v));
		else if (valid && !valid(json_string_value(v)))
			fail(ld, path, "[%zu]: %s is not a valid %s", i, json_string_value(v), what);
	}
}

static int valid_group(const char *s)
{
	return *s && strlen(s) <= 255 && !strpbrk(s, ",\r\n");
}

static void load_port(struct loader *ld, json_t *obj, const char *path, const char *key,
		      int dflt)
{
	json_t *v = member(ld, obj, path, key, JSON_INTEGER, 0);

	if (!v) {
		if (!json_object_get(obj, key) && dflt)
			json_object_set_new(obj, key, json_integer(dflt));
		return;
	}
	if (json_integer_value(v) < 1 || json_integer_value(v) > 65535)
		fail(ld, path, ".%s: %lld is not a port (1 to 65535)", key,
		     (long long)json_integer_value(v));
}

static void load_dns(struct loader *ld, json_t *doc)
{
	static const char *const allowed[] = { "addr", "zones", "ttl", NULL };
	json_t *dns = member(ld, doc, "", "dns", JSON_OBJECT, 1), *zones, *ttl, *z;
	size_t i;

	if (!dns)
		return;
	check_members(ld, dns, ".dns", allowed);
	zones = member(ld, dns, ".dns", "zones", JSON_ARRAY, 1);
	if (zones) {
		if (json_array_size(zones) == 0)
			fail(ld, ".dns.zones", "is empty: at least one private zone is needed");
		json_array_foreach(zones, i, z) {
			char name[256];

			if (!json_is_string(z) || strchr(json_string_value(z), '*') ||
			    dns_name_normalise(name, sizeof name, json_string_value(z)) < 0) {
				fail(ld, ".dns.zones", "[%zu]: %s is not a DNS name", i,
				     json_is_string(z) ? json_string_value(z) : json_type_name(z));
				continue;
			}
			for (size_t j = 0; j < json_array_size(ld->map->zones); j++)
				if (strcmp(json_string_value(json_array_get(ld->map->zones, j)), name) == 0)
					fail(ld, ".dns.zones", "[%zu]: %s is listed twice", i, name);
			json_array_append_new(ld->map->zones, json_string(name));
		}
	}
	ttl = member(ld, dns, ".dns", "ttl", JSON_INTEGER, 0);
	ld->map->ttl = DEFAULT_TTL;
	if (ttl) {
		if (json_integer_value(ttl) < 0 || json_integer_value(ttl) > 86400)
			fail(ld, ".dns.ttl", "%lld is not a TTL (0 to 86400 seconds)",
			     (long long)json_integer_value(ttl));
		else
			ld->map->ttl = (int)json_integer_value(ttl);
	} else if (!json_object_get(dns, "ttl")) {
		json_object_set_new(dns, "ttl", json_integer(DEFAULT_TTL));
	}
	add_request(ld, ENT_DNS, NULL, ".dns", dns);
}

static void load_control(struct loader *ld, json_t *doc)
{
	static const char *const allowed[] = { "key", "addr", "endpoint", "url", NULL };
	json_t *c = member(ld, doc, "", "control", JSON_OBJECT, 0), *v;

	if (!c)
		return;
	check_members(ld, c, ".control", allowed);
	check_key(ld, c, ".control");
	v = member(ld, c, ".control", "endpoint", JSON_STRING, 0);
	if (v && !valid_hostport(json_string_value(v)))
		fail(ld, ".control.endpoint", "%s is not HOST:PORT", json_string_value(v));
	v = member(ld, c, ".control", "url", JSON_STRING, 0);
	if (v && strncmp(json_string_value(v), "https://", 8) != 0)
		fail(ld, ".control.url", "%s is not an https:// URL", json_string_value(v));
	else if (v && !valid_http_url(json_string_value(v)))
		fail(ld, ".control.url", "%s is not a valid URL", json_string_value(v));
	add_request(ld, ENT_CONTROL, NULL, ".control", c);
}

/* Every entity travels as one IPC line (get, watch): keep it well under
 * the line limit. */
static void check_size(struct loader *ld, json_t *v, const char *path)
{
	char *text = json_dumps(v, JSON_COMPACT);

	if (text && strlen(text) > MAP_ENTITY_MAX)
		fail(ld, path, "is %zu bytes of JSON; an entity may have at most %d", strlen(text),
		     MAP_ENTITY_MAX);
	free(text);
}

/* Call FN for each NAME: OBJECT member of the section KEY. */
static void load_section(struct loader *ld, json_t *doc, const char *key, enum entity_kind kind,
			 void (*fn)(struct loader *, const char *, json_t *, const char *))
{
	json_t *section = member(ld, doc, "", key, JSON_OBJECT, 0), *v;
	const char *name;
	char path[160];

	if (!section)
		return;
	json_object_foreach(section, name, v) {
		snprintf(path, sizeof path, ".%s.%s", key, name);
		if (!valid_entity_name(name)) {
			fail(ld, path, "\"%s\" is not a valid name (a-z, 0-9, '-', '_'; at most 63)",
			     name);
			continue;
		}
		if (!json_is_object(v)) {
			fail(ld, path, "is %s, not an object", json_type_name(v));
			continue;
		}
		fn(ld, name, v, path);
		check_size(ld, v, path);
		add_request(ld, kind, name, path, v);
	}
}

static void load_connector(struct loader *ld, const char *name, json_t *c, const char *path)
{
	static const char *const allowed[] = { "key", "addr", "endpoints", "probe_port", "site", NULL };
	json_t *v;
	char sub[200];

	(void)name;
	check_members(ld, c, path, allowed);
	check_key(ld, c, path);
	v = member(ld, c, path, "endpoints", JSON_ARRAY, 0);
	snprintf(sub, sizeof sub, "%.170s.endpoints", path);
	if (v)
		check_string_array(ld, v, sub, "HOST:PORT endpoint", valid_hostport, 0);
	load_port(ld, c, path, "probe_port", DEFAULT_PROBE_PORT);
	member(ld, c, path, "site", JSON_STRING, 0);
}

static void load_client(struct loader *ld, const char *name, json_t *c, const char *path)
{
	static const char *const allowed[] = { "key", "addr", "user", "groups", NULL };
	json_t *v;
	char sub[200];

	(void)name;
	check_members(ld, c, path, allowed);
	check_key(ld, c, path);
	v = member(ld, c, path, "user", JSON_STRING, 0);
	if (v && !valid_group(json_string_value(v)))
		fail(ld, path, ".user: \"%s\" is not a valid user name", json_string_value(v));
	v = member(ld, c, path, "groups", JSON_ARRAY, 0);
	snprintf(sub, sizeof sub, "%.170s.groups", path);
	if (v)
		check_string_array(ld, v, sub, "group name", valid_group, 0);
}

static void load_routes(struct loader *ld, json_t *routes, const char *path)
{
	static const char *const allowed[] = { "path", "upstream", "strip", NULL };
	size_t i;
	json_t *r;

	json_array_foreach(routes, i, r) {
		char sub[220];
		json_t *v;

		snprintf(sub, sizeof sub, "%.190s[%zu]", path, i);
		if (!json_is_object(r)) {
			fail(ld, sub, "is %s, not an object", json_type_name(r));
			continue;
		}
		check_members(ld, r, sub, allowed);
		v = member(ld, r, sub, "path", JSON_STRING, 1);
		if (v && json_string_value(v)[0] != '/')
			fail(ld, sub, ".path: \"%s\" does not start with '/'", json_string_value(v));
		v = member(ld, r, sub, "upstream", JSON_STRING, 0);
		if (v && !valid_http_url(json_string_value(v)))
			fail(ld, sub, ".upstream: %s is not an http:// or https:// URL",
			     json_string_value(v));
		member(ld, r, sub, "strip", JSON_TRUE, 0);
	}
}

static void load_resource_names(struct loader *ld, const char *name, json_t *names,
				const char *path)
{
	size_t i;
	json_t *v;

	if (json_array_size(names) == 0)
		fail(ld, path, ".names: is empty: a resource needs at least one name");
	json_array_foreach(names, i, v) {
		char norm[256];
		const char *lookup = norm;
		json_t *index = ld->map->names, *other;

		if (!json_is_string(v) ||
		    dns_name_normalise(norm, sizeof norm, json_string_value(v)) < 0) {
			fail(ld, path, ".names[%zu]: %s is not a DNS name", i,
			     json_is_string(v) ? json_string_value(v) : json_type_name(v));
			continue;
		}
		if (strncmp(norm, "*.", 2) == 0) {
			lookup = norm + 2;
			index = ld->map->wildcards;
		}
		if (!map_zone_of(ld->map, lookup)) {
			fail(ld, path, ".names[%zu]: %s is in no zone of .dns.zones", i, norm);
			continue;
		}
		other = json_object_get(index, lookup);
		if (other) {
			fail(ld, path, ".names[%zu]: %s is already a name of resource %s", i, norm,
			     json_string_value(other));
			continue;
		}
		json_object_set_new(index, lookup, json_string(name));
	}
}

static void load_resource(struct loader *ld, const char *name, json_t *r, const char *path)
{
	static const char *const allowed[] = { "names", "addr", "connectors", "kind",
					       "upstream", "ports", "routes", NULL };
	json_t *v, *connectors, *c;
	const char *kind = "https";
	size_t i;
	char sub[200];

	check_members(ld, r, path, allowed);
	v = member(ld, r, path, "names", JSON_ARRAY, 1);
	if (v)
		load_resource_names(ld, name, v, path);
	v = member(ld, r, path, "kind", JSON_STRING, 0);
	if (v) {
		kind = json_string_value(v);
		if (strcmp(kind, "https") != 0 && strcmp(kind, "tcp") != 0)
			fail(ld, path, ".kind: \"%s\" is neither \"https\" nor \"tcp\"", kind);
	} else if (!json_object_get(r, "kind")) {
		json_object_set_new(r, "kind", json_string("https"));
	}
	connectors = member(ld, r, path, "connectors", JSON_ARRAY, 1);
	if (connectors && json_array_size(connectors) == 0)
		fail(ld, path, ".connectors: is empty: a resource needs a connector");
	json_array_foreach(connectors, i, c) {
		json_t *all = json_object_get(ld->map->doc, "connectors");

		if (!json_is_string(c))
			fail(ld, path, ".connectors[%zu]: is %s, not a string", i, json_type_name(c));
		else if (!json_object_get(all, json_string_value(c)))
			fail(ld, path, ".connectors[%zu]: no connector named \"%s\"", i,
			     json_string_value(c));
		else
			for (size_t j = 0; j < i; j++)
				if (json_equal(json_array_get(connectors, j), c))
					fail(ld, path, ".connectors[%zu]: \"%s\" is listed twice", i,
					     json_string_value(c));
	}
	v = member(ld, r, path, "upstream", JSON_STRING, 1);
	if (v && strcmp(kind, "tcp") == 0 && !valid_hostport(json_string_value(v)))
		fail(ld, path, ".upstream: %s is not HOST:PORT (a tcp resource)", json_string_value(v));
	else if (v && strcmp(kind, "tcp") != 0 && !valid_http_url(json_string_value(v)))
		fail(ld, path, ".upstream: %s is not an http:// or https:// URL", json_string_value(v));
	v = member(ld, r, path, "ports", JSON_ARRAY, strcmp(kind, "tcp") == 0);
	json_array_foreach(v, i, c) {
		if (!json_is_integer(c) || json_integer_value(c) < 1 || json_integer_value(c) > 65535)
			fail(ld, path, ".ports[%zu]: not a port (1 to 65535)", i);
	}
	if (v && json_array_size(v) == 0)
		fail(ld, path, ".ports: is empty");
	v = member(ld, r, path, "routes", JSON_ARRAY, 0);
	snprintf(sub, sizeof sub, "%.170s.routes", path);
	if (v)
		load_routes(ld, v, sub);
}

static void load_version(struct loader *ld, json_t *doc)
{
	json_t *v = member(ld, doc, "", "version", JSON_INTEGER, 1);

	if (!v)
		return;
	if (json_integer_value(v) < 1)
		fail(ld, ".version", "%lld is not a version (an integer from 1)",
		     (long long)json_integer_value(v));
	ld->map->version = json_integer_value(v);
}

static void load_overlay(struct loader *ld, json_t *doc)
{
	json_t *v = member(ld, doc, "", "overlay", JSON_STRING, 0);
	const char *text = v ? json_string_value(v) : DEFAULT_OVERLAY;
	struct prefix *p = &ld->map->overlay;

	if (!json_object_get(doc, "overlay"))
		json_object_set_new(doc, "overlay", json_string(DEFAULT_OVERLAY));
	if (prefix_parse(text, p, 0, 0) < 0) {
		fail(ld, ".overlay", "%s is not a prefix (ADDR/LEN with the host bits zero)", text);
		prefix_parse(DEFAULT_OVERLAY, p, 0, 0);
		return;
	}
	if (addr_bits(&p->addr) - p->len < 2 || addr_bits(&p->addr) - p->len > 64)
		fail(ld, ".overlay", "%s: a prefix needs 2 to 64 host bits", text);
}

/* Index every address for reverse look-ups, once allocation has run. */
static void index_addresses(struct map *m, struct alloc_request *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *slash = strchr(reqs[i].key, '/');
		json_t *who = json_pack("{s:s}", "kind", entity_kind_name[reqs[i].kind]);

		if (slash)
			json_object_set_new(who, "name", json_string(slash + 1));
		json_object_set_new(m->addrs, json_string_value(json_object_get(reqs[i].obj, "addr")),
				    who);
	}
}

static json_t *parse_json(struct loader *ld, const char *text, size_t len)
{
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);

	if (!doc) {
		map_errors_add(ld->errs, "%s:%d:%d: %s", ld->file, jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(doc)) {
		map_errors_add(ld->errs, "%s: the map is %s, not a JSON object", ld->file,
			       json_type_name(doc));
		json_decref(doc);
		return NULL;
	}
	return doc;
}

struct map *map_load(const char *file, const char *text, size_t len,
		     struct alloc_state *st, time_t now, long grace,
		     struct map_errors *errs)
{
	static const char *const allowed[] = { "version", "overlay", "dns", "control",
					       "connectors", "clients", "resources", NULL };
	struct loader ld = { .file = file, .errs = errs };
	int before = errs->count;
	struct map *m = calloc(1, sizeof *m);

	if (!m) {
		map_errors_add(errs, "%s: out of memory", file);
		return NULL;
	}
	ld.map = m;
	m->zones = json_array();
	m->names = json_object();
	m->wildcards = json_object();
	m->addrs = json_object();
	ld.keys = json_object();
	m->doc = parse_json(&ld, text, len);
	if (m->doc) {
		check_members(&ld, m->doc, "", allowed);
		load_version(&ld, m->doc);
		load_overlay(&ld, m->doc);
		load_dns(&ld, m->doc);
		load_control(&ld, m->doc);
		load_section(&ld, m->doc, "connectors", ENT_CONNECTOR, load_connector);
		load_section(&ld, m->doc, "clients", ENT_CLIENT, load_client);
		load_section(&ld, m->doc, "resources", ENT_RESOURCE, load_resource);
	}
	/* Addresses are given only to a map that is otherwise sound, so a bad
	 * map never changes the allocation state. */
	if (errs->count == before &&
	    alloc_assign(st, &m->overlay, ld.reqs, ld.nreqs, now, grace, errs) >= 0)
		index_addresses(m, ld.reqs, ld.nreqs);
	json_decref(ld.keys);
	free(ld.reqs);
	if (errs->count != before) {
		map_free(m);
		return NULL;
	}
	return m;
}

void map_free(struct map *m)
{
	if (!m)
		return;
	json_decref(m->doc);
	json_decref(m->zones);
	json_decref(m->names);
	json_decref(m->wildcards);
	json_decref(m->addrs);
	free(m);
}
