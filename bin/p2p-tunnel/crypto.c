/* crypto.c: the primitives over OpenSSL's EVP interfaces. */
#include "crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

static EVP_MAC *hmac_alg, *blake2s_mac_alg;
static const EVP_MD *blake2s;
static EVP_CIPHER *chacha20_poly1305;

int wg_crypto_init(void)
{
	if (blake2s)
		return 0;
	blake2s = EVP_blake2s256();
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	blake2s_mac_alg = EVP_MAC_fetch(NULL, "BLAKE2SMAC", NULL);
	/* Fetched once: the legacy EVP_chacha20_poly1305() is looked up
	 * again at every initialisation. */
	chacha20_poly1305 = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
	if (!blake2s || !hmac_alg || !blake2s_mac_alg || !chacha20_poly1305) {
		blake2s = NULL;
		return -1;
	}
	return 0;
}

int wg_hash(uint8_t out[WG_HASH_LEN], const void *a, size_t alen, const void *b, size_t blen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	int ok;

	if (!ctx || wg_crypto_init() < 0) {
		EVP_MD_CTX_free(ctx);
		return -1;
	}
	ok = EVP_DigestInit_ex(ctx, blake2s, NULL) == 1 &&
	     EVP_DigestUpdate(ctx, a, alen) == 1 &&
	     (!b || EVP_DigestUpdate(ctx, b, blen) == 1) &&
	     EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == WG_HASH_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

static int run_mac(EVP_MAC *alg, const OSSL_PARAM *params, uint8_t *out, size_t outlen,
		   const uint8_t *key, size_t keylen, const void *data, size_t len)
{
	EVP_MAC_CTX *ctx;
	size_t n = 0;
	int ok;

	if (wg_crypto_init() < 0)
		return -1;
	ctx = EVP_MAC_CTX_new(alg);
	if (!ctx)
		return -1;
	ok = EVP_MAC_init(ctx, key, keylen, params) == 1 &&
	     EVP_MAC_update(ctx, data, len) == 1 &&
	     EVP_MAC_final(ctx, out, &n, outlen) == 1 && n == outlen;
	EVP_MAC_CTX_free(ctx);
	return ok ? 0 : -1;
}

int wg_mac(uint8_t out[WG_MAC_LEN], const uint8_t *key, size_t keylen, const void *data,
	   size_t len)
{
	size_t size = WG_MAC_LEN;
	OSSL_PARAM params[] = {
		OSSL_PARAM_size_t(OSSL_MAC_PARAM_SIZE, &size),
		OSSL_PARAM_END,
	};

	return run_mac(blake2s_mac_alg, params, out, WG_MAC_LEN, key, keylen, data, len);
}

int wg_hmac(uint8_t out[WG_HASH_LEN], const uint8_t key[WG_HASH_LEN], const void *data,
	    size_t len)
{
	char digest[] = "BLAKE2S-256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_END,
	};

	return run_mac(hmac_alg, params, out, WG_HASH_LEN, key, WG_HASH_LEN, data, len);
}

int wg_kdf(uint8_t t1[WG_HASH_LEN], uint8_t *t2, uint8_t *t3, const uint8_t key[WG_HASH_LEN],
	   const void *input, size_t len)
{
	uint8_t prk[WG_HASH_LEN], buf[WG_HASH_LEN + 1];
	int rc = -1;

	/* HKDF with HMAC-BLAKE2s: PRK = HMAC(key, input), Ti = HMAC(PRK, Ti-1 || i). */
	if (wg_hmac(prk, key, input, len) < 0)
		goto out;
	buf[0] = 1;
	if (wg_hmac(buf, prk, buf, 1) < 0)
		goto out;
	memcpy(t1, buf, WG_HASH_LEN);
	if (t2) {
		buf[WG_HASH_LEN] = 2;
		if (wg_hmac(buf, prk, buf, WG_HASH_LEN + 1) < 0)
			goto out;
		memcpy(t2, buf, WG_HASH_LEN);
	}
	if (t3) {
		buf[WG_HASH_LEN] = 3;
		if (wg_hmac(buf, prk, buf, WG_HASH_LEN + 1) < 0)
			goto out;
		memcpy(t3, buf, WG_HASH_LEN);
	}
	rc = 0;
out:
	OPENSSL_cleanse(prk, sizeof prk);
	OPENSSL_cleanse(buf, sizeof buf);
	return rc;
}

