/* policy.c: policy.json (p2p-policy.5), read strictly: every unknown
 * member, wrong type and bad value is reported with its JSON path, all in
 * one pass, and a policy with any problem is refused whole. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"

#define MAX_ROUTES 1000
#define MAX_LIST 1000

void policy_errors_add(struct policy_errors *e, const char *fmt, ...)
{
	va_list ap;
	char buf[768];

	if (e->count++ >= POLICY_ERRORS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	e->msg[e->count - 1] = strdup(buf);
}

void policy_errors_clear(struct policy_errors *e)
{
	for (int i = 0; i < e->count && i < POLICY_ERRORS_MAX; i++)
		free(e->msg[i]);
	e->count = 0;
}

static const struct {
	const char *name;
	unsigned bit;
} algs[] = {
	{ "RS256", ALG_RS256 }, { "RS384", ALG_RS384 }, { "RS512", ALG_RS512 },
	{ "PS256", ALG_PS256 }, { "PS384", ALG_PS384 }, { "PS512", ALG_PS512 },
	{ "ES256", ALG_ES256 }, { "ES384", ALG_ES384 }, { "ES512", ALG_ES512 },
	{ "EdDSA", ALG_EDDSA },
};

unsigned alg_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
		if (strcmp(algs[i].name, name) == 0)
			return algs[i].bit;
	return 0;
}

const char *alg_name(unsigned alg)
{
	for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
		if (algs[i].bit == alg)
			return algs[i].name;
	return "?";
}

/* ---- the loader ---- */

struct loader {
	const char *file;
	struct policy_errors *errs;
	struct policy *pol;
};

static void problem(struct loader *ld, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void problem(struct loader *ld, const char *path, const char *fmt, ...)
{
	va_list ap;
	char what[512];

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	policy_errors_add(ld->errs, "%s: %s: %s", ld->file, path[0] ? path : ".", what);
}

/* The JSON path of a member, cut when absurdly long (messages only). */
static void subpath(char *out, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void subpath(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, size, fmt, ap);
	va_end(ap);
}

static const char *type_name(const json_t *v)
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

/* Members of OBJ not in ALLOWED (NULL-terminated) are errors. */
static void only_members(struct loader *ld, const char *path, json_t *obj,
			 const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		size_t i;

		for (i = 0; allowed[i] && strcmp(allowed[i], key); i++)
			;
		if (!allowed[i])
			problem(ld, path, "unknown member \"%.100s\"", key);
	}
}

static int want_type(struct loader *ld, const char *path, json_t *v, json_type type,
		     const char *tname)
{
	if (json_typeof(v) == type ||
	    (type == JSON_TRUE && json_is_boolean(v)))
		return 1;
	problem(ld, path, "%s, not %s", tname, type_name(v));
	return 0;
}

