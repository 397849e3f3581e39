/* test: p2p-authz */
/* test-authz-policy.c: p2p-authz's policy.json loader (every refusal names
 * the JSON path at fault), route matching (order, prefixes on segment
 * boundaries, exact paths, methods) and the normal form of request paths
 * that routes are matched on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"

static const char example[] =
	"{\"version\":7,"
	" \"providers\":{\"corp\":{\"issuer\":\"https://idp.test\",\"audience\":\"p2p\","
	"   \"jwks_file\":\"/etc/p2p/idp.jwks\",\"cookie\":\"p2p_token\",\"algorithms\":[\"RS256\",\"ES256\"]},"
	"   \"other\":{\"issuer\":\"https://other.test\",\"audience\":[\"a\",\"b\"],"
	"   \"jwks_url\":\"https://other.test/jwks\",\"user_claim\":\"email\",\"jwks_max_age\":60}},"
	" \"resources\":{"
	"  \"apps\":{\"provider\":\"corp\",\"routes\":["
	"   {\"path\":\"/health\",\"auth\":\"none\"},"
	"   {\"prefix\":\"/public\",\"allow\":\"any\"},"
	"   {\"prefix\":\"/alice\",\"methods\":[\"GET\",\"HEAD\"],\"allow\":{\"users\":[\"alice\"]}},"
	"   {\"prefix\":\"/alice\",\"allow\":[{\"groups\":[\"admins\"]},{\"claims\":{\"level\":[3,4],\"ok\":true}}]},"
	"   {\"prefix\":\"/ops/\",\"auth\":\"wireguard\",\"allow\":{\"groups\":[\"ops\"],\"clients\":[\"jump\"]}},"
	"   {\"prefix\":\"/both\",\"auth\":[\"jwt\",\"wireguard\"],\"provider\":\"other\",\"allow\":\"any\"},"
	"   {\"prefix\":\"/nobody\",\"allow\":[]}]},"
	"  \"vault\":{\"routes\":[{\"prefix\":\"/\",\"allow\":{\"users\":[\"root\"]}}]}}}";

static struct policy *load(const char *text, struct policy_errors *errs)
{
	return policy_load("policy.json", text, strlen(text), errs);
}

static void test_example_loads(void **state)
{
	struct policy_errors errs = { 0 };
	struct policy *p = load(example, &errs);
	const struct resource_policy *apps, *vault;

	(void)state;
	if (!p)
		fail_msg("refused: %s", errs.msg[0]);
	assert_int_equal(p->version, 7);
	assert_int_equal(p->nproviders, 2);
	apps = policy_resource(p, "apps");
	vault = policy_resource(p, "vault");
	assert_non_null(apps);
	assert_non_null(vault);
	assert_null(policy_resource(p, "nope"));
	assert_int_equal(apps->nroutes, 7);
	assert_int_equal(apps->routes[0].auth, AUTH_NONE);
	assert_int_equal(apps->routes[1].auth, AUTH_JWT);        /* a provider: jwt by default */
	assert_string_equal(apps->routes[1].provider->name, "corp");
	assert_int_equal(vault->routes[0].auth, AUTH_WIREGUARD); /* no provider: wireguard */
	assert_int_equal(apps->routes[5].auth, AUTH_JWT | AUTH_WIREGUARD);
	assert_string_equal(apps->routes[5].provider->name, "other");
	assert_string_equal(apps->routes[2].id, "apps/routes/2");
	assert_int_equal(apps->routes[6].nallow, 0);
	assert_int_equal(p->providers[0].algs, ALG_RS256 | ALG_ES256);
	assert_string_equal(p->providers[0].cookie, "p2p_token");
	assert_string_equal(p->providers[0].user_claim, "sub");
	assert_string_equal(p->providers[1].user_claim, "email");
	assert_int_equal(p->providers[1].jwks_is_url, 1);
	assert_int_equal(p->providers[1].jwks_max_age, 60);
	assert_int_equal(p->providers[0].jwks_min_interval, 30);
	assert_int_equal(json_array_size(p->providers[1].audience), 2);
	assert_int_equal(json_array_size(p->providers[0].audience), 1);
	policy_free(p);
}

