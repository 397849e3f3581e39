/* site.c: the resources of the map that this connector serves, as the
 * proxy needs them: names for SNI and Host, the overlay address it listens
 * on, the upstream and the routes, with addresses resolved once per map
 * version (never in the middle of a request). */
#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "tlsterm.h"

static int resolve(const char *host, struct addr *a)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int r;

	if (addr_parse(host, a) == 0)
		return 0;
	if ((r = getaddrinfo(host, NULL, &hints, &res)) != 0) {
		log_error("unable to resolve upstream host %s: %s", host, gai_strerror(r));
		return -1;
	}
	a->family = res->ai_family;
	if (res->ai_family == AF_INET)
		memcpy(a->bytes, &((struct sockaddr_in *)res->ai_addr)->sin_addr, 4);
	else
		memcpy(a->bytes, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, 16);
	freeaddrinfo(res);
	return 0;
}

/* "host:port", "[v6]:port" or "name:port" (N bytes of TEXT) into HOST and
 * PORT; without ":port", DFLT (0: the port is required). */
static int split_hostport(const char *text, size_t n, char *host, size_t hostsize,
			  uint16_t *port, uint16_t dflt)
{
	const char *end = text + n, *h = text, *hend, *portp = NULL;
	long p = dflt;

	if (n && text[0] == '[') {
		if (!(hend = memchr(text, ']', n)))
			return -1;
		h = text + 1;
		if (hend + 1 < end && hend[1] == ':')
			portp = hend + 2;
		else if (hend + 1 != end)
			return -1;
	} else {
		hend = memrchr(text, ':', n);
		if (hend)
			portp = hend + 1;
		else
			hend = end;
	}
	if (portp) {
		char digits[8];
		char *stop;

		if (end - portp < 1 || end - portp > 5)
			return -1;
		memcpy(digits, portp, (size_t)(end - portp));
		digits[end - portp] = '\0';
		p = strtol(digits, &stop, 10);
		if (*stop || p < 1 || p > 65535)
			return -1;
	}
	if (!p || hend == h || (size_t)(hend - h) >= hostsize)
		return -1;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	*port = (uint16_t)p;
	return 0;
}

int origin_parse(const char *url, struct origin *o)
{
	const char *rest, *slash;
	size_t hl;

	memset(o, 0, sizeof *o);
	if (!strncmp(url, "https://", 8)) {
		o->https = 1;
		rest = url + 8;
	} else if (!strncmp(url, "http://", 7)) {
		rest = url + 7;
	} else {
		return -1;
	}
	slash = strchr(rest, '/');
	hl = slash ? (size_t)(slash - rest) : strlen(rest);
	if (split_hostport(rest, hl, o->host, sizeof o->host, &o->port, o->https ? 443 : 80) < 0)
		return -1;
	if (slash) {
		size_t bl = strlen(slash);

		while (bl && slash[bl - 1] == '/')
			bl--;
		if (bl >= sizeof o->base)
			return -1;
		memcpy(o->base, slash, bl);
		o->base[bl] = '\0';
	}
	snprintf(o->key, sizeof o->key, "%s://%s:%u", o->https ? "https" : "http", o->host, o->port);
	return 0;
}

static void resource_clear(struct resource *r)
{
	for (size_t i = 0; i < r->nnames; i++)
		free(r->names[i]);
	free(r->names);
	free(r->ports);
	free(r->routes);
}

void site_free(struct site *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nres; i++)
		resource_clear(&s->res[i]);
	free(s->res);
	free(s);
}

static int serves(json_t *res, const char *connector)
{
	size_t i;
	json_t *c;

	if (!connector)
		return 1;
	json_array_foreach(json_object_get(res, "connectors"), i, c)
		if (json_is_string(c) && !strcmp(json_string_value(c), connector))
			return 1;
	return 0;
}

static int load_routes(struct resource *r, json_t *routes)
{
	size_t i;
	json_t *rt;

	r->nroutes = 0;
	if (!json_is_array(routes) || !json_array_size(routes))
		return 0;
	if (!(r->routes = calloc(json_array_size(routes), sizeof *r->routes)))
		return -1;
	json_array_foreach(routes, i, rt) {
		struct route *to = &r->routes[r->nroutes];
		const char *path = json_string_value(json_object_get(rt, "path"));
		const char *up = json_string_value(json_object_get(rt, "upstream"));

		if (!path || path[0] != '/' || strlen(path) >= sizeof to->path) {
			log_error("resource %s: route %zu: a bad path: skipped", r->name, i);
			continue;
		}
		snprintf(to->path, sizeof to->path, "%s", path);
		to->strip = json_is_true(json_object_get(rt, "strip"));
		if (up) {
			if (origin_parse(up, &to->up) < 0 || resolve(to->up.host, &to->up.addr) < 0) {
				log_error("resource %s: route %s: upstream %s unusable: skipped", r->name,
					  path, up);
				continue;
			}
		} else {
			to->up = r->up;
		}
		r->nroutes++;
	}
	return 0;
}