/* Names of providers and resources: the map's syntax. */
static int good_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 63 || !((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

/* Printable ASCII and UTF-8, no control characters: what may be compared
 * with a claim or put in a header after encoding. */
static int good_text(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n < 1 || n > max)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static const char *string_member(struct loader *ld, const char *path, json_t *obj,
				 const char *key, int required)
{
	json_t *v = json_object_get(obj, key);
	char p[512];

	subpath(p, sizeof p, "%s.%s", path, key);
	if (!v) {
		if (required)
			problem(ld, path, "\"%s\" is missing", key);
		return NULL;
	}
	if (!want_type(ld, p, v, JSON_STRING, "a string"))
		return NULL;
	if (!good_text(json_string_value(v), 4096)) {
		problem(ld, p, "empty, too long, or with control characters");
		return NULL;
	}
	return json_string_value(v);
}

/* A non-empty array of distinct strings, or with ALLOW_STRING one string
 * (made an array). Returns a new reference or NULL. */
static json_t *string_list(struct loader *ld, const char *path, json_t *v, int allow_string,
			   int (*check)(const char *), const char *what)
{
	json_t *out, *e;
	size_t i;

	if (allow_string && json_is_string(v)) {
		out = json_array();
		json_array_append(out, v);
	} else if (!json_is_array(v)) {
		problem(ld, path, "%s, not %s", allow_string ? "a string or an array of strings" :
			"an array of strings", type_name(v));
		return NULL;
	} else {
		out = json_incref(v);
	}
	if (json_array_size(out) == 0 || json_array_size(out) > MAX_LIST) {
		problem(ld, path, "%s", json_array_size(out) ? "more than 1000 entries" :
			"an empty list (leave the member out instead)");
		json_decref(out);
		return NULL;
	}
	json_array_foreach(out, i, e) {
		char p[512];

		subpath(p, sizeof p, "%s[%zu]", path, i);
		if (!json_is_string(e)) {
			problem(ld, p, "a string, not %s", type_name(e));
			json_decref(out);
			return NULL;
		}
		if (!(check ? check(json_string_value(e)) : good_text(json_string_value(e), 255))) {
			problem(ld, p, "\"%.100s\" is not %s", json_string_value(e), what);
			json_decref(out);
			return NULL;
		}
		for (size_t k = 0; k < i; k++)
			if (json_equal(json_array_get(out, k), e)) {
				problem(ld, p, "\"%.100s\" is listed twice", json_string_value(e));
				json_decref(out);
				return NULL;
			}
	}
	return out;
}

static long seconds_member(struct loader *ld, const char *path, json_t *obj, const char *key,
			   long def, long min, long max)
{
	json_t *v = json_object_get(obj, key);
	char p[512];

	if (!v)
		return def;
	subpath(p, sizeof p, "%s.%s", path, key);
	if (!json_is_integer(v)) {
		problem(ld, p, "an integer, not %s", type_name(v));
		return def;
	}
	if (json_integer_value(v) < min || json_integer_value(v) > max) {
		problem(ld, p, "%lld is not between %ld and %ld", (long long)json_integer_value(v),
			min, max);
		return def;
	}
	return (long)json_integer_value(v);
}

static int good_cookie_name(const char *s)
{
	static const char separators[] = "()<>@,;:\\\"/[]?={} \t";

	if (!*s || strlen(s) > 128)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || strchr(separators, *s))
			return 0;
	return 1;
}

static int good_alg(const char *s)
{
	return alg_from_name(s) != 0;
}

static int good_https_url(const char *s)
{
	if (strncmp(s, "https://", 8) != 0 || strlen(s) < 9 || strlen(s) > 2000)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

static void load_provider(struct loader *ld, const char *name, json_t *v, struct provider *pv)
{
	static const char *const members[] = {
		"issuer", "audience", "jwks_file", "jwks_url", "algorithms", "cookie",
		"user_claim", "groups_claim", "jwks_max_age", "jwks_min_interval",
		"forward_token", NULL
	};
	char path[256];
	json_t *m;

	subpath(path, sizeof path, ".providers.%s", name);
	pv->name = name;
	pv->user_claim = "sub";
	pv->groups_claim = "groups";
	pv->algs = ALG_ALL;
	if (!good_name(name))
		problem(ld, path, "not a name (1 to 63 of a-z 0-9 - _, from a letter or digit)");
	if (!want_type(ld, path, v, JSON_OBJECT, "an object"))
		return;
	only_members(ld, path, v, members);
	pv->issuer = string_member(ld, path, v, "issuer", 1);
	if ((m = json_object_get(v, "audience"))) {
		char p[300];

		subpath(p, sizeof p, "%s.audience", path);
		pv->audience = string_list(ld, p, m, 1, NULL, "an audience");
	} else {
		problem(ld, path, "\"audience\" is missing (the value the tokens' \"aud\" must hold)");
	}
	{
		const char *file = string_member(ld, path, v, "jwks_file", 0);
		const char *url = string_member(ld, path, v, "jwks_url", 0);

		if (file && url)
			problem(ld, path, "\"jwks_file\" and \"jwks_url\" both given: one key set per provider");
		else if (!file && !url && !json_object_get(v, "jwks_file") &&
			 !json_object_get(v, "jwks_url"))
			problem(ld, path, "\"jwks_file\" or \"jwks_url\" is missing");
		if (url && !good_https_url(url))
			problem(ld, path, ".jwks_url: \"%.100s\" is not an https:// URL", url);
		pv->jwks = file ? file : url;
		pv->jwks_is_url = url != NULL;
	}
	if ((m = json_object_get(v, "algorithms"))) {
		char p[300];
		json_t *list, *e;
		size_t i;

		subpath(p, sizeof p, "%s.algorithms", path);
		list = string_list(ld, p, m, 0, good_alg,
				   "a signature algorithm we accept (RS256 RS384 RS512 PS256 PS384 "
				   "PS512 ES256 ES384 ES512 EdDSA; never none or HS*)");
		if (list) {
			pv->algs = 0;
			json_array_foreach(list, i, e)
				pv->algs |= alg_from_name(json_string_value(e));
			json_decref(list);
		}
	}
	pv->cookie = string_member(ld, path, v, "cookie", 0);
	if (pv->cookie && !good_cookie_name(pv->cookie))
		problem(ld, path, ".cookie: \"%.100s\" is not a cookie name", pv->cookie);
	if (json_object_get(v, "user_claim"))
		pv->user_claim = string_member(ld, path, v, "user_claim", 0);
	if (json_object_get(v, "groups_claim"))
		pv->groups_claim = string_member(ld, path, v, "groups_claim", 0);
	pv->jwks_max_age = seconds_member(ld, path, v, "jwks_max_age", 3600, 1, 7 * 86400);
	pv->jwks_min_interval = seconds_member(ld, path, v, "jwks_min_interval", 30, 0, 86400);
	if ((m = json_object_get(v, "forward_token"))) {
		char p[300];

		subpath(p, sizeof p, "%s.forward_token", path);
		if (want_type(ld, p, m, JSON_TRUE, "a boolean"))
			pv->forward_token = json_is_true(m);
	}
}

static const struct provider *find_provider(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->nproviders; i++)
		if (strcmp(p->providers[i].name, name) == 0)
			return &p->providers[i];
	return NULL;
}

static const struct provider *provider_member(struct loader *ld, const char *path, json_t *obj)
{
	json_t *v = json_object_get(obj, "provider");
	const struct provider *pv;
	char p[300];

	if (!v)
		return NULL;
	subpath(p, sizeof p, "%s.provider", path);
	if (!want_type(ld, p, v, JSON_STRING, "a string"))
		return NULL;
	pv = find_provider(ld->pol, json_string_value(v));
	if (!pv)
		problem(ld, p, "no provider \"%.100s\" in .providers", json_string_value(v));
	return pv;
}

static unsigned auth_bit(const char *s)
{
	if (!strcmp(s, "none"))
		return AUTH_NONE;
	if (!strcmp(s, "wireguard"))
		return AUTH_WIREGUARD;
	if (!strcmp(s, "jwt"))
		return AUTH_JWT;
	return 0;
}

static unsigned load_auth(struct loader *ld, const char *path, json_t *v)
{
	unsigned bits = 0, b;
	json_t *e;
	size_t i;

	if (json_is_string(v)) {
		if (!(bits = auth_bit(json_string_value(v))))
			problem(ld, path, "\"%.50s\" is not none, wireguard or jwt", json_string_value(v));
		return bits;
	}
	if (!json_is_array(v) || json_array_size(v) == 0) {
		problem(ld, path, "a string or a non-empty array of strings, not %s",
			json_is_array(v) ? "an empty array" : type_name(v));
		return 0;
	}
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || !(b = auth_bit(json_string_value(e)))) {
			problem(ld, path, "[%zu] is not \"wireguard\" or \"jwt\"", i);
			return 0;
		}
		if (bits & b) {
			problem(ld, path, "[%zu] is listed twice", i);
			return 0;
		}
		bits |= b;
	}
	if ((bits & AUTH_NONE) && bits != AUTH_NONE) {
		problem(ld, path, "\"none\" cannot be combined with another mechanism");
		return 0;
	}
	return bits;
}

