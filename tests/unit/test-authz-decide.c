/* test: p2p-authz */
/* test-authz-decide.c: p2p-authz's decisions in-process, where the daemon
 * tests cannot look: the decision cache (expiry, eviction of the oldest,
 * a token from another place is another entry), the cache never outliving
 * the token, a key removed from the set ending cached allows, groups given
 * as one string, header values percent-encoded, and the assertion verified
 * with the published key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjose/cjose.h>
#include <unistd.h>

#include "authz.h"
#include "authz-tokens.h"

static struct tkey ec;
static struct authz a;
static char jwks_path[] = "/tmp/test-authz-decide.XXXXXX";
static time_t now;

static const char policy_fmt[] =
	"{\"providers\":{\"idp\":{\"issuer\":\"https://idp.test\",\"audience\":\"p2p\","
	"\"jwks_file\":\"%s\",\"cookie\":\"tok\",\"jwks_min_interval\":0}},"
	"\"resources\":{\"apps\":{\"provider\":\"idp\",\"routes\":["
	"{\"prefix\":\"/eng\",\"allow\":{\"groups\":[\"eng\"]}},"
	"{\"prefix\":\"/both\",\"auth\":[\"jwt\",\"wireguard\"],\"allow\":\"any\"},"
	"{\"prefix\":\"/\",\"allow\":\"any\"}]}}}";

static void write_jwks(int with_key)
{
	struct tkey *one[] = { &ec };
	char *text = with_key ? tk_jwks(one, 1) : strdup("{\"keys\":[{\"kty\":\"OKP\",\"crv\":"
		"\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}");
	FILE *f = fopen(jwks_path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(text);
}

static int setup(void **state)
{
	struct policy_errors errs = { 0 };
	char policy[2048], err[200];
	int fd = mkstemp(jwks_path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	tk_init(&ec, T_EC256, "ec1", 0);
	write_jwks(1);
	snprintf(policy, sizeof policy, policy_fmt, jwks_path);
	now = time(NULL);
	a.cfg.skew = 60;
	a.cfg.token_max = TOKEN_MAX_DEFAULT;
	a.cfg.assertion_lifetime = 120;
	a.cfg.assertion_issuer = "ny";
	a.policy = policy_load("policy.json", policy, strlen(policy), &errs);
	a.keys = keystore_new(NULL, NULL, NULL, NULL);
	a.cache = dcache_new(4);
	a.signer = signer_generate(err, sizeof err);
	assert_non_null(a.policy);
	assert_non_null(a.signer);
	assert_int_equal(keystore_prepare(a.keys, a.policy, &errs), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(jwks_path);
	policy_free(a.policy);
	keystore_free(a.keys);
	dcache_free(a.cache);
	signer_free(a.signer);
	json_decref(a.clients);
	json_decref(a.names);
	json_decref(a.wildcards);
	EVP_PKEY_free(ec.pkey);
	return 0;
}

static char *token(const char *sub, json_t *groups, time_t exp)
{
	return tk_token(&ec, "ES256", json_pack("{s:s,s:s,s:s,s:I,s:o}", "iss", "https://idp.test",
						"aud", "p2p", "sub", sub, "exp", (json_int_t)exp,
						"groups", groups));
}

/* The reply to GET PATH with TOKEN in the Authorization header (or, with
 * COOKIE, in cookie "tok"), at time T. */
static json_t *ask_at(const char *path, const char *tok, int cookie, time_t t)
{
	char hdr[4096], error[200] = "";
	json_t *req, *f = NULL;
	struct keysource *wait = NULL;

	snprintf(hdr, sizeof hdr, cookie ? "tok=%s" : "Bearer %s", tok);
	req = json_pack("{s:s,s:s,s:s,s:s,s:{s:s}}", "op", "check", "resource", "apps", "method",
			"GET", "path", path, "headers", cookie ? "cookie" : "authorization", hdr);
	assert_int_equal(authz_decide(&a, req, t, &f, error, sizeof error, &wait), DECIDED);
	if (!f)
		fail_msg("no decision: %s", error);
	json_decref(req);
	return f;
}

/* The reply to METHOD PATH from overlay address SOURCE with HEADERS (an
 * object, taken), at NOW. */
static json_t *ask_raw(const char *method, const char *path, const char *source, json_t *headers)
{
	char error[200] = "";
	json_t *req, *f = NULL;
	struct keysource *wait = NULL;

	req = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "op", "check", "resource", "apps", "method", method,
			"path", path, "source", source, "headers", headers);
	assert_int_equal(authz_decide(&a, req, now, &f, error, sizeof error, &wait), DECIDED);
	if (!f)
		fail_msg("no decision: %s", error);
	json_decref(req);
	return f;
}

