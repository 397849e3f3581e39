/* test: p2p-authz */
/* test-authz-jwt.c: token verification in p2p-authz against key sets made
 * here with OpenSSL: good tokens of every algorithm family, and each bad
 * token the issue lists (alg none, HS256 keyed with the RSA public key,
 * unknown kid, expired, not yet valid, wrong issuer, wrong audience,
 * truncated, base64 garbage, 100 KiB), all refused without a crash; what
 * cjose itself does with alg none and HS256 on an RSA key; and the key set
 * parser's refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjose/cjose.h>
#include <time.h>

#include "authz.h"
#include "authz-tokens.h"

#define NOW ((time_t)1800000000)
#define ISS "https://idp.test"

static struct tkey rsa, ec256, ec384, ed, other_rsa;
static struct keyset *ks;
static json_t *audience;

static struct jwt_params params(void)
{
	struct jwt_params p = {
		.issuer = ISS, .audience = audience, .algs = ALG_ALL, .skew = 60,
		.max_len = TOKEN_MAX_DEFAULT,
	};
	return p;
}

static json_t *claims(const char *sub)
{
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:[s]}", "iss", ISS, "aud", "p2p", "sub", sub,
			 "exp", (json_int_t)NOW + 600, "iat", (json_int_t)NOW - 10, "groups", "eng");
}

static int setup(void **state)
{
	struct tkey *all[] = { &rsa, &ec256, &ec384, &ed };
	char err[200], *text;

	(void)state;
	tk_init(&rsa, T_RSA, "rsa1", 2048);
	tk_init(&ec256, T_EC256, "ec256", 0);
	tk_init(&ec384, T_EC384, "ec384", 0);
	tk_init(&ed, T_ED25519, "ed1", 0);
	tk_init(&other_rsa, T_RSA, "rsa1", 2048); /* same kid, another key */
	text = tk_jwks(all, 4);
	ks = keyset_parse(text, strlen(text), err, sizeof err);
	free(text);
	if (!ks)
		fail_msg("key set refused: %s", err);
	audience = json_pack("[s]", "p2p");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	keyset_free(ks);
	json_decref(audience);
	EVP_PKEY_free(rsa.pkey);
	EVP_PKEY_free(ec256.pkey);
	EVP_PKEY_free(ec384.pkey);
	EVP_PKEY_free(ed.pkey);
	EVP_PKEY_free(other_rsa.pkey);
	return 0;
}

/* Verify TOKEN (freed) and check the outcome and, for a refusal, that the
 * reason holds WHY. */
static void expect(char *token, enum jwt_outcome want, const char *why)
{
	struct jwt_params p = params();
	struct jwt_result r;
	enum jwt_outcome got = jwt_verify(token, strlen(token), &p, ks, NOW, &r);

	if (got != want)
		fail_msg("outcome %d, want %d (%s)", got, want, r.reason);
	if (want == JWT_OK) {
		assert_non_null(r.claims);
		assert_string_equal(json_string_value(json_object_get(r.claims, "iss")), ISS);
	} else {
		assert_null(r.claims);
		if (!strstr(r.reason, why))
			fail_msg("reason \"%s\" lacks \"%s\"", r.reason, why);
	}
	json_decref(r.claims);
	free(token);
}

static void test_good_tokens(void **state)
{
	json_t *c;

	(void)state;
	expect(tk_token(&rsa, "RS256", claims("alice")), JWT_OK, NULL);
	expect(tk_token(&rsa, "RS384", claims("alice")), JWT_OK, NULL);
	expect(tk_token(&rsa, "RS512", claims("alice")), JWT_OK, NULL);
	expect(tk_token(&rsa, "PS256", claims("alice")), JWT_OK, NULL);
	expect(tk_token(&ec256, "ES256", claims("alice")), JWT_OK, NULL);
	expect(tk_token(&ec384, "ES384", claims("alice")), JWT_OK, NULL);
	expect(tk_token(&ed, "EdDSA", claims("alice")), JWT_OK, NULL);
	/* aud as an array holding ours */
	c = claims("alice");
	json_object_set_new(c, "aud", json_pack("[s,s]", "else", "p2p"));
	expect(tk_token(&rsa, "RS256", c), JWT_OK, NULL);
	/* expired, but within the allowed skew */
	c = claims("alice");
	json_object_set_new(c, "exp", json_integer(NOW - 30));
	expect(tk_token(&ec256, "ES256", c), JWT_OK, NULL);
	/* nbf a little ahead: within the skew */
	c = claims("alice");
	json_object_set_new(c, "nbf", json_integer(NOW + 30));
	expect(tk_token(&ec256, "ES256", c), JWT_OK, NULL);
	/* no kid: the one key that fits the algorithm */
	c = claims("alice");
	{
		char *cl = json_dumps(c, JSON_COMPACT);

		expect(tk_token_raw(&ec256, "ES256", "{\"alg\":\"ES256\"}", cl), JWT_OK, NULL);
		free(cl);
	}
	json_decref(c);
}