/* claim -> scalar or array of scalars, kept as claim -> array. */
static json_t *load_claims(struct loader *ld, const char *path, json_t *v)
{
	json_t *out, *val;
	const char *claim;

	if (!want_type(ld, path, v, JSON_OBJECT, "an object"))
		return NULL;
	if (json_object_size(v) == 0) {
		problem(ld, path, "an empty object (leave the member out instead)");
		return NULL;
	}
	out = json_object();
	json_object_foreach(v, claim, val) {
		json_t *list = json_is_array(val) ? json_incref(val) : json_pack("[O]", val), *e;
		size_t i;
		char p[600];

		subpath(p, sizeof p, "%s.%.100s", path, claim);
		if (json_array_size(list) == 0)
			problem(ld, p, "an empty list");
		json_array_foreach(list, i, e)
			if (!json_is_string(e) && !json_is_integer(e) && !json_is_boolean(e)) {
				problem(ld, p, "claim values are strings, integers or booleans, not %s",
					type_name(e));
				break;
			}
		json_object_set_new(out, claim, list);
	}
	return out;
}

static void load_allow_entry(struct loader *ld, const char *path, json_t *v, struct allow *a,
			     unsigned auth)
{
	static const char *const members[] = { "users", "groups", "clients", "claims", NULL };
	char p[600];
	json_t *m;

	if (!want_type(ld, path, v, JSON_OBJECT, "an object"))
		return;
	only_members(ld, path, v, members);
	if (json_object_size(v) == 0) {
		problem(ld, path, "an empty entry would let anyone in: write \"allow\": \"any\"");
		return;
	}
	if ((m = json_object_get(v, "users"))) {
		subpath(p, sizeof p, "%s.users", path);
		a->users = string_list(ld, p, m, 0, NULL, "a user name");
	}
	if ((m = json_object_get(v, "groups"))) {
		subpath(p, sizeof p, "%s.groups", path);
		a->groups = string_list(ld, p, m, 0, NULL, "a group name");
	}
	if ((m = json_object_get(v, "clients"))) {
		subpath(p, sizeof p, "%s.clients", path);
		a->clients = string_list(ld, p, m, 0, good_name, "a client name of the map");
	}
	if ((m = json_object_get(v, "claims"))) {
		subpath(p, sizeof p, "%s.claims", path);
		a->claims = load_claims(ld, p, m);
		if (!(auth & AUTH_JWT))
			problem(ld, p, "claims come only from tokens, and this route does not take jwt");
	}
}

