/* jwt.c: a bearer token (RFC 7519, compact JWS of RFC 7515) checked against
 * a provider's key set, with the precautions of RFC 8725: the size bounded
 * before anything is parsed; "none" and HMAC never accepted; the algorithm
 * checked against the key's type before any signature code sees it; keys
 * only from the provider's own set, never from the token (jku, x5u, jwk and
 * x5c are ignored); an unknown "crit" refused; issuer, audience and the
 * validity window checked after the signature, with a bounded clock skew.
 * The reasons given never quote the token. */
#include <openssl/evp.h>
#include <cjose/cjose.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"

#define HEADER_MAX 4096      /* bytes of the encoded header */
#define SIG_MAX 1024         /* bytes of a decoded signature (RSA 8192 fits) */

static enum jwt_outcome refuse(struct jwt_result *out, enum jwt_outcome o, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum jwt_outcome refuse(struct jwt_result *out, enum jwt_outcome o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof out->reason, fmt, ap);
	va_end(ap);
	json_decref(out->claims);
	out->claims = NULL;
	return o;
}

/* Decode one base64url part into a fresh NUL-terminated buffer. */
static char *decode_part(const char *p, size_t n, size_t *outlen)
{
	char *buf = malloc(n * 3 / 4 + 2);
	long got;

	if (!buf)
		return NULL;
	got = b64url_decode(p, n, (uint8_t *)buf);
	if (got < 0) {
		free(buf);
		return NULL;
	}
	buf[got] = '\0';
	*outlen = (size_t)got;
	return buf;
}

