/* keyset.c: a JWKS (RFC 7517) turned into verification keys, each with the
 * algorithms its type allows (RFC 7518, RFC 8037). Keys that are not for
 * signatures are skipped; a key set that publishes private key material,
 * or keys too weak to trust, is refused whole: it is the wrong file. RSA
 * and EC keys go to cjose; Ed25519 and Ed448 (which cjose 0.6 does not
 * know) to OpenSSL directly. */
#include <openssl/evp.h>
#include <cjose/cjose.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"

#define RSA_MIN_BITS 2048

static void say(char *err, size_t errsize, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
}

void keyset_free(struct keyset *ks)
{
	if (!ks)
		return;
	for (size_t i = 0; i < ks->n; i++) {
		free(ks->keys[i].kid);
		if (ks->keys[i].cjose)
			cjose_jwk_release(ks->keys[i].cjose);
		EVP_PKEY_free(ks->keys[i].evp);
	}
	free(ks->keys);
	free(ks);
}

static const char *str(json_t *key, const char *member)
{
	return json_string_value(json_object_get(key, member));
}

/* Is this key meant for verifying signatures? ("use" and "key_ops" are
 * optional; when present they must say so.) */
static int for_signatures(json_t *key)
{
	json_t *ops = json_object_get(key, "key_ops"), *e;
	size_t i;

	if (json_object_get(key, "use") && (!str(key, "use") || strcmp(str(key, "use"), "sig")))
		return 0;
	if (!ops)
		return 1;
	json_array_foreach(ops, i, e)
		if (json_is_string(e) && !strcmp(json_string_value(e), "verify"))
			return 1;
	return 0;
}

/* Is TEXT strict base64url of at most MAX characters? cjose 0.6.2 aborts
 * (an assert in its decoder) on a length of 1 modulo 4, so nothing reaches
 * it unchecked. */
static int good_b64url(const char *text, size_t max)
{
	size_t n = strlen(text);
	uint8_t *buf;
	long got;

	if (n == 0 || n > max || !(buf = malloc(n)))
		return 0;
	got = b64url_decode(text, n, buf);
	free(buf);
	return got > 0;
}

/* A public copy of KEY with only the members cjose needs. */
static cjose_jwk_t *import_cjose(json_t *key, const char *const *members, char *err,
				 size_t errsize)
{
	json_t *pub = json_object();
	cjose_jwk_t *jwk;
	cjose_err cerr;
	char *text;

	for (size_t i = 0; members[i]; i++) {
		json_t *v = json_object_get(key, members[i]);

		if (!json_is_string(v)) {
			say(err, errsize, "\"%s\" missing or not a string", members[i]);
			json_decref(pub);
			return NULL;
		}
		if (strcmp(members[i], "kty") && strcmp(members[i], "crv") &&
		    !good_b64url(json_string_value(v), 4096)) {
			say(err, errsize, "\"%s\" is not base64url", members[i]);
			json_decref(pub);
			return NULL;
		}
		json_object_set(pub, members[i], v);
	}
	text = json_dumps(pub, JSON_COMPACT);
	json_decref(pub);
	if (!text) {
		say(err, errsize, "out of memory");
		return NULL;
	}
	jwk = cjose_jwk_import(text, strlen(text), &cerr);
	free(text);
	if (!jwk)
		say(err, errsize, "not a valid key (cjose: %s)", cerr.message);
	return jwk;
}

static int load_rsa(json_t *key, struct jwk_key *k, char *err, size_t errsize)
{
	static const char *const members[] = { "kty", "n", "e", NULL };
	cjose_err cerr;
	size_t bits;

	k->cjose = import_cjose(key, members, err, errsize);
	if (!k->cjose)
		return -1;
	bits = cjose_jwk_get_keysize(k->cjose, &cerr);
	if (bits < RSA_MIN_BITS) {
		say(err, errsize, "a %zu-bit RSA key is too weak (at least %d)", bits, RSA_MIN_BITS);
		return -1;
	}
	k->algs = ALG_RS256 | ALG_RS384 | ALG_RS512 | ALG_PS256 | ALG_PS384 | ALG_PS512;
	return 0;
}

static int load_ec(json_t *key, struct jwk_key *k, char *err, size_t errsize)
{
	static const char *const members[] = { "kty", "crv", "x", "y", NULL };
	const char *crv = str(key, "crv");

	if (!crv) {
		say(err, errsize, "\"crv\" missing or not a string");
		return -1;
	}
	if (!strcmp(crv, "P-256"))
		k->algs = ALG_ES256;
	else if (!strcmp(crv, "P-384"))
		k->algs = ALG_ES384;
	else if (!strcmp(crv, "P-521"))
		k->algs = ALG_ES512;
	else
		return 1; /* a curve we do not verify with (secp256k1...): skipped */
	k->cjose = import_cjose(key, members, err, errsize);
	return k->cjose ? 0 : -1;
}