static void load_allow(struct loader *ld, const char *path, json_t *v, struct route *rt)
{
	json_t *e;
	size_t i;

	if (json_is_string(v)) {
		if (strcmp(json_string_value(v), "any"))
			problem(ld, path, "\"%.50s\": the only word allowed here is \"any\"",
				json_string_value(v));
		rt->allow_any = 1;
		return;
	}
	if (json_is_object(v)) {
		if (!(rt->allow = calloc(1, sizeof *rt->allow))) {
			problem(ld, path, "out of memory");
			return;
		}
		rt->nallow = 1;
		load_allow_entry(ld, path, v, rt->allow, rt->auth);
		return;
	}
	if (!json_is_array(v)) {
		problem(ld, path, "\"any\", an object or an array of objects, not %s", type_name(v));
		return;
	}
	if (json_array_size(v) > MAX_LIST) {
		problem(ld, path, "more than %d entries", MAX_LIST);
		return;
	}
	rt->nallow = json_array_size(v);
	if (!(rt->allow = calloc(rt->nallow ? rt->nallow : 1, sizeof *rt->allow))) {
		rt->nallow = 0;
		problem(ld, path, "out of memory");
		return;
	}
	json_array_foreach(v, i, e) {
		char p[600];

		subpath(p, sizeof p, "%s[%zu]", path, i);
		load_allow_entry(ld, p, e, &rt->allow[i], rt->auth);
	}
}

static int good_method(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 32)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

/* A path or prefix as written in the policy must be in normal form, or it
 * would never match what path_normalise makes of a request. */
static int good_route_path(struct loader *ld, const char *path, const char *text)
{
	char norm[4096];
	const char *why;

	if (path_normalise(text, norm, sizeof norm, &why) < 0) {
		problem(ld, path, "\"%.100s\": %s", text, why);
		return 0;
	}
	if (strcmp(norm, text) != 0 || strchr(text, '?') || strchr(text, '#')) {
		problem(ld, path, "\"%.100s\" is not in normal form (it would be \"%.100s\")", text,
			norm);
		return 0;
	}
	return 1;
}

