/* decide.c: one check request in, one decision out (p2p-ipc.7, the check
 * op): the path put in its normal form, the route found, the identity
 * established the way the route asks (the WireGuard client behind the
 * source address, or a token of the route's provider), the route's allow
 * list applied, and the reply built with everything the proxy needs
 * (headers to set and to strip) and the audit record needs (identity,
 * rule, reason, status). */
#include <openssl/rand.h>
#include <openssl/evp.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "authz.h"
#include "jsonbyte.h"

/* Headers a client may have sent to pass as someone: always removed. */
static const char *const identity_headers[] = {
	"x-p2p-user", "x-p2p-groups", "x-p2p-client", "x-p2p-jwt-assertion", NULL
};

struct request {
	const char *resource, *host, *method, *path, *source;
	const char *authorization;   /* the header's value, or NULL */
	int authorization_count;
	const char *cookie;          /* every Cookie header, joined */
	char norm[4096];
};

struct identity {
	const char *client;          /* the map's name of the WireGuard peer */
	json_t *client_groups;       /* borrowed from the map */
	const char *client_user;
	const char *user;
	json_t *groups;              /* borrowed */
	const char *mechanism;       /* "jwt", "wireguard" or "none" */
	json_t *claims;              /* the token's, when mechanism is jwt */
	time_t token_exp;
};

struct verdict {
	int status;
	char rule[128];
	char reason[400];
	char www[600];               /* WWW-Authenticate, for 401 */
	const char *token_from;      /* "authorization" or the cookie's name */
};

static void why(struct verdict *v, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* S made valid UTF-8 in place: a byte that does not start or continue a
 * whole character becomes '?'. The reason goes into JSON, which refuses
 * anything else, and "%.200s" of a request's host or a claim may cut a
 * character anywhere (the reply would otherwise be an empty error). */
static void utf8_mend(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t left = strlen(s);

	while (left) {
		size_t n = *p < 0x80 ? 1 : utf8_char_len(p, left);

		if (!n) {
			*p = '?';
			n = 1;
		}
		p += n;
		left -= n;
	}
}

static void why(struct verdict *v, int status, const char *fmt, ...)
{
	va_list ap;

	v->status = status;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof v->reason, fmt, ap);
	va_end(ap);
	utf8_mend(v->reason);
}

/* ---- the map ---- */

static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

void authz_set_map(struct authz *a, json_t *clients, json_t *resources)
{
	const char *name;
	json_t *v, *n;
	size_t i;

	json_decref(a->clients);
	json_decref(a->names);
	json_decref(a->wildcards);
	a->clients = json_object();
	a->names = json_object();
	a->wildcards = json_object();
	json_object_foreach(clients, name, v) {
		const char *addr = json_string_value(json_object_get(v, "addr"));

		if (addr)
			json_object_set_new(a->clients, addr, json_pack("{s:s,s:O?,s:O?}", "name", name,
				"user", json_object_get(v, "user"), "groups", json_object_get(v, "groups")));
	}
	json_object_foreach(resources, name, v) {
		json_array_foreach(json_object_get(v, "names"), i, n) {
			char host[300];

			snprintf(host, sizeof host, "%s", json_string_value(n) ? json_string_value(n) : "");
			lower(host);
			if (host[0] && host[strlen(host) - 1] == '.')
				host[strlen(host) - 1] = '\0';
			if (!strncmp(host, "*.", 2))
				json_object_set_new(a->wildcards, host + 2, json_string(name));
			else
				json_object_set_new(a->names, host, json_string(name));
		}
	}
	a->map_ready = 1;
	authz_changed(a);
}

void authz_changed(struct authz *a)
{
	dcache_clear(a->cache);
	a->generation++;
}

/* How long a proxy may apply this decision again: while the cache would
 * (the token, the assertion), at most REUSE_MS_MAX. */
static void add_reuse(json_t *fields, time_t until, time_t now)
{
	json_int_t ms = until > now ? (json_int_t)(until - now) * 1000 : 0;

	if (ms > REUSE_MS_MAX)
		ms = REUSE_MS_MAX;
	if (ms > 0)
		json_object_set_new(fields, "reuse_ms", json_integer(ms));
}