int wg_dh(uint8_t out[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN], const uint8_t pub[WG_KEY_LEN])
{
	static const uint8_t zero[WG_KEY_LEN];
	EVP_PKEY *mine = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, WG_KEY_LEN);
	EVP_PKEY *theirs = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub, WG_KEY_LEN);
	EVP_PKEY_CTX *ctx = mine ? EVP_PKEY_CTX_new(mine, NULL) : NULL;
	size_t n = WG_KEY_LEN;
	int ok;

	ok = ctx && theirs && EVP_PKEY_derive_init(ctx) == 1 &&
	     EVP_PKEY_derive_set_peer(ctx, theirs) == 1 &&
	     EVP_PKEY_derive(ctx, out, &n) == 1 && n == WG_KEY_LEN;
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(mine);
	EVP_PKEY_free(theirs);
	if (ok && CRYPTO_memcmp(out, zero, WG_KEY_LEN) == 0)
		ok = 0;
	return ok ? 0 : -1;
}

struct wg_aead {
	EVP_CIPHER_CTX *ctx;
};

static void nonce96(uint8_t nonce[12], uint64_t counter);

static struct wg_aead *aead_new(const uint8_t *key, int enc)
{
	struct wg_aead *a;

	if (wg_crypto_init() < 0)
		return NULL;
	a = OPENSSL_zalloc(sizeof *a);
	if (!a)
		return NULL;
	a->ctx = EVP_CIPHER_CTX_new();
	if (!a->ctx || EVP_CipherInit_ex2(a->ctx, chacha20_poly1305, key, NULL, enc, NULL) != 1) {
		wg_aead_free(a);
		return NULL;
	}
	return a;
}

struct wg_aead *wg_aead_new(void)
{
	return aead_new(NULL, 1);
}

struct wg_aead *wg_aead_new_keyed(const uint8_t key[WG_KEY_LEN], int encrypt)
{
	return aead_new(key, encrypt);
}

int wg_aead_seal_fast(struct wg_aead *a, uint8_t *dst, uint64_t counter, const uint8_t *src,
		      size_t len)
{
	uint8_t nonce[12];
	OSSL_PARAM tag[2] = {
		OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, NULL, WG_TAG_LEN),
		OSSL_PARAM_END,
	};
	int n;

	nonce96(nonce, counter);
	tag[0].data = dst + len;
	if (len > INT32_MAX || EVP_CipherInit_ex2(a->ctx, NULL, NULL, nonce, 1, NULL) != 1 ||
	    (len && EVP_CipherUpdate(a->ctx, dst, &n, src, (int)len) != 1) ||
	    EVP_CipherFinal_ex(a->ctx, dst + len, &n) != 1)
		return -1;
	return EVP_CIPHER_CTX_get_params(a->ctx, tag) == 1 ? 0 : -1;
}

int wg_aead_open_fast(struct wg_aead *a, uint8_t *dst, uint64_t counter, const uint8_t *src,
		      size_t len)
{
	uint8_t nonce[12];
	OSSL_PARAM tag[2] = {
		OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, NULL, WG_TAG_LEN),
		OSSL_PARAM_END,
	};
	int n;

	nonce96(nonce, counter);
	tag[0].data = (void *)(src + len);
	if (len > INT32_MAX || EVP_CipherInit_ex2(a->ctx, NULL, NULL, nonce, 0, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_params(a->ctx, tag) != 1 ||
	    (len && EVP_CipherUpdate(a->ctx, dst, &n, src, (int)len) != 1))
		return -1;
	return EVP_CipherFinal_ex(a->ctx, dst + len, &n) == 1 ? 0 : -1;
}

void wg_aead_free(struct wg_aead *a)
{
	if (!a)
		return;
	EVP_CIPHER_CTX_free(a->ctx);
	OPENSSL_free(a);
}

static void nonce96(uint8_t nonce[12], uint64_t counter)
{
	memset(nonce, 0, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

static int aead_run(EVP_CIPHER_CTX *ctx, int enc, uint8_t *dst, const uint8_t *key,
		    const uint8_t nonce[12], const uint8_t *src, size_t len, const uint8_t *ad,
		    size_t adlen)
{
	int n;

	if (len > INT32_MAX || adlen > INT32_MAX)
		return -1;
	if (EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) != 1)
		return -1;
	if (adlen && EVP_CipherUpdate(ctx, NULL, &n, ad, (int)adlen) != 1)
		return -1;
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, WG_TAG_LEN,
					(void *)(src + len)) != 1)
		return -1;
	if (len && EVP_CipherUpdate(ctx, dst, &n, src, (int)len) != 1)
		return -1;
	if (EVP_CipherFinal_ex(ctx, dst + len, &n) != 1)
		return -1; /* the tag did not verify */
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, WG_TAG_LEN, dst + len) != 1)
		return -1;
	return 0;
}