static const char *route_for(const struct policy *p, const char *res, const char *path,
			     const char *method)
{
	const struct route *rt = policy_match(policy_resource(p, res), path, method);

	return rt ? rt->id : "none";
}

static void test_matching(void **state)
{
	struct policy_errors errs = { 0 };
	struct policy *p = load(example, &errs);

	(void)state;
	assert_non_null(p);
	assert_string_equal(route_for(p, "apps", "/health", "GET"), "apps/routes/0");
	/* an exact path is exact */
	assert_string_equal(route_for(p, "apps", "/health/x", "GET"), "none");
	assert_string_equal(route_for(p, "apps", "/healthz", "GET"), "none");
	/* prefixes end on a segment boundary */
	assert_string_equal(route_for(p, "apps", "/public", "GET"), "apps/routes/1");
	assert_string_equal(route_for(p, "apps", "/public/a/b", "POST"), "apps/routes/1");
	assert_string_equal(route_for(p, "apps", "/publicity", "GET"), "none");
	/* order and methods: GET /alice is route 2, POST falls to route 3 */
	assert_string_equal(route_for(p, "apps", "/alice/x", "GET"), "apps/routes/2");
	assert_string_equal(route_for(p, "apps", "/alice", "POST"), "apps/routes/3");
	/* methods are case-sensitive tokens */
	assert_string_equal(route_for(p, "apps", "/alice", "get"), "apps/routes/3");
	/* a prefix with a trailing slash needs it */
	assert_string_equal(route_for(p, "apps", "/ops", "GET"), "none");
	assert_string_equal(route_for(p, "apps", "/ops/x", "GET"), "apps/routes/4");
	assert_string_equal(route_for(p, "vault", "/anything/at/all", "DELETE"), "vault/routes/0");
	policy_free(p);
}

/* TEXT is refused with a message containing each of the NULL-terminated
 * fragments (in some message). */
static void refused_with(const char *text, ...)
{
	struct policy_errors errs = { 0 };
	struct policy *p = load(text, &errs);
	va_list ap;
	const char *want;

	if (p)
		fail_msg("accepted: %s", text);
	assert_true(errs.count > 0);
	va_start(ap, text);
	while ((want = va_arg(ap, const char *))) {
		int found = 0;

		for (int i = 0; i < errs.count && i < POLICY_ERRORS_MAX; i++)
			if (strstr(errs.msg[i], want))
				found = 1;
		if (!found) {
			for (int i = 0; i < errs.count && i < POLICY_ERRORS_MAX; i++)
				print_error("  got: %s\n", errs.msg[i]);
			fail_msg("no message with \"%s\" for %s", want, text);
		}
	}
	va_end(ap);
	policy_errors_clear(&errs);
}

#define R(routes) "{\"providers\":{\"p\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_file\":\"f\"}}," \
	"\"resources\":{\"r\":{\"provider\":\"p\",\"routes\":[" routes "]}}}"