static void test_bad_tokens(void **state)
{
	json_t *c = claims("mallory");
	char *t, *cl = json_dumps(c, JSON_COMPACT);

	(void)state;
	json_decref(c);
	/* alg none, with and without a signature part */
	expect(tk_token_raw(NULL, "none", "{\"alg\":\"none\",\"kid\":\"rsa1\"}", cl), JWT_INVALID,
	       "alg none is refused");
	expect(tk_token_raw(NULL, "none", "{\"alg\":\"NONE\"}", cl), JWT_INVALID, "alg none");
	/* HS256 keyed with the RSA public key */
	expect(tk_token_hs256_with_public(&rsa, claims("mallory")), JWT_INVALID, "HMAC");
	/* unknown kid: a key id the set does not have */
	expect(tk_token_raw(&rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa9\"}", cl),
	       JWT_UNKNOWN_KID, "unknown kid \"rsa9\"");
	/* the right kid but another key: the signature does not verify */
	expect(tk_token(&other_rsa, "RS256", claims("mallory")), JWT_INVALID,
	       "signature does not verify");
	/* an ES256 header naming the RSA key: the type does not fit */
	expect(tk_token_raw(&ec256, "ES256", "{\"alg\":\"ES256\",\"kid\":\"rsa1\"}", cl), JWT_INVALID,
	       "key \"rsa1\" is not for ES256");
	/* expired beyond the skew */
	c = claims("alice");
	json_object_set_new(c, "exp", json_integer(NOW - 61));
	expect(tk_token(&rsa, "RS256", c), JWT_INVALID, "expired 61 s ago");
	/* not yet valid */
	c = claims("alice");
	json_object_set_new(c, "nbf", json_integer(NOW + 3600));
	expect(tk_token(&rsa, "RS256", c), JWT_INVALID, "not valid for another 3600 s");
	c = claims("alice");
	json_object_set_new(c, "iat", json_integer(NOW + 3600));
	expect(tk_token(&rsa, "RS256", c), JWT_INVALID, "issued 3600 s in the future");
	/* no exp at all */
	c = claims("alice");
	json_object_del(c, "exp");
	expect(tk_token(&rsa, "RS256", c), JWT_INVALID, "no \"exp\"");
	c = claims("alice");
	json_object_set_new(c, "exp", json_string("tomorrow"));
	expect(tk_token(&rsa, "RS256", c), JWT_INVALID, "no \"exp\"");
	/* wrong issuer, wrong audience, none */
	c = claims("alice");
	json_object_set_new(c, "iss", json_string("https://evil.test"));
	expect(tk_token(&rsa, "RS256", c), JWT_INVALID, "issuer \"https://evil.test\"");
	c = claims("alice");
	json_object_set_new(c, "aud", json_string("someone-else"));
	expect(tk_token(&rsa, "RS256", c), JWT_INVALID, "audience");
	c = claims("alice");
	json_object_set_new(c, "aud", json_pack("[s,i]", "x", 1));
	expect(tk_token(&rsa, "RS256", c), JWT_INVALID, "audience");
	c = claims("alice");
	json_object_del(c, "aud");
	expect(tk_token(&rsa, "RS256", c), JWT_INVALID, "no \"aud\"");
	/* truncated: the signature cut short, and the token cut in the middle */
	t = tk_token(&rsa, "RS256", claims("alice"));
	t[strlen(t) - 10] = '\0';
	expect(t, JWT_INVALID, "signature");
	t = tk_token(&rsa, "RS256", claims("alice"));
	t[strlen(t) / 3] = '\0';
	expect(t, JWT_INVALID, "malformed");
	t = tk_token(&ed, "EdDSA", claims("alice"));
	t[strlen(t) - 4] = '\0';
	expect(t, JWT_INVALID, "signature");
	/* base64 garbage */
	expect(strdup("!!!.@@@.###"), JWT_INVALID, "malformed");
	expect(strdup("eyJhbGciOiJSUzI1NiJ9"), JWT_INVALID, "malformed");
	expect(strdup("a.b.c.d.e"), JWT_INVALID, "malformed");
	expect(strdup(".."), JWT_INVALID, "malformed");
	expect(strdup("e30.e30.e30"), JWT_INVALID, "no \"alg\"");          /* {} header */
	expect(strdup("W10.e30.e30"), JWT_INVALID, "malformed");           /* [] header */
	expect(strdup(""), JWT_INVALID, "empty token");
	/* base64url of a length cjose 0.6.2 aborts on (1 modulo 4), in the
	 * signature and in the payload: refused before cjose sees them */
	t = tk_token(&rsa, "RS256", claims("alice"));
	strcpy(strrchr(t, '.') + 1, "AAAAA");
	expect(t, JWT_INVALID, "signature is not base64url");
	t = tk_token(&rsa, "RS256", claims("alice"));
	{
		char *dot2 = strrchr(t, '.');
		char *withA = malloc(strlen(t) + 2);

		sprintf(withA, "%.*sA%s", (int)(dot2 - t), t, dot2);
		free(t);
		expect(withA, JWT_INVALID, "payload is not");
	}
	/* a 100 KiB token, refused by its size before any parsing */
	t = malloc(100 * 1024 + 1);
	memset(t, 'A', 100 * 1024);
	t[100 * 1024] = '\0';
	t[10] = '.';
	t[20] = '.';
	expect(t, JWT_INVALID, "over the limit of 16384");
	/* a payload that was changed after signing */
	t = tk_token(&ec256, "ES256", claims("alice"));
	{
		char *dot1 = strchr(t, '.'), *evil = tk_b64(cl, strlen(cl)), *dot2 = strchr(dot1 + 1, '.');
		char *forged = malloc(strlen(t) + strlen(evil) + 2);

		*dot1 = '\0';
		sprintf(forged, "%s.%s%s", t, evil, dot2);
		free(evil);
		free(t);
		expect(forged, JWT_INVALID, "signature does not verify");
	}
	/* crit, unsupported algorithms, a kid of the wrong type */
	expect(tk_token_raw(&rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":[\"exp\"]}", cl),
	       JWT_INVALID, "crit");
	expect(tk_token_raw(&rsa, "RS256", "{\"alg\":\"RSA1_5\",\"kid\":\"rsa1\"}", cl), JWT_INVALID,
	       "alg RSA1_5 is not supported");
	expect(tk_token_raw(&rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":7}", cl), JWT_INVALID, "kid");
	/* a header with a member twice */
	expect(tk_token_raw(&rsa, "RS256", "{\"alg\":\"RS256\",\"alg\":\"none\"}", cl), JWT_INVALID,
	       "malformed");
	/* the key set has no key at all for the algorithm without kid */
	expect(tk_token_raw(&rsa, "RS256", "{\"alg\":\"ES512\"}", cl), JWT_INVALID,
	       "no key for ES512");
	free(cl);
}

