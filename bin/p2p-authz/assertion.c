/* assertion.c: the connector's signing key and the identity assertion it
 * signs for the upstream: a short-lived ES256 JWT in X-P2P-Jwt-Assertion,
 * verifiable with the public key the jwks op publishes (the way Cloudflare
 * Access, Pomerium and Teleport hand identity to an application). The key
 * is a P-256 key in a PEM file, made on first start when missing; it is
 * never logged, only its thumbprint (RFC 7638), which is the kid. */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <cjose/cjose.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authz.h"
#include "file.h"
#include "key.h"

struct signer {
	cjose_jwk_t *jwk;
	char x[48], y[48];     /* base64url coordinates */
	char kid[48];
};

static void say(char *err, size_t errsize, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
}

static int bn_param(EVP_PKEY *pkey, const char *name, uint8_t out[32])
{
	BIGNUM *bn = NULL;
	int ok = EVP_PKEY_get_bn_param(pkey, name, &bn) && BN_bn2binpad(bn, out, 32) == 32;

	BN_clear_free(bn);
	return ok ? 0 : -1;
}

/* SHA-256 of the required members in lexical order, base64url. */
static void thumbprint(struct signer *s)
{
	char json[200];
	uint8_t digest[SHA256_DIGEST_LENGTH];

	snprintf(json, sizeof json, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
		 s->x, s->y);
	SHA256((const uint8_t *)json, strlen(json), digest);
	b64url_encode(digest, sizeof digest, s->kid);
}

static struct signer *from_pkey(EVP_PKEY *pkey, char *err, size_t errsize)
{
	char group[32];
	size_t glen;
	uint8_t d[32], x[32], y[32];
	cjose_jwk_ec_keyspec spec;
	struct signer *s;
	cjose_err cerr;

	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
	    !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
					    &glen) ||
	    strcmp(group, "prime256v1") != 0) {
		say(err, errsize, "not an EC P-256 key (ES256 needs one)");
		return NULL;
	}
	if (bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, d) < 0 ||
	    bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, x) < 0 ||
	    bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, y) < 0) {
		key_wipe(d, sizeof d);
		say(err, errsize, "unable to read the key's parameters");
		return NULL;
	}
	s = calloc(1, sizeof *s);
	if (!s) {
		key_wipe(d, sizeof d);
		say(err, errsize, "out of memory");
		return NULL;
	}
	memset(&spec, 0, sizeof spec);
	spec.crv = CJOSE_JWK_EC_P_256;
	spec.d = d;
	spec.dlen = sizeof d;
	spec.x = x;
	spec.xlen = sizeof x;
	spec.y = y;
	spec.ylen = sizeof y;
	s->jwk = cjose_jwk_create_EC_spec(&spec, &cerr);
	key_wipe(d, sizeof d);
	if (!s->jwk) {
		say(err, errsize, "cjose refused the key: %s", cerr.message);
		free(s);
		return NULL;
	}
	b64url_encode(x, sizeof x, s->x);
	b64url_encode(y, sizeof y, s->y);
	thumbprint(s);
	return s;
}

struct signer *signer_generate(char *err, size_t errsize)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct signer *s;

	if (!pkey) {
		say(err, errsize, "unable to make a P-256 key");
		return NULL;
	}
	s = from_pkey(pkey, err, errsize);
	EVP_PKEY_free(pkey);
	return s;
}

/* Make a key and write it to PATH (0600, atomically). */
static int create_key(const char *path, char *err, size_t errsize)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem;
	long len;
	int rc = -1;

	if (!pkey || !bio || !PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)) {
		say(err, errsize, "unable to make a P-256 key");
		goto out;
	}
	len = BIO_get_mem_data(bio, &pem);
	if (file_replace(path, pem, (size_t)len, 0600) < 0) {
		say(err, errsize, "unable to write %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	BIO_free(bio); /* BIO_s_mem frees (not wipes) its buffer; the key is on disk anyway */
	EVP_PKEY_free(pkey);
	return rc;
}

struct signer *signer_load(const char *path, int create, char *err, size_t errsize)
{
	FILE *f = fopen(path, "re");
	EVP_PKEY *pkey;
	struct signer *s;
	char why[200];

	if (!f && errno == ENOENT && create) {
		if (create_key(path, err, errsize) < 0)
			return NULL;
		f = fopen(path, "re");
	}
	if (!f) {
		say(err, errsize, "unable to read %s: %s", path, strerror(errno));
		return NULL;
	}
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!pkey) {
		say(err, errsize, "%s: not a PEM private key", path);
		return NULL;
	}
	s = from_pkey(pkey, why, sizeof why);
	EVP_PKEY_free(pkey);
	if (!s)
		say(err, errsize, "%s: %s", path, why);
	return s;
}

void signer_free(struct signer *s)
{
	if (!s)
		return;
	cjose_jwk_release(s->jwk);
	free(s);
}

const char *signer_kid(const struct signer *s)
{
	return s->kid;
}

json_t *signer_jwks(const struct signer *s)
{
	return json_pack("{s:[{s:s,s:s,s:s,s:s,s:s,s:s,s:s}]}", "keys", "kty", "EC", "crv", "P-256",
			 "x", s->x, "y", s->y, "kid", s->kid, "alg", "ES256", "use", "sig");
}

char *signer_sign(const struct signer *s, json_t *claims)
{
	json_t *header = json_pack("{s:s,s:s,s:s}", "alg", "ES256", "kid", s->kid, "typ", "JWT");
	char *payload = json_dumps(claims, JSON_COMPACT), *out = NULL;
	const char *compact;
	cjose_jws_t *jws;
	cjose_err cerr;

	if (!header || !payload)
		goto done;
	jws = cjose_jws_sign(s->jwk, (cjose_header_t *)header, (const uint8_t *)payload,
			     strlen(payload), &cerr);
	if (!jws)
		goto done;
	if (cjose_jws_export(jws, &compact, &cerr))
		out = strdup(compact);
	cjose_jws_release(jws);
done:
	json_decref(header);
	free(payload);
	return out;
}
