/* authz-tokens.h: keys, JWKS and signed tokens for p2p-authz's unit tests,
 * made with OpenSSL directly (not with cjose, which p2p-authz verifies
 * with), so a mistake shared by signer and verifier cannot hide. Included by
 * tests/unit/test-authz-*.c after authz.h. */
#ifndef AUTHZ_TOKENS_H
#define AUTHZ_TOKENS_H

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum tkind { T_RSA, T_EC256, T_EC384, T_ED25519 };

struct tkey {
	enum tkind kind;
	EVP_PKEY *pkey;
	char kid[32];
};

static inline EVP_PKEY *tk_gen(enum tkind kind, int rsa_bits)
{
	switch (kind) {
	case T_RSA: return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)rsa_bits);
	case T_EC256: return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	case T_EC384: return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	case T_ED25519: return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	}
	return NULL;
}

static inline void tk_init(struct tkey *k, enum tkind kind, const char *kid, int rsa_bits)
{
	k->kind = kind;
	k->pkey = tk_gen(kind, rsa_bits ? rsa_bits : 2048);
	if (!k->pkey)
		abort();
	snprintf(k->kid, sizeof k->kid, "%s", kid);
}

static inline char *tk_b64(const void *data, size_t len)
{
	char *out = malloc(len * 4 / 3 + 4);

	b64url_encode(data, len, out);
	return out;
}

static inline char *tk_bn_b64(EVP_PKEY *p, const char *name, size_t pad)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1024];
	int n;

	if (!EVP_PKEY_get_bn_param(p, name, &bn))
		abort();
	n = pad ? BN_bn2binpad(bn, buf, (int)pad) : BN_bn2bin(bn, buf);
	BN_free(bn);
	return tk_b64(buf, (size_t)n);
}

/* The public JWK of K (a new JSON object), with EXTRA members merged. */
static inline json_t *tk_jwk(const struct tkey *k)
{
	json_t *j;

	if (k->kind == T_RSA) {
		char *n = tk_bn_b64(k->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
		char *e = tk_bn_b64(k->pkey, OSSL_PKEY_PARAM_RSA_E, 0);

		j = json_pack("{s:s,s:s,s:s,s:s}", "kty", "RSA", "kid", k->kid, "n", n, "e", e);
		free(n);
		free(e);
	} else if (k->kind == T_ED25519) {
		unsigned char raw[32];
		size_t len = sizeof raw;
		char *x;

		EVP_PKEY_get_raw_public_key(k->pkey, raw, &len);
		x = tk_b64(raw, len);
		j = json_pack("{s:s,s:s,s:s,s:s}", "kty", "OKP", "crv", "Ed25519", "kid", k->kid,
			      "x", x);
		free(x);
	} else {
		size_t sz = k->kind == T_EC256 ? 32 : 48;
		char *x = tk_bn_b64(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, sz);
		char *y = tk_bn_b64(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, sz);

		j = json_pack("{s:s,s:s,s:s,s:s,s:s}", "kty", "EC", "crv",
			      k->kind == T_EC256 ? "P-256" : "P-384", "kid", k->kid, "x", x, "y", y);
		free(x);
		free(y);
	}
	return j;
}

/* {"keys":[...]} of N keys, as text (caller frees). */
static inline char *tk_jwks(struct tkey **keys, size_t n)
{
	json_t *arr = json_array(), *doc;
	char *text;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, tk_jwk(keys[i]));
	doc = json_pack("{s:o}", "keys", arr);
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return text;
}

/* The signature of DATA with K for ALG ("RS256", "PS256", "ES256",
 * "ES384", "EdDSA"), base64url (caller frees). */
static inline char *tk_signature(const struct tkey *k, const char *alg, const char *data)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md = NULL;
	unsigned char sig[1024];
	size_t siglen = sizeof sig;
	char *out;

	if (!strcmp(alg + 2, "256"))
		md = EVP_sha256();
	else if (!strcmp(alg + 2, "384"))
		md = EVP_sha384();
	else if (!strcmp(alg + 2, "512"))
		md = EVP_sha512();
	if (EVP_DigestSignInit(ctx, &pctx, md, NULL, k->pkey) != 1)
		abort();
	if (alg[0] == 'P' &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		abort();
	if (EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)data, strlen(data)) != 1)
		abort();
	EVP_MD_CTX_free(ctx);
	if (alg[0] == 'E' && alg[1] == 'S') { /* DER -> r || s */
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
		size_t half = k->kind == T_EC256 ? 32 : 48;
		unsigned char rs[96];

		if (!es)
			abort();
		BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, (int)half);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + half, (int)half);
		ECDSA_SIG_free(es);
		return tk_b64(rs, 2 * half);
	}
	out = tk_b64(sig, siglen);
	return out;
}

/* HEADER and CLAIMS (JSON text) signed with K for ALG; K NULL leaves the
 * signature empty. Caller frees. */
static inline char *tk_token_raw(const struct tkey *k, const char *alg, const char *header,
			  const char *claims)
{
	char *h = tk_b64(header, strlen(header)), *c = tk_b64(claims, strlen(claims));
	size_t n = strlen(h) + strlen(c) + 2;
	char *input = malloc(n), *sig, *tok;

	snprintf(input, n, "%s.%s", h, c);
	sig = k ? tk_signature(k, alg, input) : strdup("");
	tok = malloc(n + strlen(sig) + 1);
	sprintf(tok, "%s.%s", input, sig);
	free(h);
	free(c);
	free(input);
	free(sig);
	return tok;
}

/* A token for ALG with K's kid and CLAIMS (a JSON object, stolen). */
static inline char *tk_token(const struct tkey *k, const char *alg, json_t *claims)
{
	char header[128], *c = json_dumps(claims, JSON_COMPACT), *tok;

	snprintf(header, sizeof header, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg,
		 k->kid);
	tok = tk_token_raw(k, alg, header, c);
	free(c);
	json_decref(claims);
	return tok;
}

/* The classic confusion attack: HS256 with the RSA public key (PEM) as the
 * HMAC secret. */
static inline char *tk_token_hs256_with_public(const struct tkey *k, json_t *claims)
{
	char header[128], *c = json_dumps(claims, JSON_COMPACT);
	char *h, *cc, *input, *tok, *sig;
	unsigned char mac[32];
	unsigned int maclen = sizeof mac;
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem;
	long pemlen;

	snprintf(header, sizeof header, "{\"alg\":\"HS256\",\"kid\":\"%s\"}", k->kid);
	PEM_write_bio_PUBKEY(bio, k->pkey);
	pemlen = BIO_get_mem_data(bio, &pem);
	h = tk_b64(header, strlen(header));
	cc = tk_b64(c, strlen(c));
	input = malloc(strlen(h) + strlen(cc) + 2);
	sprintf(input, "%s.%s", h, cc);
	HMAC(EVP_sha256(), pem, (int)pemlen, (unsigned char *)input, strlen(input), mac, &maclen);
	sig = tk_b64(mac, maclen);
	tok = malloc(strlen(input) + strlen(sig) + 2);
	sprintf(tok, "%s.%s", input, sig);
	BIO_free(bio);
	free(h);
	free(cc);
	free(input);
	free(sig);
	free(c);
	json_decref(claims);
	return tok;
}

#endif