static void test_provider_algorithms(void **state)
{
	struct jwt_params p = params();
	struct jwt_result r;
	char *t = tk_token(&rsa, "RS256", claims("alice"));

	(void)state;
	p.algs = ALG_ES256;
	assert_int_equal(jwt_verify(t, strlen(t), &p, ks, NOW, &r), JWT_INVALID);
	assert_non_null(strstr(r.reason, "not allowed for this provider"));
	p.algs = ALG_RS256;
	assert_int_equal(jwt_verify(t, strlen(t), &p, ks, NOW, &r), JWT_OK);
	json_decref(r.claims);
	p.max_len = strlen(t) - 1;
	assert_int_equal(jwt_verify(t, strlen(t), &p, ks, NOW, &r), JWT_INVALID);
	free(t);
}

/* What cjose 0.6 does on its own: we refuse these before it sees them, but
 * a cjose that accepted them would be worth knowing about. */
static void test_cjose_behaviour(void **state)
{
	json_t *jwk = tk_jwk(&rsa), *cx = claims("x");
	char *text = json_dumps(jwk, JSON_COMPACT), *cl = json_dumps(cx, JSON_COMPACT);
	char *none = tk_token_raw(NULL, "none", "{\"alg\":\"none\"}", cl);
	char *hs = tk_token_hs256_with_public(&rsa, claims("x"));
	cjose_err err;
	cjose_jwk_t *k = cjose_jwk_import(text, strlen(text), &err);
	cjose_jws_t *jws;

	(void)state;
	assert_non_null(k);
	jws = cjose_jws_import(none, strlen(none), &err);
	if (jws) { /* it parses alg none, but must not verify it */
		assert_false(cjose_jws_verify(jws, k, &err));
		cjose_jws_release(jws);
	}
	jws = cjose_jws_import(hs, strlen(hs), &err);
	assert_non_null(jws);
	assert_false(cjose_jws_verify(jws, k, &err));
	cjose_jws_release(jws);
	cjose_jwk_release(k);
	json_decref(jwk);
	json_decref(cx);
	free(text);
	free(cl);
	free(none);
	free(hs);
}