static int status_of(json_t *f)
{
	return (int)json_integer_value(json_object_get(f, "status"));
}

static int cached(json_t *f)
{
	return json_is_true(json_object_get(f, "cached"));
}

static void test_cache(void **state)
{
	char *t1 = token("alice", json_pack("[s]", "eng"), now + 3600);
	char *t2 = token("bob", json_pack("[s]", "eng"), now + 3600);
	char *shortlived = token("carol", json_pack("[s]", "eng"), now + 10);
	json_t *f;

	(void)state;
	dcache_clear(a.cache);
	f = ask_at("/eng", t1, 0, now);
	assert_int_equal(status_of(f), 200);
	assert_false(cached(f));
	json_decref(f);
	f = ask_at("/eng/x", t1, 0, now);
	assert_true(cached(f)); /* same route: the cached decision, with this path */
	assert_string_equal(json_string_value(json_object_get(f, "path")), "/eng/x");
	json_decref(f);
	/* the same token in a cookie: another entry (another thing to strip) */
	f = ask_at("/eng", t1, 1, now);
	assert_false(cached(f));
	assert_non_null(json_object_get(f, "strip_cookies"));
	json_decref(f);
	/* the entry lives no longer than the token: carol's ends at +10 s */
	json_decref(ask_at("/eng", shortlived, 0, now));
	f = ask_at("/eng", shortlived, 0, now + 9);
	assert_true(cached(f));
	json_decref(f);
	f = ask_at("/eng", shortlived, 0, now + 10);
	assert_false(cached(f));
	json_decref(f);
	/* at most half the assertion's life (60 s here) */
	f = ask_at("/eng", t1, 0, now + 61);
	assert_false(cached(f));
	json_decref(f);
	/* four entries at most: the oldest goes first */
	dcache_clear(a.cache);
	json_decref(ask_at("/eng", t1, 0, now));     /* 1 */
	json_decref(ask_at("/", t1, 0, now));        /* 2 */
	json_decref(ask_at("/eng", t2, 0, now));     /* 3 */
	json_decref(ask_at("/", t2, 0, now));        /* 4 */
	assert_int_equal(dcache_size(a.cache), 4);
	json_decref(ask_at("/eng", t1, 1, now));     /* 5: evicts 1 */
	assert_int_equal(dcache_size(a.cache), 4);
	f = ask_at("/", t1, 0, now);                 /* 2 is still there */
	assert_true(cached(f));
	json_decref(f);
	f = ask_at("/eng", t1, 0, now);              /* 1 is gone */
	assert_false(cached(f));
	json_decref(f);
	free(t1);
	free(t2);
	free(shortlived);
}

/* A method in lower case is refused (400), never matched against the
 * routes' upper-case methods; a malformed or doubled Authorization is
 * never answered from the cache by a decision made without one. */
static void test_refusals(void **state)
{
	json_t *clients = json_pack("{s:{s:s,s:s}}", "laptop", "addr", "100.64.0.5", "user", "carol");
	json_t *resources = json_object(), *f;

	(void)state;
	authz_set_map(&a, clients, resources);
	a.map_ready = 1;
	json_decref(clients);
	json_decref(resources);
	dcache_clear(a.cache);
	f = ask_raw("delete", "/x", "100.64.0.9", json_object());
	assert_int_equal(status_of(f), 400);
	assert_string_equal(json_string_value(json_object_get(f, "rule")), "apps/method");
	json_decref(f);
	/* allowed by the WireGuard identity alone, and kept */
	f = ask_raw("GET", "/both/x", "100.64.0.5", json_object());
	assert_int_equal(status_of(f), 200);
	json_decref(f);
	f = ask_raw("GET", "/both/x", "100.64.0.5", json_object());
	assert_true(cached(f));
	json_decref(f);
	/* the same with an Authorization that is not a Bearer token, or two */
	f = ask_raw("GET", "/both/x", "100.64.0.5", json_pack("{s:s}", "authorization", "Basic eDp5"));
	assert_false(cached(f));
	assert_int_equal(status_of(f), 401);
	json_decref(f);
	f = ask_raw("GET", "/both/x", "100.64.0.5", json_pack("{s:[ss]}", "authorization", "Bearer a", "Bearer b"));
	assert_false(cached(f));
	assert_int_equal(status_of(f), 401);
	json_decref(f);
}

/* A user name longer than the reason keeps, with a character of two bytes
 * where it is cut: still a decision (valid UTF-8), not an empty error. */