static void load_route(struct loader *ld, const char *resname, const char *path, size_t index,
		       json_t *v, struct route *rt, const struct provider *res_provider)
{
	static const char *const members[] = {
		"path", "prefix", "methods", "auth", "provider", "allow", NULL
	};
	json_t *m;

	snprintf(rt->id, sizeof rt->id, "%s/routes/%zu", resname, index);
	if (!want_type(ld, path, v, JSON_OBJECT, "an object"))
		return;
	only_members(ld, path, v, members);
	rt->path = string_member(ld, path, v, "path", 0);
	rt->prefix = string_member(ld, path, v, "prefix", 0);
	if (rt->path && rt->prefix)
		problem(ld, path, "\"path\" and \"prefix\" both given");
	else if (!json_object_get(v, "path") && !json_object_get(v, "prefix"))
		problem(ld, path, "\"path\" or \"prefix\" is missing");
	{
		char p[600];

		if (rt->path) {
			subpath(p, sizeof p, "%s.path", path);
			if (!good_route_path(ld, p, rt->path))
				rt->path = NULL;
		}
		if (rt->prefix) {
			subpath(p, sizeof p, "%s.prefix", path);
			if (!good_route_path(ld, p, rt->prefix))
				rt->prefix = NULL;
		}
		if ((m = json_object_get(v, "methods"))) {
			subpath(p, sizeof p, "%s.methods", path);
			rt->methods = string_list(ld, p, m, 0, good_method,
						  "a method in upper case (GET, POST...)");
		}
	}
	rt->provider = provider_member(ld, path, v);
	if (!rt->provider && !json_object_get(v, "provider"))
		rt->provider = res_provider;
	if ((m = json_object_get(v, "auth"))) {
		char p[600];

		subpath(p, sizeof p, "%s.auth", path);
		rt->auth = load_auth(ld, p, m);
	} else {
		rt->auth = rt->provider ? AUTH_JWT : AUTH_WIREGUARD;
	}
	if ((rt->auth & AUTH_JWT) && !rt->provider && !json_object_get(v, "provider"))
		problem(ld, path, "jwt needs a provider: give \"provider\" here or in the resource");
	m = json_object_get(v, "allow");
	if (rt->auth == AUTH_NONE) {
		if (m)
			problem(ld, path, "an open route (\"auth\": \"none\") has no \"allow\"");
	} else if (!m) {
		problem(ld, path, "\"allow\" is missing (\"any\", or who may pass)");
	} else {
		char p[600];

		subpath(p, sizeof p, "%s.allow", path);
		load_allow(ld, p, m, rt);
	}
}

static void load_resource(struct loader *ld, const char *name, json_t *v,
			  struct resource_policy *res)
{
	static const char *const members[] = { "provider", "routes", NULL };
	char path[256];
	const struct provider *pv;
	json_t *routes, *e;
	size_t i;

	subpath(path, sizeof path, ".resources.%s", name);
	res->name = name;
	if (!good_name(name))
		problem(ld, path, "not a name (1 to 63 of a-z 0-9 - _, from a letter or digit)");
	if (!want_type(ld, path, v, JSON_OBJECT, "an object"))
		return;
	only_members(ld, path, v, members);
	pv = provider_member(ld, path, v);
	routes = json_object_get(v, "routes");
	if (!routes) {
		problem(ld, path, "\"routes\" is missing");
		return;
	}
	{
		char p[300];

		subpath(p, sizeof p, "%s.routes", path);
		if (!want_type(ld, p, routes, JSON_ARRAY, "an array"))
			return;
		if (json_array_size(routes) > MAX_ROUTES) {
			problem(ld, p, "more than %d routes", MAX_ROUTES);
			return;
		}
	}
	res->nroutes = json_array_size(routes);
	res->routes = calloc(res->nroutes ? res->nroutes : 1, sizeof *res->routes);
	json_array_foreach(routes, i, e) {
		char p[300];

		subpath(p, sizeof p, "%s.routes[%zu]", path, i);
		load_route(ld, name, p, i, e, &res->routes[i], pv);
	}
}