static int load_okp(json_t *key, struct jwk_key *k, char *err, size_t errsize)
{
	const char *crv = str(key, "crv"), *x = str(key, "x");
	uint8_t raw[64];
	size_t want;
	long n;
	int type;

	if (!crv || !x) {
		say(err, errsize, "\"crv\" or \"x\" missing or not a string");
		return -1;
	}
	if (!strcmp(crv, "Ed25519"))
		type = EVP_PKEY_ED25519, want = 32;
	else if (!strcmp(crv, "Ed448"))
		type = EVP_PKEY_ED448, want = 57;
	else
		return 1; /* X25519 and X448 are for key agreement: skipped */
	if (strlen(x) > 80 || (n = b64url_decode(x, strlen(x), raw)) < 0 || (size_t)n != want) {
		say(err, errsize, "\"x\" is not a %s public key in base64url", crv);
		return -1;
	}
	k->evp = EVP_PKEY_new_raw_public_key(type, NULL, raw, want);
	if (!k->evp) {
		say(err, errsize, "OpenSSL refused the %s key", crv);
		return -1;
	}
	k->algs = ALG_EDDSA;
	return 0;
}

/* 0: loaded into K; 1: skipped (not for signatures, or a type we do not
 * verify with); -1: the set is refused, ERR says why. */
static int load_key(json_t *key, struct jwk_key *k, char *err, size_t errsize)
{
	static const char *const private_members[] = { "d", "p", "q", "dp", "dq", "qi", "k", NULL };
	const char *kty = str(key, "kty"), *alg = str(key, "alg"), *kid;
	int rc;

	if (!json_is_object(key)) {
		say(err, errsize, "not an object");
		return -1;
	}
	if (!kty) {
		say(err, errsize, "\"kty\" missing or not a string");
		return -1;
	}
	for (size_t i = 0; private_members[i]; i++)
		if (json_object_get(key, private_members[i]) && strcmp(kty, "oct") != 0) {
			say(err, errsize, "has the private member \"%s\": publish only public keys",
			    private_members[i]);
			return -1;
		}
	if (!for_signatures(key) || !strcmp(kty, "oct"))
		return 1; /* encryption keys; and never HMAC secrets */
	if (json_object_get(key, "kid") && !json_is_string(json_object_get(key, "kid"))) {
		say(err, errsize, "\"kid\" is not a string");
		return -1;
	}
	if (!strcmp(kty, "RSA"))
		rc = load_rsa(key, k, err, errsize);
	else if (!strcmp(kty, "EC"))
		rc = load_ec(key, k, err, errsize);
	else if (!strcmp(kty, "OKP"))
		rc = load_okp(key, k, err, errsize);
	else
		return 1;
	if (rc != 0)
		return rc;
	/* A key that names its algorithm verifies with that one only; one
	 * that names another (RSA-OAEP on a key without "use", an algorithm
	 * we do not verify) is not one of ours: skipped, as an encryption key
	 * is, not a reason to refuse the whole set (and keep the old one,
	 * keys rotated out included). */
	if (alg) {
		unsigned bit = alg_from_name(alg);

		if (!(bit & k->algs))
			return 1;
		k->algs = bit;
	}
	kid = str(key, "kid");
	if (kid && !(k->kid = strdup(kid))) {
		say(err, errsize, "out of memory");
		return -1;
	}
	return 0;
}

struct keyset *keyset_parse(const char *text, size_t len, char *err, size_t errsize)
{
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), *keys, *key;
	struct keyset *ks;
	size_t i;

	if (!doc) {
		say(err, errsize, "%d:%d: %s", jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	keys = json_object_get(doc, "keys");
	if (!json_is_array(keys)) {
		say(err, errsize, "not a JWKS: no \"keys\" array");
		json_decref(doc);
		return NULL;
	}
	if (json_array_size(keys) > JWKS_KEYS_MAX) {
		say(err, errsize, "more than %d keys", JWKS_KEYS_MAX);
		json_decref(doc);
		return NULL;
	}
	ks = calloc(1, sizeof *ks);
	if (!ks || !(ks->keys = calloc(json_array_size(keys) + 1, sizeof *ks->keys))) {
		free(ks);
		json_decref(doc);
		say(err, errsize, "out of memory");
		return NULL;
	}
	json_array_foreach(keys, i, key) {
		char why[200];
		struct jwk_key *k = &ks->keys[ks->n];
		int rc = load_key(key, k, why, sizeof why);

		if (rc == 0) {
			ks->n++;
			continue;
		}
		if (k->cjose)
			cjose_jwk_release(k->cjose);
		EVP_PKEY_free(k->evp);
		free(k->kid);
		memset(k, 0, sizeof *k);
		if (rc > 0) {
			ks->skipped++;
			continue;
		}
		say(err, errsize, ".keys[%zu]: %s", i, why);
		json_decref(doc);
		keyset_free(ks);
		return NULL;
	}
	json_decref(doc);
	if (ks->n == 0) {
		say(err, errsize, "no signature verification key (%zu skipped)", ks->skipped);
		keyset_free(ks);
		return NULL;
	}
	return ks;
}