static void test_long_user(void **state)
{
	char name[160];
	char *t;
	json_t *f;

	(void)state;
	memset(name, 'a', 99);
	memcpy(name + 99, "\xc3\xa9", 2);      /* bytes 100 and 101: é */
	strcpy(name + 101, "-and-more");
	t = token(name, json_pack("[s]", "eng"), now + 3600);
	f = ask_at("/eng", t, 0, now);
	assert_int_equal(status_of(f), 200);
	assert_non_null(json_string_value(json_object_get(f, "reason")));
	json_decref(f);
	free(t);
}

static void test_key_removed(void **state)
{
	char *t = token("alice", json_pack("[s]", "eng"), now + 3600);
	struct keysource *src = keystore_source(a.keys, jwks_path);
	json_t *f;

	(void)state;
	dcache_clear(a.cache);
	json_decref(ask_at("/eng", t, 0, now));
	f = ask_at("/eng", t, 0, now);
	assert_true(cached(f));
	json_decref(f);
	/* the provider drops the key; the set is read again (an unknown kid
	 * does that, here asked directly) and the cache must not answer */
	write_jwks(0);
	assert_int_equal(keysource_refresh(a.keys, src, now + 1), 1);
	if (keystore_changed(a.keys))
		dcache_clear(a.cache); /* what the daemon does before each check */
	f = ask_at("/eng", t, 0, now + 1);
	assert_int_equal(status_of(f), 401);
	json_decref(f);
	write_jwks(1);
	assert_int_equal(keysource_refresh(a.keys, src, now + 2), 1);
	assert_true(keystore_changed(a.keys));
	/* reading the same text again is no change */
	assert_int_equal(keysource_refresh(a.keys, src, now + 3), 1);
	assert_false(keystore_changed(a.keys));
	free(t);
}

static void test_groups_and_headers(void **state)
{
	char *t = token("d\xc3\xa9nis, jr", json_string("eng"), now + 3600);
	json_t *f, *set;

	(void)state;
	f = ask_at("/eng", t, 0, now);
	assert_int_equal(status_of(f), 200); /* one group as a string counts */
	set = json_object_get(f, "set");
	assert_string_equal(json_string_value(json_object_get(set, "X-P2P-User")), "d%C3%A9nis%2C%20jr");
	assert_string_equal(json_string_value(json_object_get(set, "X-P2P-Groups")), "eng");
	assert_string_equal(json_string_value(json_object_get(json_object_get(f, "identity"), "user")),
			    "d\xc3\xa9nis, jr");
	json_decref(f);
	free(t);
	t = token("eve", json_pack("[s,s,i]", "a,b", "c%d", 7), now + 3600);
	f = ask_at("/", t, 0, now);
	assert_string_equal(json_string_value(json_object_get(json_object_get(f, "set"), "X-P2P-Groups")),
			    "a%2Cb,c%25d");
	json_decref(f);
	free(t);
}

static void test_assertion(void **state)
{
	char *t = token("alice", json_pack("[s]", "eng"), now + 3600);
	json_t *f = ask_at("/", t, 0, now), *jwks = signer_jwks(a.signer), *claims;
	const char *jws = json_string_value(json_object_get(json_object_get(f, "set"),
							    "X-P2P-Jwt-Assertion"));
	struct keyset *ks;
	char *text = json_dumps(jwks, JSON_COMPACT), err[200];
	json_t *aud = json_pack("[s]", "apps");
	struct jwt_params p = { .issuer = "ny", .audience = aud, .algs = ALG_ES256, .skew = 0,
				.max_len = 4096 };
	struct jwt_result r;

	(void)state;
	assert_non_null(jws);
	ks = keyset_parse(text, strlen(text), err, sizeof err);
	assert_non_null(ks);
	/* our own verifier, with the published key: ES256, iss, aud, exp */
	assert_int_equal(jwt_verify(jws, strlen(jws), &p, ks, now, &r), JWT_OK);
	claims = r.claims;
	assert_string_equal(json_string_value(json_object_get(claims, "user")), "alice");
	assert_string_equal(json_string_value(json_object_get(claims, "rule")), "apps/routes/2");
	assert_int_equal(json_integer_value(json_object_get(claims, "exp")), now + 120);
	json_decref(claims);
	/* expired after its lifetime */
	assert_int_equal(jwt_verify(jws, strlen(jws), &p, ks, now + 121, &r), JWT_INVALID);
	/* the kid is the RFC 7638 thumbprint: 43 base64url characters */
	assert_int_equal(strlen(signer_kid(a.signer)), 43);
	keyset_free(ks);
	json_decref(aud);
	free(text);
	json_decref(jwks);
	json_decref(f);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_key_removed),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_long_user),
		cmocka_unit_test(test_groups_and_headers),
		cmocka_unit_test(test_assertion),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