int wg_aead_seal(struct wg_aead *a, uint8_t *dst, const uint8_t key[WG_KEY_LEN],
		 uint64_t counter, const uint8_t *src, size_t len, const uint8_t *ad, size_t adlen)
{
	uint8_t nonce[12];

	nonce96(nonce, counter);
	return aead_run(a->ctx, 1, dst, key, nonce, src, len, ad, adlen);
}

int wg_aead_open(struct wg_aead *a, uint8_t *dst, const uint8_t key[WG_KEY_LEN],
		 uint64_t counter, const uint8_t *src, size_t len, const uint8_t *ad, size_t adlen)
{
	uint8_t nonce[12];

	nonce96(nonce, counter);
	return aead_run(a->ctx, 0, dst, key, nonce, src, len, ad, adlen);
}

/* ---- HChaCha20: the ChaCha20 block function without the final addition,
 * keeping words 0-3 and 12-15 (draft-irtf-cfrg-xchacha-03 section 2.2). */

static uint32_t rotl32(uint32_t v, int n)
{
	return v << n | v >> (32 - n);
}

static uint32_t load32_le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store32_le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

#define QUARTER(a, b, c, d)                          \
	do {                                         \
		a += b; d ^= a; d = rotl32(d, 16);   \
		c += d; b ^= c; b = rotl32(b, 12);   \
		a += b; d ^= a; d = rotl32(d, 8);    \
		c += d; b ^= c; b = rotl32(b, 7);    \
	} while (0)

void wg_hchacha20(uint8_t out[32], const uint8_t key[32], const uint8_t nonce[16])
{
	uint32_t x[16] = { 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574 };

	for (int i = 0; i < 8; i++)
		x[4 + i] = load32_le(key + 4 * i);
	for (int i = 0; i < 4; i++)
		x[12 + i] = load32_le(nonce + 4 * i);
	for (int round = 0; round < 10; round++) {
		QUARTER(x[0], x[4], x[8], x[12]);
		QUARTER(x[1], x[5], x[9], x[13]);
		QUARTER(x[2], x[6], x[10], x[14]);
		QUARTER(x[3], x[7], x[11], x[15]);
		QUARTER(x[0], x[5], x[10], x[15]);
		QUARTER(x[1], x[6], x[11], x[12]);
		QUARTER(x[2], x[7], x[8], x[13]);
		QUARTER(x[3], x[4], x[9], x[14]);
	}
	for (int i = 0; i < 4; i++) {
		store32_le(out + 4 * i, x[i]);
		store32_le(out + 16 + 4 * i, x[12 + i]);
	}
	OPENSSL_cleanse(x, sizeof x);
}

/* XChaCha20-Poly1305: subkey = HChaCha20(key, nonce[0..16]), then
 * ChaCha20-Poly1305 with the nonce 0^32 || nonce[16..24]. */
static int xaead(int enc, uint8_t *dst, const uint8_t key[32], const uint8_t nonce[24],
		 const uint8_t *src, size_t len, const uint8_t *ad, size_t adlen)
{
	uint8_t subkey[32], n12[12] = { 0 };
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int rc = -1;

	if (!ctx)
		return -1;
	wg_hchacha20(subkey, key, nonce);
	memcpy(n12 + 4, nonce + 16, 8);
	if (EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL, enc) == 1)
		rc = aead_run(ctx, enc, dst, subkey, n12, src, len, ad, adlen);
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(subkey, sizeof subkey);
	return rc;
}

int wg_xaead_seal(uint8_t *dst, const uint8_t key[32], const uint8_t nonce[WG_XNONCE_LEN],
		  const uint8_t *src, size_t len, const uint8_t *ad, size_t adlen)
{
	return xaead(1, dst, key, nonce, src, len, ad, adlen);
}

int wg_xaead_open(uint8_t *dst, const uint8_t key[32], const uint8_t nonce[WG_XNONCE_LEN],
		  const uint8_t *src, size_t len, const uint8_t *ad, size_t adlen)
{
	return xaead(0, dst, key, nonce, src, len, ad, adlen);
}