static json_t *decode_json(const char *p, size_t n)
{
	size_t len;
	char *text = decode_part(p, n, &len);
	json_t *v;

	if (!text)
		return NULL;
	v = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	if (v && !json_is_object(v)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

/* Text safe to quote in a reason: printable ASCII, cut. */
static void quote(char *dst, size_t size, const char *src)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < size; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[i] = '\0';
}

static int verify_eddsa(const struct jwk_key *k, const char *token, size_t signed_len,
			const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (!ctx)
		return 0;
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->evp) == 1 &&
	     EVP_DigestVerify(ctx, sig, siglen, (const uint8_t *)token, signed_len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* Try each candidate key; 1 when one verifies. SIG is the decoded
 * signature, for OpenSSL; cjose decodes the token itself. */
static int verify_signature(const struct keyset *ks, const char *kid, unsigned alg,
			    const char *token, size_t len, size_t signed_len, const uint8_t *sig,
			    size_t siglen)
{
	cjose_jws_t *jws = NULL;
	int ok = 0;

	for (size_t i = 0; i < ks->n && !ok; i++) {
		const struct jwk_key *k = &ks->keys[i];
		cjose_err cerr;

		if (!(k->algs & alg) || (kid && (!k->kid || strcmp(k->kid, kid))))
			continue;
		if (k->evp) {
			ok = verify_eddsa(k, token, signed_len, sig, siglen);
			continue;
		}
		if (!jws && !(jws = cjose_jws_import(token, len, &cerr)))
			return 0;
		ok = cjose_jws_verify(jws, k->cjose, &cerr);
	}
	if (jws)
		cjose_jws_release(jws);
	return ok;
}

/* Does the key set hold a key for ALG (and KID when given)? */
static enum jwt_outcome find_key(const struct keyset *ks, const char *kid, unsigned alg,
				 struct jwt_result *out)
{
	int kid_seen = 0;

	for (size_t i = 0; i < ks->n; i++) {
		const struct jwk_key *k = &ks->keys[i];

		if (kid && (!k->kid || strcmp(k->kid, kid)))
			continue;
		kid_seen = 1;
		if (k->algs & alg)
			return JWT_OK;
	}
	if (kid && !kid_seen)
		return refuse(out, JWT_UNKNOWN_KID, "unknown kid \"%s\"", out->kid);
	if (kid)
		return refuse(out, JWT_INVALID, "key \"%s\" is not for %s", out->kid, out->alg);
	return refuse(out, JWT_INVALID, "no key for %s in the provider's key set", out->alg);
}

static int audience_matches(json_t *aud, json_t *wanted)
{
	json_t *a, *w;
	size_t i, k;

	if (json_is_string(aud)) {
		json_array_foreach(wanted, k, w)
			if (json_equal(aud, w))
				return 1;
		return 0;
	}
	json_array_foreach(aud, i, a)
		json_array_foreach(wanted, k, w)
			if (json_is_string(a) && json_equal(a, w))
				return 1;
	return 0;
}

static enum jwt_outcome check_claims(json_t *c, const struct jwt_params *p, time_t now,
				     struct jwt_result *out)
{
	json_t *iss = json_object_get(c, "iss"), *aud = json_object_get(c, "aud");
	json_t *exp = json_object_get(c, "exp"), *nbf = json_object_get(c, "nbf");
	json_t *iat = json_object_get(c, "iat");
	double t = (double)now;
	char q[64];

	if (!json_is_string(iss))
		return refuse(out, JWT_INVALID, "no \"iss\" claim");
	if (strcmp(json_string_value(iss), p->issuer)) {
		quote(q, sizeof q, json_string_value(iss));
		return refuse(out, JWT_INVALID, "issuer \"%s\" is not the provider's", q);
	}
	if (!json_is_string(aud) && !json_is_array(aud))
		return refuse(out, JWT_INVALID, "no \"aud\" claim");
	if (!audience_matches(aud, p->audience))
		return refuse(out, JWT_INVALID, "the audience is not ours");
	if (!json_is_number(exp) || !isfinite(json_number_value(exp)))
		return refuse(out, JWT_INVALID, "no \"exp\" claim");
	if (t > json_number_value(exp) + (double)p->skew)
		return refuse(out, JWT_INVALID, "expired %.0f s ago", t - json_number_value(exp));
	if (nbf && (!json_is_number(nbf) || !isfinite(json_number_value(nbf))))
		return refuse(out, JWT_INVALID, "\"nbf\" is not a number");
	if (nbf && json_number_value(nbf) - (double)p->skew > t)
		return refuse(out, JWT_INVALID, "not valid for another %.0f s",
			      json_number_value(nbf) - t);
	if (iat && (!json_is_number(iat) || !isfinite(json_number_value(iat))))
		return refuse(out, JWT_INVALID, "\"iat\" is not a number");
	if (iat && json_number_value(iat) - (double)p->skew > t)
		return refuse(out, JWT_INVALID, "issued %.0f s in the future",
			      json_number_value(iat) - t);
	return JWT_OK;
}

static enum jwt_outcome check_header(json_t *h, const struct jwt_params *p, unsigned *alg,
				     const char **kid, struct jwt_result *out)
{
	json_t *a = json_object_get(h, "alg"), *k = json_object_get(h, "kid");

	if (!json_is_string(a))
		return refuse(out, JWT_INVALID, "no \"alg\" in the header");
	quote(out->alg, sizeof out->alg, json_string_value(a));
	if (!strcasecmp(json_string_value(a), "none"))
		return refuse(out, JWT_INVALID, "alg none is refused: the token is not signed");
	if (!strncmp(json_string_value(a), "HS", 2))
		return refuse(out, JWT_INVALID, "alg %s is refused: HMAC is never accepted "
			      "(the provider's keys are public)", out->alg);
	*alg = alg_from_name(json_string_value(a));
	if (!*alg)
		return refuse(out, JWT_INVALID, "alg %s is not supported", out->alg);
	if (!(*alg & p->algs))
		return refuse(out, JWT_INVALID, "alg %s is not allowed for this provider", out->alg);
	if (json_object_get(h, "crit"))
		return refuse(out, JWT_INVALID, "\"crit\" header: no extension is understood");
	if (k && (!json_is_string(k) || json_string_length(k) == 0 || json_string_length(k) > 256))
		return refuse(out, JWT_INVALID, "\"kid\" is not a string of 1 to 256 bytes");
	*kid = k ? json_string_value(k) : NULL;
	if (k)
		quote(out->kid, sizeof out->kid, json_string_value(k));
	return JWT_OK;
}

/* The signature and payload parts, checked before cjose decodes them
 * again (its decoder aborts on some malformed base64url): the signature
 * decoded into SIG, the payload parsed into *CLAIMS, to be looked at only
 * once the signature holds. */
static enum jwt_outcome decode_rest(const char *dot1, const char *dot2, const char *end,
				    uint8_t sig[SIG_MAX], size_t *siglen, json_t **claims,
				    struct jwt_result *out)
{
	long n = -1;

	if (dot2 + 1 == end)
		return refuse(out, JWT_INVALID, "no signature");
	/* unpadded base64url of SIG_MAX bytes: at most ceil(SIG_MAX * 4 / 3)
	 * characters, which decode to at most SIG_MAX bytes */
	if ((size_t)(end - dot2 - 1) <= (SIG_MAX * 4 + 2) / 3)
		n = b64url_decode(dot2 + 1, (size_t)(end - dot2 - 1), sig);
	if (n <= 0)
		return refuse(out, JWT_INVALID, "malformed token (signature is not base64url)");
	*siglen = (size_t)n;
	*claims = decode_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (!*claims)
		return refuse(out, JWT_INVALID,
			      "malformed token (payload is not a base64url JSON object)");
	return JWT_OK;
}

enum jwt_outcome jwt_verify(const char *token, size_t len, const struct jwt_params *p,
			    const struct keyset *ks, time_t now, struct jwt_result *out)
{
	const char *dot1, *dot2, *kid = NULL;
	json_t *header, *claims = NULL;
	enum jwt_outcome o;
	uint8_t sig[SIG_MAX];
	size_t siglen = 0;
	unsigned alg = 0;

	memset(out, 0, sizeof *out);
	if (len == 0)
		return refuse(out, JWT_INVALID, "empty token");
	if (len > p->max_len)
		return refuse(out, JWT_INVALID, "token of %zu bytes is over the limit of %zu", len,
			      p->max_len);
	if (memchr(token, '\0', len))
		return refuse(out, JWT_INVALID, "malformed token (NUL byte)");
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
		return refuse(out, JWT_INVALID, "malformed token (not three parts: a JWE or garbage)");
	if (dot1 == token || dot2 == dot1 + 1)
		return refuse(out, JWT_INVALID, "malformed token (an empty part)");
	if ((size_t)(dot1 - token) > HEADER_MAX)
		return refuse(out, JWT_INVALID, "malformed token (header too long)");
	header = decode_json(token, (size_t)(dot1 - token));
	if (!header)
		return refuse(out, JWT_INVALID, "malformed token (header is not base64url JSON)");
	o = check_header(header, p, &alg, &kid, out);
	if (o == JWT_OK)
		o = decode_rest(dot1, dot2, token + len, sig, &siglen, &claims, out);
	if (o == JWT_OK)
		o = find_key(ks, kid, alg, out);
	if (o == JWT_OK && !verify_signature(ks, kid, alg, token, len, (size_t)(dot2 - token), sig,
					     siglen))
		o = refuse(out, JWT_INVALID, "the signature does not verify");
	json_decref(header);
	if (o != JWT_OK) {
		json_decref(claims);
		return o;
	}
	out->claims = claims;
	return check_claims(claims, p, now, out);
}