struct policy *policy_load(const char *file, const char *text, size_t len,
			   struct policy_errors *errs)
{
	static const char *const members[] = { "version", "providers", "resources", NULL };
	struct loader ld = { .file = file, .errs = errs };
	json_error_t jerr;
	json_t *doc, *m, *v;
	const char *key;
	struct policy *p;
	size_t i;

	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		policy_errors_add(errs, "%s:%d:%d: %s", file, jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	p = calloc(1, sizeof *p);
	if (!p) {
		json_decref(doc);
		policy_errors_add(errs, "%s: out of memory", file);
		return NULL;
	}
	p->doc = doc;
	ld.pol = p;
	if (!json_is_object(doc)) {
		problem(&ld, "", "the policy is a JSON object, not %s", type_name(doc));
		goto out;
	}
	only_members(&ld, "", doc, members);
	if ((m = json_object_get(doc, "version"))) {
		if (!json_is_integer(m) || json_integer_value(m) < 0)
			problem(&ld, ".version", "a non-negative integer, not %s", type_name(m));
		else
			p->version = json_integer_value(m);
	}
	m = json_object_get(doc, "providers");
	if (m && want_type(&ld, ".providers", m, JSON_OBJECT, "an object")) {
		if (!(p->providers = calloc(json_object_size(m) + 1, sizeof *p->providers)))
			problem(&ld, ".providers", "out of memory");
		else
			json_object_foreach(m, key, v)
				load_provider(&ld, key, v, &p->providers[p->nproviders++]);
	}
	m = json_object_get(doc, "resources");
	if (!m) {
		problem(&ld, "", "\"resources\" is missing");
	} else if (want_type(&ld, ".resources", m, JSON_OBJECT, "an object")) {
		if (!(p->resources = calloc(json_object_size(m) + 1, sizeof *p->resources)))
			problem(&ld, ".resources", "out of memory");
		else
			json_object_foreach(m, key, v)
				load_resource(&ld, key, v, &p->resources[p->nresources++]);
	}
	(void)i;
out:
	if (errs->count) {
		policy_free(p);
		return NULL;
	}
	return p;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nproviders; i++)
		json_decref(p->providers[i].audience);
	for (size_t i = 0; i < p->nresources; i++) {
		struct resource_policy *r = &p->resources[i];

		for (size_t k = 0; k < r->nroutes; k++) {
			struct route *rt = &r->routes[k];

			json_decref(rt->methods);
			for (size_t a = 0; a < rt->nallow; a++) {
				json_decref(rt->allow[a].users);
				json_decref(rt->allow[a].groups);
				json_decref(rt->allow[a].clients);
				json_decref(rt->allow[a].claims);
			}
			free(rt->allow);
		}
		free(r->routes);
	}
	free(p->providers);
	free(p->resources);
	json_decref(p->doc);
	free(p);
}

const struct resource_policy *policy_resource(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->nresources; i++)
		if (strcmp(p->resources[i].name, name) == 0)
			return &p->resources[i];
	return NULL;
}

int route_matches_path(const struct route *rt, const char *path)
{
	size_t n;

	if (rt->path)
		return strcmp(rt->path, path) == 0;
	if (!rt->prefix)
		return 0;
	n = strlen(rt->prefix);
	if (strncmp(rt->prefix, path, n) != 0)
		return 0;
	/* "/alice" covers "/alice" and "/alice/...", never "/alicex". */
	return rt->prefix[n - 1] == '/' || path[n] == '\0' || path[n] == '/';
}

static int method_listed(json_t *methods, const char *method)
{
	json_t *e;
	size_t i;

	if (!methods)
		return 1;
	json_array_foreach(methods, i, e)
		if (strcmp(json_string_value(e), method) == 0)
			return 1;
	return 0;
}

const struct route *policy_match(const struct resource_policy *r, const char *path,
				 const char *method)
{
	for (size_t i = 0; i < r->nroutes; i++)
		if (route_matches_path(&r->routes[i], path) &&
		    method_listed(r->routes[i].methods, method))
			return &r->routes[i];
	return NULL;
}