static void refused_set(const char *text, const char *why)
{
	char err[200];
	struct keyset *k = keyset_parse(text, strlen(text), err, sizeof err);

	if (k)
		fail_msg("key set accepted: %s", text);
	if (!strstr(err, why))
		fail_msg("\"%s\" lacks \"%s\"", err, why);
}

static void test_keysets(void **state)
{
	json_t *j = tk_jwk(&rsa), *doc;
	char err[200], *text;
	struct keyset *k;
	struct tkey weak;

	(void)state;
	/* private material in a published set */
	json_object_set_new(j, "d", json_string("AAAA"));
	doc = json_pack("{s:[O]}", "keys", j);
	text = json_dumps(doc, JSON_COMPACT);
	refused_set(text, "private member \"d\"");
	free(text);
	json_decref(doc);
	json_decref(j);
	/* a 1024-bit RSA key */
	tk_init(&weak, T_RSA, "weak", 1024);
	{
		struct tkey *one[] = { &weak };

		text = tk_jwks(one, 1);
		refused_set(text, "too weak");
		free(text);
	}
	EVP_PKEY_free(weak.pkey);
	/* an alg that does not fit the type, or one we do not verify with
	 * (RSA-OAEP on a key without "use"): that key is skipped, as an
	 * encryption key is; a set of it alone has no key to verify with,
	 * and next to a good key it takes nothing from the set */
	j = tk_jwk(&ec256);
	json_object_set_new(j, "alg", json_string("RS256"));
	doc = json_pack("{s:[o]}", "keys", j);
	text = json_dumps(doc, JSON_COMPACT);
	refused_set(text, "no signature verification key (1 skipped)");
	free(text);
	json_decref(doc);
	{
		char why[200];
		struct keyset *set;
		json_t *oaep = tk_jwk(&rsa);

		json_object_set_new(oaep, "alg", json_string("RSA-OAEP"));
		doc = json_pack("{s:[o,o]}", "keys", oaep, tk_jwk(&ec256));
		text = json_dumps(doc, JSON_COMPACT);
		set = keyset_parse(text, strlen(text), why, sizeof why);
		if (!set)
			fail_msg("a set with an RSA-OAEP key and a good one refused: %s", why);
		keyset_free(set);
		free(text);
		json_decref(doc);
	}
	refused_set("{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", "no signature verification key");
	refused_set("{\"keys\":[]}", "no signature verification key");
	refused_set("{\"keys\":{}}", "no \"keys\" array");
	refused_set("[1]", "no \"keys\" array");
	refused_set("{\"keys\":[1]}", ".keys[0]: not an object");
	refused_set("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}", ".keys[0]");
	refused_set("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"}]}", "not a Ed25519 public key");
	refused_set("{\"keys\":", "1:");
	/* a coordinate cjose's decoder would abort on */
	refused_set("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAAA\",\"y\":\"AAAA\"}]}",
		    "\"x\" is not base64url");
	/* encryption keys and unknown types are skipped, the rest kept; an
	 * alg on the key narrows what it verifies */
	j = tk_jwk(&rsa);
	json_object_set_new(j, "alg", json_string("PS256"));
	doc = json_pack("{s:[{s:s,s:s,s:s,s:s},{s:s},o]}", "keys",
			"kty", "RSA", "use", "enc", "n", "AQAB", "e", "AQAB", "kty", "XYZ", j);
	text = json_dumps(doc, JSON_COMPACT);
	k = keyset_parse(text, strlen(text), err, sizeof err);
	if (!k)
		fail_msg("refused: %s", err);
	assert_int_equal(k->n, 1);
	assert_int_equal(k->skipped, 2);
	assert_int_equal(k->keys[0].algs, ALG_PS256);
	{
		struct jwt_params p = params();
		struct jwt_result r;
		char *t = tk_token(&rsa, "RS256", claims("alice"));

		assert_int_equal(jwt_verify(t, strlen(t), &p, k, NOW, &r), JWT_INVALID);
		free(t);
		t = tk_token(&rsa, "PS256", claims("alice"));
		assert_int_equal(jwt_verify(t, strlen(t), &p, k, NOW, &r), JWT_OK);
		json_decref(r.claims);
		free(t);
	}
	keyset_free(k);
	free(text);
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_tokens),
		cmocka_unit_test(test_bad_tokens),
		cmocka_unit_test(test_provider_algorithms),
		cmocka_unit_test(test_cjose_behaviour),
		cmocka_unit_test(test_keysets),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