static int load_resource(struct resource *r, const char *name, json_t *v)
{
	const char *kind = json_string_value(json_object_get(v, "kind"));
	const char *addr = json_string_value(json_object_get(v, "addr"));
	const char *up = json_string_value(json_object_get(v, "upstream"));
	json_t *names = json_object_get(v, "names"), *ports = json_object_get(v, "ports"), *e;
	size_t i;

	snprintf(r->name, sizeof r->name, "%s", name);
	r->tcp = kind && !strcmp(kind, "tcp");
	if (!addr || addr_parse(addr, &r->addr) < 0 || !up) {
		log_error("resource %s: no address or upstream in the map: skipped", name);
		return -1;
	}
	if (!(r->names = calloc(json_array_size(names) + 1, sizeof *r->names)) ||
	    !(r->ports = calloc(json_array_size(ports) + 1, sizeof *r->ports)))
		return -1;
	json_array_foreach(names, i, e) {
		const char *n = json_string_value(e);
		size_t len = n ? strlen(n) : 0;

		if (!len || !(r->names[r->nnames] = strdup(n)))
			continue;
		for (size_t k = 0; k < len; k++)
			r->names[r->nnames][k] = (char)tolower((unsigned char)n[k]);
		if (r->names[r->nnames][len - 1] == '.')
			r->names[r->nnames][len - 1] = '\0';
		r->nnames++;
	}
	json_array_foreach(ports, i, e)
		if (json_integer_value(e) > 0 && json_integer_value(e) < 65536)
			r->ports[r->nports++] = (uint16_t)json_integer_value(e);
	if (r->tcp) {
		char host[256];

		if (split_hostport(up, strlen(up), host, sizeof host, &r->tcp_port, 0) < 0 ||
		    !r->tcp_port || resolve(host, &r->tcp_addr) < 0) {
			log_error("resource %s: upstream %s is not a usable host:port: skipped", name, up);
			return -1;
		}
		return 0;
	}
	if (origin_parse(up, &r->up) < 0 || resolve(r->up.host, &r->up.addr) < 0) {
		log_error("resource %s: upstream %s is not a usable URL: skipped", name, up);
		return -1;
	}
	return load_routes(r, json_object_get(v, "routes"));
}

struct site *site_build(json_t *resources, const char *connector, json_int_t version)
{
	struct site *s = calloc(1, sizeof *s);
	const char *name;
	json_t *v;

	if (!s || !(s->res = calloc(json_object_size(resources) + 1, sizeof *s->res))) {
		free(s);
		return NULL;
	}
	s->version = version;
	json_object_foreach(resources, name, v) {
		struct resource *r = &s->res[s->nres];

		if (!serves(v, connector))
			continue;
		if (load_resource(r, name, v) < 0) {
			resource_clear(r);
			memset(r, 0, sizeof *r);
			continue;
		}
		s->nres++;
	}
	return s;
}

const struct resource *site_by_name(const struct site *s, const char *host)
{
	char low[256];
	size_t n, best = 0;
	const struct resource *found = NULL;

	if (!s || !host)
		return NULL;
	/* the port and a trailing dot do not count; an IPv6 literal has no name */
	n = host[0] == '[' ? 0 : strcspn(host, ":");
	if (n == 0 || n >= sizeof low)
		return NULL;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)host[i]);
	low[n] = '\0';
	if (low[n - 1] == '.')
		low[--n] = '\0';
	for (size_t i = 0; i < s->nres; i++)
		for (size_t k = 0; k < s->res[i].nnames; k++)
			if (!strcmp(s->res[i].names[k], low))
				return &s->res[i];
	/* "*.suffix" covers every name below suffix; the longest wins */
	for (size_t i = 0; i < s->nres; i++)
		for (size_t k = 0; k < s->res[i].nnames; k++) {
			const char *w = s->res[i].names[k];
			size_t wl = strlen(w);

			if (wl > 2 && w[0] == '*' && n > wl - 1 && !strcmp(low + n - (wl - 1), w + 1) &&
			    wl > best) {
				best = wl;
				found = &s->res[i];
			}
		}
	return found;
}

const struct resource *site_by_addr(const struct site *s, const struct addr *a)
{
	for (size_t i = 0; s && i < s->nres; i++)
		if (addr_equal(&s->res[i].addr, a))
			return &s->res[i];
	return NULL;
}

const struct resource *site_by_resource(const struct site *s, const char *name)
{
	for (size_t i = 0; s && i < s->nres; i++)
		if (!strcmp(s->res[i].name, name))
			return &s->res[i];
	return NULL;
}

int route_matches(const char *p, const char *path)
{
	size_t n = strlen(p);

	if (strncmp(p, path, n))
		return 0;
	return p[n - 1] == '/' || path[n] == '\0' || path[n] == '/' || path[n] == '?';
}

const struct route *site_route(const struct resource *r, const char *path)
{
	const struct route *best = NULL;

	for (size_t i = 0; i < r->nroutes; i++)
		if (route_matches(r->routes[i].path, path) &&
		    (!best || strlen(r->routes[i].path) > strlen(best->path)))
			best = &r->routes[i];
	return best;
}