/* The resource of HOST ("Name.Example.:443"): an exact name first, then
 * the longest wildcard. */
static const char *resource_of_host(const struct authz *a, const char *host)
{
	char h[300], *p;

	snprintf(h, sizeof h, "%s", host);
	if (h[0] != '[' && (p = strrchr(h, ':')))
		*p = '\0';
	lower(h);
	if (h[0] && h[strlen(h) - 1] == '.')
		h[strlen(h) - 1] = '\0';
	if (json_object_get(a->names, h))
		return json_string_value(json_object_get(a->names, h));
	for (p = strchr(h, '.'); p; p = strchr(p + 1, '.'))
		if (json_object_get(a->wildcards, p + 1))
			return json_string_value(json_object_get(a->wildcards, p + 1));
	return NULL;
}

/* ---- the request ---- */

static int good_method(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 32)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

/* Routes list methods in upper case and they are compared as they are
 * (RFC 9110 9.1), while many upstreams upper-case the method they get:
 * "delete" would pass a route for DELETE by. Such a method is refused. */
static int method_has_lower(const char *s)
{
	for (; *s; s++)
		if (*s >= 'a' && *s <= 'z')
			return 1;
	return 0;
}

static int string_arg(json_t *req, const char *key, int required, const char **out,
		      char *error, size_t errsize)
{
	json_t *v = json_object_get(req, key);

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			snprintf(error, errsize, ".%s: missing", key);
		return required ? -1 : 0;
	}
	if (!json_is_string(v)) {
		snprintf(error, errsize, ".%s: not a string", key);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

/* "headers": {"authorization": "...", "cookie": "..." or [...]} */
static int header_args(json_t *req, struct request *r, json_t **joined, char *error,
		       size_t errsize)
{
	json_t *h = json_object_get(req, "headers"), *v, *e;
	const char *name;
	size_t i;

	if (!h)
		return 0;
	if (!json_is_object(h)) {
		snprintf(error, errsize, ".headers: not an object");
		return -1;
	}
	json_object_foreach(h, name, v) {
		int is_auth = !strcasecmp(name, "authorization"), is_cookie = !strcasecmp(name, "cookie");

		if (!is_auth && !is_cookie)
			continue;
		if (json_is_string(v)) {
			if (is_auth) {
				r->authorization = json_string_value(v);
				r->authorization_count++;
			} else {
				json_array_append(*joined, v);
			}
			continue;
		}
		if (!json_is_array(v)) {
			snprintf(error, errsize, ".headers.%s: not a string or an array of strings", name);
			return -1;
		}
		json_array_foreach(v, i, e) {
			if (!json_is_string(e)) {
				snprintf(error, errsize, ".headers.%s[%zu]: not a string", name, i);
				return -1;
			}
			if (is_auth) {
				r->authorization = json_string_value(e);
				r->authorization_count++;
			} else {
				json_array_append(*joined, e);
			}
		}
	}
	return 0;
}

static int parse_request(json_t *req, struct request *r, json_t *cookies, char *error,
			 size_t errsize)
{
	struct addr a;

	if (string_arg(req, "resource", 0, &r->resource, error, errsize) < 0 ||
	    string_arg(req, "host", 0, &r->host, error, errsize) < 0 ||
	    string_arg(req, "method", 1, &r->method, error, errsize) < 0 ||
	    string_arg(req, "path", 1, &r->path, error, errsize) < 0 ||
	    string_arg(req, "source", 0, &r->source, error, errsize) < 0 ||
	    header_args(req, r, &cookies, error, errsize) < 0)
		return -1;
	if (!r->resource && !r->host) {
		snprintf(error, errsize, ".resource: missing (or give .host)");
		return -1;
	}
	if (!good_method(r->method)) {
		snprintf(error, errsize, ".method: not an HTTP method");
		return -1;
	}
	if (r->source && addr_parse(r->source, &a) < 0) {
		snprintf(error, errsize, ".source: %.60s is not an IP address", r->source);
		return -1;
	}
	return 0;
}

/* ---- tokens ---- */

/* The value of cookie NAME in the Cookie header(s), or NULL; *LEN its
 * length. */
static const char *find_cookie(json_t *cookies, const char *name, size_t *len)
{
	size_t n = strlen(name), i;
	json_t *c;

	json_array_foreach(cookies, i, c) {
		const char *p = json_string_value(c);

		while (*p) {
			while (*p == ' ' || *p == '\t' || *p == ';')
				p++;
			if (!strncmp(p, name, n) && p[n] == '=') {
				const char *v = p + n + 1;

				*len = strcspn(v, ";");
				while (*len && (v[*len - 1] == ' ' || v[*len - 1] == '\t'))
					(*len)--;
				if (*len >= 2 && v[0] == '"' && v[*len - 1] == '"') {
					v++;
					*len -= 2;
				}
				return v;
			}
			p += strcspn(p, ";");
		}
	}
	return NULL;
}

/* The bearer token of the request for provider PV; NULL when there is none.
 * A malformed Authorization header is a 401 of its own. */
static const char *find_token(const struct request *r, json_t *cookies, const struct provider *pv,
			      size_t *len, struct verdict *v)
{
	if (r->authorization_count > 1) {
		why(v, 401, "more than one Authorization header");
		return NULL;
	}
	if (r->authorization) {
		const char *p = r->authorization;

		if (strncasecmp(p, "Bearer ", 7) != 0) {
			why(v, 401, "the Authorization header is not Bearer");
			return NULL;
		}
		for (p += 7; *p == ' '; p++)
			;
		*len = strlen(p);
		while (*len && p[*len - 1] == ' ')
			(*len)--;
		v->token_from = "authorization";
		return p;
	}
	if (pv && pv->cookie) {
		const char *t = find_cookie(cookies, pv->cookie, len);

		if (t) {
			v->token_from = pv->cookie;
			return t;
		}
	}
	return NULL;
}

/* ---- allow lists ---- */

static int listed(json_t *list, const char *s)
{
	json_t *e;
	size_t i;

	if (!s)
		return 0;
	json_array_foreach(list, i, e)
		if (!strcmp(json_string_value(e), s))
			return 1;
	return 0;
}

static int any_listed(json_t *list, json_t *values)
{
	json_t *e;
	size_t i;

	json_array_foreach(values, i, e)
		if (json_is_string(e) && listed(list, json_string_value(e)))
			return 1;
	return 0;
}

static int claim_matches(json_t *have, json_t *wanted)
{
	json_t *w, *h;
	size_t i, k;

	if (!have)
		return 0;
	json_array_foreach(wanted, i, w) {
		if (json_equal(have, w))
			return 1;
		if (json_is_array(have))
			json_array_foreach(have, k, h)
				if (json_equal(h, w))
					return 1;
	}
	return 0;
}

static int entry_matches(const struct allow *al, const struct identity *id)
{
	const char *claim;
	json_t *want;

	if (al->users && !listed(al->users, id->user))
		return 0;
	if (al->groups && !any_listed(al->groups, id->groups))
		return 0;
	if (al->clients && !listed(al->clients, id->client))
		return 0;
	if (al->claims) {
		if (!id->claims)
			return 0;
		json_object_foreach(al->claims, claim, want)
			if (!claim_matches(json_object_get(id->claims, claim), want))
				return 0;
	}
	return 1;
}

/* At most MAX bytes of the UTF-8 text S, not cutting a character: the
 * reason goes into JSON, which refuses a broken one. */
static int utf8_prefix(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n > max) {
		n = max;
		while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	return (int)n;
}

static void who(const struct identity *id, char *out, size_t size)
{
	if (id->user)
		snprintf(out, size, "user %.*s (%s%s%.60s)", utf8_prefix(id->user, 100), id->user,
			 id->mechanism, id->client ? ", client " : "", id->client ? id->client : "");
	else
		snprintf(out, size, "client %.60s (%s)", id->client ? id->client : "?", id->mechanism);
}

static void apply_allow(const struct route *rt, const struct identity *id, struct verdict *v)
{
	char w[200];

	who(id, w, sizeof w);
	if (rt->allow_any) {
		why(v, 200, "%s: any identity may pass", w);
		return;
	}
	for (size_t i = 0; i < rt->nallow; i++)
		if (entry_matches(&rt->allow[i], id)) {
			why(v, 200, "%s matches allow[%zu]", w, i);
			return;
		}
	why(v, 403, "%s matches no allow entry", w);
}

/* ---- identities ---- */

static void wireguard_identity(const struct authz *a, const struct request *r,
			       struct identity *id)
{
	json_t *c = r->source && a->clients ? json_object_get(a->clients, r->source) : NULL;

	if (!c)
		return;
	id->client = json_string_value(json_object_get(c, "name"));
	id->client_user = json_string_value(json_object_get(c, "user"));
	id->client_groups = json_object_get(c, "groups");
}

static void use_wireguard(struct identity *id)
{
	id->user = id->client_user;
	id->groups = id->client_groups;
	id->mechanism = "wireguard";
}

static void bearer_challenge(struct verdict *v, const char *realm, int invalid)
{
	char desc[300];
	size_t i, o = 0;

	/* the description is a quoted-string: no quotes or backslashes */
	for (i = 0; v->reason[i] && o + 1 < sizeof desc; i++)
		if (v->reason[i] != '"' && v->reason[i] != '\\')
			desc[o++] = v->reason[i];
	desc[o] = '\0';
	if (invalid)
		snprintf(v->www, sizeof v->www,
			 "Bearer realm=\"%s\", error=\"invalid_token\", error_description=\"%s\"",
			 realm, desc);
	else
		snprintf(v->www, sizeof v->www, "Bearer realm=\"%s\"", realm);
}

/* Verify TOKEN for the route's provider. WAIT_FOR_KEYS when its key set is
 * being fetched; otherwise the identity is filled in, or V says why not. */
static enum decide_outcome token_identity(struct authz *a, const struct route *rt,
					  const char *token, size_t len, time_t now,
					  struct identity *id, struct verdict *v,
					  struct keysource **wait)
{
	const struct provider *pv = rt->provider;
	struct keysource *src = keystore_source(a->keys, pv->jwks);
	struct jwt_params p = {
		.issuer = pv->issuer, .audience = pv->audience, .algs = pv->algs,
		.skew = a->cfg.skew, .max_len = a->cfg.token_max,
	};
	struct jwt_result res;
	enum jwt_outcome o;
	json_t *user, *groups, *exp;

	if (!src) {
		why(v, 503, "provider %s has no key set source", pv->name);
		return DECIDED;
	}
	if (!keysource_set(src)) {
		if (wait && (keysource_busy(src) || (keysource_refresh(a->keys, src, now) && keysource_busy(src)))) {
			*wait = src;
			return WAIT_FOR_KEYS;
		}
		if (!keysource_set(src)) {
			why(v, 503, "no key set for provider %s yet", pv->name);
			return DECIDED;
		}
	}
	o = jwt_verify(token, len, &p, keysource_set(src), now, &res);
	if (o == JWT_UNKNOWN_KID && wait && keysource_refresh(a->keys, src, now)) {
		if (keysource_busy(src)) {
			*wait = src;
			return WAIT_FOR_KEYS;
		}
		o = jwt_verify(token, len, &p, keysource_set(src), now, &res);
	}
	if (o != JWT_OK) {
		why(v, 401, "token refused: %s", res.reason);
		return DECIDED;
	}
	user = json_object_get(res.claims, pv->user_claim);
	if (!json_is_string(user) || json_string_length(user) == 0) {
		json_decref(res.claims);
		why(v, 401, "token refused: no \"%s\" claim to name the user", pv->user_claim);
		return DECIDED;
	}
	id->claims = res.claims;
	id->user = json_string_value(user);
	groups = json_object_get(res.claims, pv->groups_claim);
	/* One group as a string: kept as a one-element array under a key
	 * of our own in the claims object (overwriting whatever the token
	 * had there), freed with it. */
	if (json_is_string(groups)) {
		json_object_set_new(res.claims, "\x01groups", json_pack("[O]", groups));
		groups = json_object_get(res.claims, "\x01groups");
	}
	id->groups = json_is_array(groups) ? groups : NULL;
	id->mechanism = "jwt";
	exp = json_object_get(res.claims, "exp");
	id->token_exp = (time_t)json_number_value(exp);
	return DECIDED;
}

/* ---- the reply ---- */

/* A header value: printable ASCII, with '%', ',' (a list separator) and
 * anything else percent-encoded. */
static void header_value(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *in && o + 4 < size; in++) {
		unsigned char c = (unsigned char)*in;

		if (c > 0x20 && c < 0x7f && c != '%' && c != ',') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

static json_t *groups_array(json_t *groups)
{
	json_t *out = json_array(), *g;
	size_t i;

	json_array_foreach(groups, i, g)
		if (json_is_string(g))
			json_array_append(out, g);
	return out;
}

static json_t *identity_json(const struct identity *id)
{
	json_t *j = json_pack("{s:s?,s:s?,s:o,s:s}", "client", id->client, "user", id->user,
			      "groups", groups_array(id->groups), "mechanism", id->mechanism);

	if (id->claims) {
		json_object_set(j, "issuer", json_object_get(id->claims, "iss"));
		if (json_is_string(json_object_get(id->claims, "sub")))
			json_object_set(j, "subject", json_object_get(id->claims, "sub"));
	}
	return j;
}

static char *assertion(const struct authz *a, const char *resource, const struct identity *id,
		       const char *rule, time_t now)
{
	uint8_t rnd[16];
	char jti[40];
	json_t *claims;
	char *jws;

	if (RAND_bytes(rnd, sizeof rnd) != 1)
		return NULL;
	b64url_encode(rnd, sizeof rnd, jti);
	claims = json_pack("{s:s,s:s,s:s?,s:I,s:I,s:I,s:s,s:s?,s:o,s:s?,s:s,s:s}",
		"iss", a->cfg.assertion_issuer, "aud", resource,
		"sub", id->user ? id->user : id->client,
		"iat", (json_int_t)now, "nbf", (json_int_t)now,
		"exp", (json_int_t)(now + a->cfg.assertion_lifetime), "jti", jti,
		"user", id->user, "groups", groups_array(id->groups), "client", id->client,
		"mechanism", id->mechanism, "rule", rule);
	jws = claims ? signer_sign(a->signer, claims) : NULL;
	json_decref(claims);
	return jws;
}

/* The headers to set and to strip on allow. */
static void add_headers(const struct authz *a, json_t *f, const char *resource,
			const struct route *rt, const struct identity *id, const struct verdict *v,
			time_t now)
{
	json_t *set = json_object(), *strip = json_array(), *g;
	char buf[4096];
	size_t i, o = 0;

	for (i = 0; identity_headers[i]; i++)
		json_array_append_new(strip, json_string(identity_headers[i]));
	if (v->token_from && !(rt->provider && rt->provider->forward_token)) {
		if (!strcmp(v->token_from, "authorization"))
			json_array_append_new(strip, json_string("authorization"));
		else
			json_object_set_new(f, "strip_cookies", json_pack("[s]", v->token_from));
	}
	if (id->user) {
		header_value(id->user, buf, sizeof buf);
		json_object_set_new(set, "X-P2P-User", json_string(buf));
	}
	buf[0] = '\0';
	json_array_foreach(id->groups, i, g) {
		char one[600];

		if (!json_is_string(g))
			continue;
		header_value(json_string_value(g), one, sizeof one);
		if (o + strlen(one) + 2 >= sizeof buf)
			break;
		o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", o ? "," : "", one);
	}
	if (id->groups)
		json_object_set_new(set, "X-P2P-Groups", json_string(buf));
	if (id->client) {
		header_value(id->client, buf, sizeof buf);
		json_object_set_new(set, "X-P2P-Client", json_string(buf));
	}
	if (a->signer && (id->user || id->client)) {
		char *jws = assertion(a, resource, id, rt->id, now);

		if (jws)
			json_object_set_new(set, "X-P2P-Jwt-Assertion", json_string(jws));
		free(jws);
	}
	json_object_set_new(f, "set", set);
	json_object_set_new(f, "strip", strip);
}

static json_t *reply_fields(const struct authz *a, const char *resource, const struct route *rt,
			    const struct identity *id, const struct verdict *v, const char *path,
			    time_t now)
{
	json_t *f = json_pack("{s:s,s:i,s:s?,s:s,s:s,s:s?,s:o}",
		"decision", v->status == 200 ? "allow" : "deny", "status", v->status,
		"resource", resource, "rule", v->rule, "reason", v->reason, "path", path,
		"identity", identity_json(id));

	if (v->status == 401 && v->www[0])
		json_object_set_new(f, "www_authenticate", json_string(v->www));
	if (v->status == 200 && rt)
		add_headers(a, f, resource, rt, id, v, now);
	return f;
}

/* ---- the decision ---- */

/* The decision depends on the token and where it came from (that header
 * or cookie is stripped), the route, the method and the client. */
static int cache_key(const struct request *r, const char *resource, const struct route *rt,
		     const char *token, size_t len, const char *from, uint8_t key[CACHE_KEY_LEN])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	const char *src = r->source ? r->source : "";
	unsigned int n = CACHE_KEY_LEN;
	uint64_t tlen = token ? len : 0;
	int ok;

	/* the token with its length (it may hold any byte), the rest each
	 * with its NUL, so that no two requests share a key by moving bytes
	 * from one part to the next */
	ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(c, &tlen, sizeof tlen) == 1 &&
	     EVP_DigestUpdate(c, token ? token : "", tlen) == 1 &&
	     EVP_DigestUpdate(c, from ? from : "", from ? strlen(from) + 1 : 1) == 1 &&
	     EVP_DigestUpdate(c, resource, strlen(resource) + 1) == 1 &&
	     EVP_DigestUpdate(c, rt->id, strlen(rt->id) + 1) == 1 &&
	     EVP_DigestUpdate(c, r->method, strlen(r->method) + 1) == 1 &&
	     EVP_DigestUpdate(c, src, strlen(src) + 1) == 1 &&
	     EVP_DigestFinal_ex(c, key, &n) == 1;
	EVP_MD_CTX_free(c);
	return ok ? 0 : -1; /* -1: decide without the cache */
}

static void count(struct authz *a, int status)
{
	a->st.checks++;
	switch (status) {
	case 200: a->st.allow++; break;
	case 400: a->st.bad_path++; break;
	case 401: a->st.unauthorized++; break;
	case 403: a->st.forbidden++; break;
	default: a->st.unavailable++; break;
	}
}

/* Decide for a request whose route is known. */
static enum decide_outcome decide_route(struct authz *a, const struct request *r, json_t *cookies,
					const char *resource, const struct route *rt, time_t now,
					struct identity *id, struct verdict *v,
					const char **token, size_t *len, struct keysource **wait)
{
	wireguard_identity(a, r, id);
	id->mechanism = "none";
	if (rt->auth == AUTH_NONE) {
		if (id->client)
			use_wireguard(id);
		why(v, 200, "open route");
		return DECIDED;
	}
	if (rt->auth & AUTH_JWT) {
		*token = find_token(r, cookies, rt->provider, len, v);
		if (v->status) { /* a malformed Authorization header */
			bearer_challenge(v, resource, 1);
			return DECIDED;
		}
		if (*token) {
			enum decide_outcome o = token_identity(a, rt, *token, *len, now, id, v, wait);

			if (o == WAIT_FOR_KEYS)
				return o;
			if (v->status == 401)
				bearer_challenge(v, resource, 1);
			if (v->status)
				return DECIDED;
			apply_allow(rt, id, v);
			return DECIDED;
		}
	}
	if (rt->auth & AUTH_WIREGUARD) {
		if (!a->map_ready) {
			why(v, 503, "the map has not arrived from p2p-mapd yet");
			return DECIDED;
		}
		if (id->client) {
			use_wireguard(id);
			apply_allow(rt, id, v);
			return DECIDED;
		}
		why(v, 401, r->source ? "source %s is not a client of the map" : "no source address%s",
		    r->source ? r->source : "");
	} else if (rt->provider && rt->provider->cookie) {
		why(v, 401, "no token (Authorization: Bearer, or cookie %s)", rt->provider->cookie);
	} else {
		why(v, 401, "no token (Authorization: Bearer)");
	}
	if (rt->auth & AUTH_JWT)
		bearer_challenge(v, resource, 0);
	else
		snprintf(v->www, sizeof v->www, "WireGuard realm=\"%s\"", resource);
	return DECIDED;
}

static time_t cache_expiry(const struct authz *a, const struct identity *id, time_t now)
{
	time_t until = now + CACHE_TTL_MAX;

	if (id->claims && id->token_exp < until)
		until = id->token_exp;
	if (a->signer && now + a->cfg.assertion_lifetime / 2 < until)
		until = now + a->cfg.assertion_lifetime / 2;
	return until;
}

enum decide_outcome authz_decide(struct authz *a, json_t *req, time_t now, json_t **fields,
				 char *error, size_t errsize, struct keysource **wait)
{
	struct request r = { 0 };
	struct identity id = { .mechanism = "none" };
	struct verdict v = { 0 };
	json_t *cookies = json_array(), *hit;
	const struct resource_policy *res;
	const struct route *rt = NULL;
	const char *resource, *pathwhy, *token = NULL;
	uint8_t key[CACHE_KEY_LEN];
	size_t len = 0;
	time_t until = 0;
	int keyed = 0;
	enum decide_outcome o = DECIDED;

	*fields = NULL;
	if (parse_request(req, &r, cookies, error, errsize) < 0) {
		json_decref(cookies);
		return DECIDED;
	}
	resource = r.resource;
	if (!resource && a->map_ready)
		resource = resource_of_host(a, r.host);
	wireguard_identity(a, &r, &id);
	if (!resource) {
		snprintf(v.rule, sizeof v.rule, "default");
		if (a->map_ready)
			why(&v, 403, "host %.200s is no resource of the map", r.host);
		else
			why(&v, 503, "the map has not arrived from p2p-mapd yet");
	} else if (path_normalise(r.path, r.norm, sizeof r.norm, &pathwhy) < 0) {
		snprintf(v.rule, sizeof v.rule, "%s/path", resource);
		why(&v, 400, "path refused: %s", pathwhy);
	} else if (method_has_lower(r.method)) {
		snprintf(v.rule, sizeof v.rule, "%s/method", resource);
		why(&v, 400, "method %s refused: not in upper case", r.method);
	} else if (!(res = policy_resource(a->policy, resource))) {
		snprintf(v.rule, sizeof v.rule, "default");
		why(&v, 403, "resource %.100s is not in the policy", resource);
	} else if (!(rt = policy_match(res, r.norm, r.method))) {
		snprintf(v.rule, sizeof v.rule, "%s/default", resource);
		why(&v, 403, "no route for %s %.200s", r.method, r.norm);
	} else {
		snprintf(v.rule, sizeof v.rule, "%s", rt->id);
		struct verdict probe = { 0 };

		if (rt->auth & AUTH_JWT)
			token = find_token(&r, cookies, rt->provider, &len, &probe);
		/* a malformed or doubled Authorization (probe.status) is not
		 * keyed as no token: that request is never served from the cache */
		keyed = !probe.status && cache_key(&r, resource, rt, token, len, probe.token_from, key) == 0;
		if (keyed && (hit = dcache_get(a->cache, key, now, &until))) {
			*fields = json_copy(hit);
			add_reuse(*fields, until, now);
			json_object_set_new(*fields, "generation", json_integer((json_int_t)a->generation));
			json_object_set_new(*fields, "path", json_string(r.norm));
			json_object_set_new(*fields, "cached", json_true());
			a->st.cached++;
			count(a, (int)json_integer_value(json_object_get(hit, "status")));
			json_decref(cookies);
			return DECIDED;
		}
		memset(&id, 0, sizeof id);
		o = decide_route(a, &r, cookies, resource, rt, now, &id, &v, &token, &len, wait);
	}
	if (o == DECIDED) {
		*fields = reply_fields(a, resource, rt, &id, &v,
				       v.status != 400 && r.norm[0] ? r.norm : NULL, now);
		/* Allow and 403 hold as long as the identity does; 401 and 503
		 * are not kept, so a fixed token or a fetched key set counts
		 * at once. */
		if (keyed && (v.status == 200 || v.status == 403)) {
			json_t *copy = json_copy(*fields);

			until = cache_expiry(a, &id, now);
			dcache_put(a->cache, key, copy, until, now);
			json_decref(copy);
			add_reuse(*fields, until, now);
		}
		json_object_set_new(*fields, "cached", json_false());
		json_object_set_new(*fields, "generation", json_integer((json_int_t)a->generation));
		count(a, v.status);
	}
	json_decref(id.claims);
	json_decref(cookies);
	return o;
}