static void test_refusals(void **state)
{
	(void)state;
	refused_with("{\"resources\":{}", "policy.json:1:", NULL);
	refused_with("[]", "policy.json: .: the policy is a JSON object", NULL);
	refused_with("{\"resources\":{},\"resources\":{}}", "duplicate", NULL);
	refused_with("{}", "\"resources\" is missing", NULL);
	refused_with("{\"resource\":{}}", ": .: unknown member \"resource\"", NULL);
	refused_with("{\"resources\":{\"Bad Name\":{\"routes\":[]}}}", ".resources.Bad Name: not a name", NULL);
	refused_with(R("{\"prefix\":\"/a\",\"alow\":\"any\"}"),
		     ".resources.r.routes[0]: unknown member \"alow\"",
		     ".resources.r.routes[0]: \"allow\" is missing", NULL);
	refused_with(R("{\"allow\":\"any\"}"), "routes[0]: \"path\" or \"prefix\" is missing", NULL);
	refused_with(R("{\"path\":\"/a\",\"prefix\":\"/a\",\"allow\":\"any\"}"), "both given", NULL);
	refused_with(R("{\"prefix\":\"/a/../b\",\"allow\":\"any\"}"),
		     "routes[0].prefix: \"/a/../b\" is not in normal form (it would be \"/b\")", NULL);
	refused_with(R("{\"prefix\":\"a\",\"allow\":\"any\"}"), "does not begin with /", NULL);
	refused_with(R("{\"prefix\":\"/a%2fb\",\"allow\":\"any\"}"), "escaped slash", NULL);
	refused_with(R("{\"prefix\":\"/a\",\"allow\":\"everyone\"}"), "routes[0].allow: \"everyone\"", NULL);
	refused_with(R("{\"prefix\":\"/a\",\"allow\":{}}"), "routes[0].allow: an empty entry", NULL);
	refused_with(R("{\"prefix\":\"/a\",\"allow\":[{\"users\":[\"x\"]},{\"user\":[\"y\"]}]}"),
		     "routes[0].allow[1]: unknown member \"user\"", NULL);
	refused_with(R("{\"prefix\":\"/a\",\"allow\":{\"users\":[]}}"), "allow.users: an empty list", NULL);
	refused_with(R("{\"prefix\":\"/a\",\"allow\":{\"users\":[\"x\",\"x\"]}}"), "users[1]: \"x\" is listed twice", NULL);
	refused_with(R("{\"prefix\":\"/a\",\"allow\":{\"users\":\"x\"}}"), "allow.users: an array of strings, not a string", NULL);
	refused_with(R("{\"prefix\":\"/a\",\"auth\":\"wireguard\",\"allow\":{\"claims\":{\"a\":1}}}"),
		     "allow.claims: claims come only from tokens", NULL);
	refused_with(R("{\"prefix\":\"/a\",\"allow\":{\"claims\":{\"a\":{\"b\":1}}}}"),
		     "allow.claims.a: claim values are strings, integers or booleans", NULL);
	refused_with(R("{\"path\":\"/health\",\"auth\":\"none\",\"allow\":\"any\"}"),
		     "an open route (\"auth\": \"none\") has no \"allow\"", NULL);
	refused_with(R("{\"prefix\":\"/a\",\"auth\":[\"none\",\"jwt\"],\"allow\":\"any\"}"),
		     "routes[0].auth", NULL);
	refused_with(R("{\"prefix\":\"/a\",\"auth\":\"password\",\"allow\":\"any\"}"),
		     "routes[0].auth: \"password\" is not none, wireguard or jwt", NULL);
	refused_with(R("{\"prefix\":\"/a\",\"methods\":[\"get\"],\"allow\":\"any\"}"),
		     "routes[0].methods[0]: \"get\" is not a method", NULL);
	refused_with(R("{\"prefix\":\"/a\",\"provider\":\"q\",\"allow\":\"any\"}"),
		     "routes[0].provider: no provider \"q\"", NULL);
	refused_with("{\"resources\":{\"r\":{\"routes\":[{\"prefix\":\"/a\",\"auth\":\"jwt\",\"allow\":\"any\"}]}}}",
		     "jwt needs a provider", NULL);
	refused_with("{\"providers\":{\"p\":{\"issuer\":\"i\",\"jwks_file\":\"f\",\"jwks_url\":\"https://x\"}},\"resources\":{}}",
		     ".providers.p: \"audience\" is missing", "both given", NULL);
	refused_with("{\"providers\":{\"p\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_url\":\"http://x/\"}},\"resources\":{}}",
		     ".jwks_url: \"http://x/\" is not an https:// URL", NULL);
	refused_with("{\"providers\":{\"p\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_file\":\"f\",\"algorithms\":[\"HS256\"]}},\"resources\":{}}",
		     ".providers.p.algorithms[0]: \"HS256\" is not a signature algorithm we accept", NULL);
	refused_with("{\"providers\":{\"p\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_file\":\"f\",\"algorithms\":[\"none\"]}},\"resources\":{}}",
		     "\"none\" is not a signature algorithm", NULL);
	refused_with("{\"providers\":{\"p\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_file\":\"f\",\"cookie\":\"a b\"}},\"resources\":{}}",
		     ".cookie: \"a b\" is not a cookie name", NULL);
	refused_with("{\"providers\":{\"p\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_file\":\"f\",\"jwks_min_interval\":-1}},\"resources\":{}}",
		     ".jwks_min_interval: -1 is not between 0 and 86400", NULL);
	refused_with("{\"version\":\"1\",\"resources\":{}}", ".version: a non-negative integer", NULL);
	/* several problems are all reported */
	refused_with("{\"x\":1,\"resources\":{\"a\":{\"routes\":[{\"prefix\":\"/\"}]},\"b\":[]}}",
		     "unknown member \"x\"", ".resources.a.routes[0]: \"allow\" is missing",
		     ".resources.b: an object, not an array", NULL);
}

