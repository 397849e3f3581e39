/* crypto.h: WireGuard's primitives (whitepaper section 5.4), all from
 * OpenSSL 3 except HChaCha20, which OpenSSL lacks and the cookie's
 * XChaCha20-Poly1305 needs. */
#ifndef P2P_TUNNEL_CRYPTO_H
#define P2P_TUNNEL_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define WG_KEY_LEN 32
#define WG_HASH_LEN 32
#define WG_MAC_LEN 16
#define WG_TAG_LEN 16
#define WG_XNONCE_LEN 24

/* Fetch the algorithms once; 0 or -1 (OpenSSL without BLAKE2s, say). */
int wg_crypto_init(void);

/* HASH(a || b): BLAKE2s-256; B may be NULL. */
int wg_hash(uint8_t out[WG_HASH_LEN], const void *a, size_t alen, const void *b, size_t blen);
/* MAC(key, data): keyed BLAKE2s with a 16-byte output; KEYLEN <= 32. */
int wg_mac(uint8_t out[WG_MAC_LEN], const uint8_t *key, size_t keylen, const void *data,
	   size_t len);
/* HMAC(key, data) over BLAKE2s-256. */
int wg_hmac(uint8_t out[WG_HASH_LEN], const uint8_t key[WG_HASH_LEN], const void *data,
	    size_t len);
/* KDF_n(key, input): T1, T2, T3 (T2 and T3 may be NULL). */
int wg_kdf(uint8_t t1[WG_HASH_LEN], uint8_t *t2, uint8_t *t3, const uint8_t key[WG_HASH_LEN],
	   const void *input, size_t len);
/* DH(priv, pub) over X25519; -1 if the result is all zero (a low-order
 * point), which the protocol must refuse. */
int wg_dh(uint8_t out[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN], const uint8_t pub[WG_KEY_LEN]);

/* AEAD(key, counter, plain, ad): ChaCha20-Poly1305 with the 96-bit nonce
 * 0^32 || LE64(counter). DST gets LEN bytes plus the 16-byte tag. A context
 * is reused packet after packet, so the data path allocates nothing. */
struct wg_aead;
struct wg_aead *wg_aead_new(void);
void wg_aead_free(struct wg_aead *a);
int wg_aead_seal(struct wg_aead *a, uint8_t *dst, const uint8_t key[WG_KEY_LEN],
		 uint64_t counter, const uint8_t *src, size_t len, const uint8_t *ad,
		 size_t adlen);
/* SRC holds LEN bytes of ciphertext plus the tag; -1 if it does not verify. */
int wg_aead_open(struct wg_aead *a, uint8_t *dst, const uint8_t key[WG_KEY_LEN],
		 uint64_t counter, const uint8_t *src, size_t len, const uint8_t *ad,
		 size_t adlen);

/* The data path: a context bound to one key and one direction, so each
 * packet only sets its nonce (OpenSSL's key set-up and parameter look-ups
 * cost more than the cipher on a 1400-byte packet). No AD. */
struct wg_aead *wg_aead_new_keyed(const uint8_t key[WG_KEY_LEN], int encrypt);
int wg_aead_seal_fast(struct wg_aead *a, uint8_t *dst, uint64_t counter, const uint8_t *src,
		      size_t len);
int wg_aead_open_fast(struct wg_aead *a, uint8_t *dst, uint64_t counter, const uint8_t *src,
		      size_t len);

/* HChaCha20 (draft-irtf-cfrg-xchacha section 2.2). */
void wg_hchacha20(uint8_t out[32], const uint8_t key[32], const uint8_t nonce[16]);
/* XAEAD: XChaCha20-Poly1305 with a 24-byte nonce (the cookie reply). */
int wg_xaead_seal(uint8_t *dst, const uint8_t key[32], const uint8_t nonce[WG_XNONCE_LEN],
		  const uint8_t *src, size_t len, const uint8_t *ad, size_t adlen);
int wg_xaead_open(uint8_t *dst, const uint8_t key[32], const uint8_t nonce[WG_XNONCE_LEN],
		  const uint8_t *src, size_t len, const uint8_t *ad, size_t adlen);

#endif