struct norm_case {
	const char *in, *out;   /* out NULL: refused */
};

static void test_normalise(void **state)
{
	static const struct norm_case cases[] = {
		{ "/", "/" },
		{ "/a/b", "/a/b" },
		{ "/a/b?x=/../c", "/a/b" },
		{ "/a#frag", "/a" },
		{ "/a//b", "/a/b" },
		{ "//a", "/a" },
		{ "/a/./b/../c", "/a/c" },
		{ "/a/..", "/" },
		{ "/a/b/..", "/a/" },
		{ "/a/.", "/a/" },
		{ "/../../x", "/x" },
		{ "/public/../alice", "/alice" },
		{ "/public/%2e%2e/alice", "/alice" },
		{ "/public/.%2E/alice", "/alice" },
		{ "/%61lice", "/alice" },
		{ "/a%7eb", "/a~b" },
		{ "/a%3ab", "/a%3Ab" },
		{ "/%e2%82%ac", "/%E2%82%AC" },
		{ "/a/b/", "/a/b/" },
		{ "/public/..%2Falice", NULL },
		{ "/a%2fb", NULL },
		{ "/a%5cb", NULL },
		{ "/a%00", NULL },
		{ "/a\\b", NULL },
		{ "/static/..;/admin", NULL },   /* /admin to a servlet container */
		{ "/admin;jsessionid=1/x", NULL },
		{ "/a%3bb", "/a%3Bb" },           /* escaped: no container splits there */
		{ "/a%zz", NULL },
		{ "/a%4", NULL },
		{ "/a%", NULL },
		{ "/a b", NULL },
		{ "/a\tb", NULL },
		{ "/\xc3\xa9", NULL },
		{ "a/b", NULL },
		{ "", NULL },
		{ "*", NULL },
	};
	char out[256];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *why = NULL;
		int rc = path_normalise(cases[i].in, out, sizeof out, &why);

		if (cases[i].out && rc != 0)
			fail_msg("%s: refused (%s), want %s", cases[i].in, why, cases[i].out);
		if (!cases[i].out && rc == 0)
			fail_msg("%s: accepted as %s, want refused", cases[i].in, out);
		if (cases[i].out && strcmp(out, cases[i].out))
			fail_msg("%s: %s, want %s", cases[i].in, out, cases[i].out);
		if (!cases[i].out)
			assert_non_null(why);
	}
	/* the output never overflows */
	{
		char big[300];
		const char *why;

		memset(big, 'a', sizeof big - 1);
		big[0] = '/';
		big[sizeof big - 1] = '\0';
		assert_int_equal(path_normalise(big, out, sizeof out, &why), -1);
	}
}

static void test_b64url(void **state)
{
	uint8_t out[16];
	char enc[32];

	(void)state;
	assert_int_equal(b64url_decode("", 0, out), 0);
	assert_int_equal(b64url_decode("YQ", 2, out), 1);
	assert_int_equal(out[0], 'a');
	assert_int_equal(b64url_decode("YWI", 3, out), 2);
	assert_int_equal(b64url_decode("YWJj", 4, out), 3);
	assert_int_equal(b64url_decode("YQ==", 4, out), -1);  /* no padding */
	assert_int_equal(b64url_decode("Y", 1, out), -1);
	assert_int_equal(b64url_decode("YR", 2, out), -1);    /* stray low bits */
	assert_int_equal(b64url_decode("+/", 2, out), -1);    /* not the url alphabet */
	assert_int_equal(b64url_decode("-_", 2, out), -1);   /* stray low bits */
	assert_int_equal(b64url_decode("-w", 2, out), 1);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(b64url_encode((const uint8_t *)"\xfb\xff", 2, enc), 3);
	assert_string_equal(enc, "-_8");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_loads),
		cmocka_unit_test(test_matching),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_b64url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
