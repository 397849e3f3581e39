/* noise.c: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s as WireGuard uses it. The
 * variable names follow the whitepaper: C is the chaining key, H the hash,
 * E the ephemeral, S the static, Q the preshared key. */
#include "noise.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>

#include "key.h"

static const char CONSTRUCTION[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
static const char IDENTIFIER[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
static const char LABEL_MAC1[] = "mac1----";
static const char LABEL_COOKIE[] = "cookie--";

uint32_t noise_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void noise_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t noise_le64(const uint8_t *p)
{
	return (uint64_t)noise_le32(p) | (uint64_t)noise_le32(p + 4) << 32;
}

void noise_put_le64(uint8_t *p, uint64_t v)
{
	noise_put_le32(p, (uint32_t)v);
	noise_put_le32(p + 4, (uint32_t)(v >> 32));
}

static void put_type(uint8_t type[4], uint8_t t)
{
	type[0] = t;
	type[1] = type[2] = type[3] = 0;
}

/* C and H at the start of every handshake, before the responder's key. */
static int initial_state(uint8_t chain[WG_HASH_LEN], uint8_t hash[WG_HASH_LEN],
			 const uint8_t responder_pub[WG_KEY_LEN])
{
	if (wg_hash(chain, CONSTRUCTION, sizeof CONSTRUCTION - 1, NULL, 0) < 0 ||
	    wg_hash(hash, chain, WG_HASH_LEN, IDENTIFIER, sizeof IDENTIFIER - 1) < 0)
		return -1;
	return wg_hash(hash, hash, WG_HASH_LEN, responder_pub, WG_KEY_LEN);
}

static int mix_hash(uint8_t hash[WG_HASH_LEN], const void *data, size_t len)
{
	return wg_hash(hash, hash, WG_HASH_LEN, data, len);
}

/* C = KDF1(C, E_pub); H = HASH(H || E_pub). */
static int mix_ephemeral(uint8_t chain[WG_HASH_LEN], uint8_t hash[WG_HASH_LEN],
			 const uint8_t eph_pub[WG_KEY_LEN])
{
	if (wg_kdf(chain, NULL, NULL, chain, eph_pub, WG_KEY_LEN) < 0)
		return -1;
	return mix_hash(hash, eph_pub, WG_KEY_LEN);
}

/* (C, k) = KDF2(C, DH(priv, pub)). */
static int mix_dh(uint8_t chain[WG_HASH_LEN], uint8_t key[WG_KEY_LEN],
		  const uint8_t priv[WG_KEY_LEN], const uint8_t pub[WG_KEY_LEN])
{
	uint8_t dh[WG_KEY_LEN];
	int rc = wg_dh(dh, priv, pub);

	if (rc == 0)
		rc = wg_kdf(chain, key, NULL, chain, dh, WG_KEY_LEN);
	OPENSSL_cleanse(dh, sizeof dh);
	return rc;
}

/* One-shot AEAD with counter 0 and AD = H; then H = HASH(H || ciphertext). */
static int seal_and_hash(uint8_t *dst, const uint8_t key[WG_KEY_LEN], uint8_t hash[WG_HASH_LEN],
			 const uint8_t *src, size_t len)
{
	struct wg_aead *a = wg_aead_new();
	int rc = a ? wg_aead_seal(a, dst, key, 0, src, len, hash, WG_HASH_LEN) : -1;

	wg_aead_free(a);
	if (rc == 0)
		rc = mix_hash(hash, dst, len + WG_TAG_LEN);
	return rc;
}

static int open_and_hash(uint8_t *dst, const uint8_t key[WG_KEY_LEN], uint8_t hash[WG_HASH_LEN],
			 const uint8_t *src, size_t len)
{
	struct wg_aead *a = wg_aead_new();
	int rc = a ? wg_aead_open(a, dst, key, 0, src, len, hash, WG_HASH_LEN) : -1;

	wg_aead_free(a);
	if (rc == 0)
		rc = mix_hash(hash, src, len + WG_TAG_LEN);
	return rc;
}

static int new_ephemeral(uint8_t priv[WG_KEY_LEN], uint8_t pub[WG_KEY_LEN])
{
	if (key_generate(priv) < 0)
		return -1;
	return key_public(pub, priv);
}

int noise_local_set(struct noise_local *l, const uint8_t priv[WG_KEY_LEN])
{
	memcpy(l->priv, priv, WG_KEY_LEN);
	if (key_public(l->pub, priv) < 0 ||
	    wg_hash(l->mac1_key, LABEL_MAC1, sizeof LABEL_MAC1 - 1, l->pub, WG_KEY_LEN) < 0 ||
	    wg_hash(l->cookie_key, LABEL_COOKIE, sizeof LABEL_COOKIE - 1, l->pub, WG_KEY_LEN) < 0) {
		l->has_key = 0;
		return -1;
	}
	l->has_key = 1;
	return 0;
}

void noise_remote_init(struct noise_remote *r, const struct noise_local *l,
		       const uint8_t pub[WG_KEY_LEN], const uint8_t psk[WG_KEY_LEN])
{
	if (r->pub != pub)
		memmove(r->pub, pub, WG_KEY_LEN);
	if (psk && r->psk != psk)
		memmove(r->psk, psk, WG_KEY_LEN);
	wg_hash(r->mac1_key, LABEL_MAC1, sizeof LABEL_MAC1 - 1, pub, WG_KEY_LEN);
	wg_hash(r->cookie_key, LABEL_COOKIE, sizeof LABEL_COOKIE - 1, pub, WG_KEY_LEN);
	r->ss_ok = l->has_key && wg_dh(r->ss, l->priv, pub) == 0;
	if (!r->ss_ok)
		memset(r->ss, 0, sizeof r->ss);
}

void noise_tai64n(uint8_t out[TAI64N_LEN], uint64_t now_ns)
{
	uint64_t secs = 0x400000000000000aull + now_ns / 1000000000u;
	/* Whiten: keep only the nanoseconds' coarse part (about 16.7 ms), as
	 * wireguard-go does, so the timestamp is no clock oracle. */
	uint32_t nanos = (uint32_t)(now_ns % 1000000000u) & ~0xffffffu;

	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(secs >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		out[8 + i] = (uint8_t)(nanos >> (24 - 8 * i));
}

int noise_create_initiation(const struct noise_local *l, const struct noise_remote *r,
			    struct noise_handshake *hs, uint32_t local_index,
			    const uint8_t timestamp[TAI64N_LEN], struct msg_initiation *m)
{
	uint8_t key[WG_KEY_LEN], eph_pub[WG_KEY_LEN];
	int rc = -1;

	if (!l->has_key || !r->ss_ok)
		return -1;
	memset(m, 0, sizeof *m);
	put_type(m->type, MSG_INITIATION);
	noise_put_le32(m->sender, local_index);
	if (initial_state(hs->chain, hs->hash, r->pub) < 0 ||
	    new_ephemeral(hs->eph_priv, eph_pub) < 0 ||
	    mix_ephemeral(hs->chain, hs->hash, eph_pub) < 0)
		goto out;
	memcpy(m->ephemeral, eph_pub, WG_KEY_LEN);
	if (mix_dh(hs->chain, key, hs->eph_priv, r->pub) < 0 ||
	    seal_and_hash(m->enc_static, key, hs->hash, l->pub, WG_KEY_LEN) < 0)
		goto out;
	/* (C, k) = KDF2(C, DH(S_priv, S_pub_r)), from the precomputed SS. */
	if (wg_kdf(hs->chain, key, NULL, hs->chain, r->ss, WG_KEY_LEN) < 0 ||
	    seal_and_hash(m->enc_timestamp, key, hs->hash, timestamp, TAI64N_LEN) < 0)
		goto out;
	hs->local_index = local_index;
	hs->state = HS_INITIATION_SENT;
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof key);
	if (rc < 0)
		hs->state = HS_NONE;
	return rc;
}

int noise_consume_initiation_static(const struct noise_local *l, const struct msg_initiation *m,
				    struct noise_handshake *hs, uint8_t remote_pub[WG_KEY_LEN])
{
	uint8_t key[WG_KEY_LEN];
	int rc = -1;

	if (!l->has_key)
		return -1;
	memset(hs, 0, sizeof *hs);
	if (initial_state(hs->chain, hs->hash, l->pub) < 0 ||
	    mix_ephemeral(hs->chain, hs->hash, m->ephemeral) < 0 ||
	    mix_dh(hs->chain, key, l->priv, m->ephemeral) < 0 ||
	    open_and_hash(remote_pub, key, hs->hash, m->enc_static, WG_KEY_LEN) < 0)
		goto out;
	memcpy(hs->remote_eph, m->ephemeral, WG_KEY_LEN);
	hs->remote_index = noise_le32(m->sender);
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof key);
	return rc;
}

int noise_consume_initiation_finish(const struct noise_remote *r, const struct msg_initiation *m,
				    struct noise_handshake *hs, const uint8_t last[TAI64N_LEN])
{
	uint8_t key[WG_KEY_LEN], ts[TAI64N_LEN];
	int rc = -1;

	if (!r->ss_ok)
		return -1;
	if (wg_kdf(hs->chain, key, NULL, hs->chain, r->ss, WG_KEY_LEN) < 0 ||
	    open_and_hash(ts, key, hs->hash, m->enc_timestamp, TAI64N_LEN) < 0)
		goto out;
	/* Replay protection: a big-endian TAI64N compares as bytes. */
	if (memcmp(ts, last, TAI64N_LEN) <= 0)
		goto out;
	memcpy(hs->last_timestamp, ts, TAI64N_LEN);
	hs->state = HS_INITIATION_CONSUMED;
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof key);
	return rc;
}

/* (T_send, T_recv) from the final chaining key; the initiator's send key
 * is the responder's receive key. */
static int derive_keys(struct noise_handshake *hs, struct noise_keys *k, int initiator)
{
	uint8_t t1[WG_KEY_LEN], t2[WG_KEY_LEN];

	if (wg_kdf(t1, t2, NULL, hs->chain, NULL, 0) < 0)
		return -1;
	memcpy(k->send, initiator ? t1 : t2, WG_KEY_LEN);
	memcpy(k->recv, initiator ? t2 : t1, WG_KEY_LEN);
	k->local_index = hs->local_index;
	k->remote_index = hs->remote_index;
	k->initiator = initiator;
	OPENSSL_cleanse(t1, sizeof t1);
	OPENSSL_cleanse(t2, sizeof t2);
	/* The handshake's secrets are spent: a session never outlives them. */
	OPENSSL_cleanse(hs->chain, sizeof hs->chain);
	OPENSSL_cleanse(hs->hash, sizeof hs->hash);
	OPENSSL_cleanse(hs->eph_priv, sizeof hs->eph_priv);
	hs->state = HS_NONE;
	return 0;
}

/* The responder's half: E_r, DH(E_r, E_i), DH(E_r, S_i), the PSK, and the
 * empty payload that proves it. */
static int psk_and_empty(const struct noise_remote *r, struct noise_handshake *hs,
			 uint8_t key[WG_KEY_LEN])
{
	uint8_t tau[WG_HASH_LEN];
	int rc = wg_kdf(hs->chain, tau, key, hs->chain, r->psk, WG_KEY_LEN);

	if (rc == 0)
		rc = mix_hash(hs->hash, tau, sizeof tau);
	OPENSSL_cleanse(tau, sizeof tau);
	return rc;
}

static int kdf1_dh(uint8_t chain[WG_HASH_LEN], const uint8_t priv[WG_KEY_LEN],
		   const uint8_t pub[WG_KEY_LEN])
{
	uint8_t dh[WG_KEY_LEN];
	int rc = wg_dh(dh, priv, pub);

	if (rc == 0)
		rc = wg_kdf(chain, NULL, NULL, chain, dh, WG_KEY_LEN);
	OPENSSL_cleanse(dh, sizeof dh);
	return rc;
}

int noise_create_response(const struct noise_remote *r, struct noise_handshake *hs,
			  uint32_t local_index, struct msg_response *m, struct noise_keys *keys)
{
	uint8_t key[WG_KEY_LEN], eph_pub[WG_KEY_LEN];
	int rc = -1;

	if (hs->state != HS_INITIATION_CONSUMED)
		return -1;
	memset(m, 0, sizeof *m);
	put_type(m->type, MSG_RESPONSE);
	noise_put_le32(m->sender, local_index);
	noise_put_le32(m->receiver, hs->remote_index);
	hs->local_index = local_index;
	if (new_ephemeral(hs->eph_priv, eph_pub) < 0 ||
	    mix_ephemeral(hs->chain, hs->hash, eph_pub) < 0 ||
	    kdf1_dh(hs->chain, hs->eph_priv, hs->remote_eph) < 0 ||
	    kdf1_dh(hs->chain, hs->eph_priv, r->pub) < 0 ||
	    psk_and_empty(r, hs, key) < 0 ||
	    seal_and_hash(m->enc_empty, key, hs->hash, NULL, 0) < 0)
		goto out;
	memcpy(m->ephemeral, eph_pub, WG_KEY_LEN);
	rc = derive_keys(hs, keys, 0);
out:
	OPENSSL_cleanse(key, sizeof key);
	return rc;
}

int noise_consume_response(const struct noise_local *l, const struct noise_remote *r,
			   struct noise_handshake *hs, const struct msg_response *m,
			   struct noise_keys *keys)
{
	uint8_t key[WG_KEY_LEN], chain[WG_HASH_LEN], hash[WG_HASH_LEN], empty[1];
	int rc = -1;

	if (hs->state != HS_INITIATION_SENT || noise_le32(m->receiver) != hs->local_index)
		return -1;
	/* Work on copies: a forged response must not spoil the real one's state. */
	memcpy(chain, hs->chain, sizeof chain);
	memcpy(hash, hs->hash, sizeof hash);
	if (mix_ephemeral(chain, hash, m->ephemeral) < 0 ||
	    kdf1_dh(chain, hs->eph_priv, m->ephemeral) < 0 ||
	    kdf1_dh(chain, l->priv, m->ephemeral) < 0)
		goto out;
	{
		uint8_t tau[WG_HASH_LEN];

		if (wg_kdf(chain, tau, key, chain, r->psk, WG_KEY_LEN) < 0) {
			OPENSSL_cleanse(tau, sizeof tau);
			goto out;
		}
		rc = mix_hash(hash, tau, sizeof tau);
		OPENSSL_cleanse(tau, sizeof tau);
		if (rc < 0)
			goto out;
		rc = -1;
	}
	if (open_and_hash(empty, key, hash, m->enc_empty, 0) < 0)
		goto out;
	memcpy(hs->chain, chain, sizeof chain);
	memcpy(hs->hash, hash, sizeof hash);
	hs->remote_index = noise_le32(m->sender);
	rc = derive_keys(hs, keys, 1);
out:
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(chain, sizeof chain);
	OPENSSL_cleanse(hash, sizeof hash);
	return rc;
}

int noise_add_macs(uint8_t *msg, size_t len, const uint8_t mac1_key[WG_HASH_LEN],
		   const uint8_t *cookie)
{
	uint8_t *mac1 = msg + len - 2 * WG_MAC_LEN, *mac2 = msg + len - WG_MAC_LEN;

	if (wg_mac(mac1, mac1_key, WG_HASH_LEN, msg, len - 2 * WG_MAC_LEN) < 0)
		return -1;
	if (!cookie) {
		memset(mac2, 0, WG_MAC_LEN);
		return 0;
	}
	return wg_mac(mac2, cookie, WG_MAC_LEN, msg, len - WG_MAC_LEN);
}

int noise_check_mac1(const uint8_t *msg, size_t len, const uint8_t mac1_key[WG_HASH_LEN])
{
	uint8_t want[WG_MAC_LEN];

	if (wg_mac(want, mac1_key, WG_HASH_LEN, msg, len - 2 * WG_MAC_LEN) < 0)
		return -1;
	return CRYPTO_memcmp(want, msg + len - 2 * WG_MAC_LEN, WG_MAC_LEN) == 0 ? 0 : -1;
}

int noise_check_mac2(const uint8_t *msg, size_t len, const uint8_t cookie[WG_MAC_LEN])
{
	uint8_t want[WG_MAC_LEN];

	if (wg_mac(want, cookie, WG_MAC_LEN, msg, len - WG_MAC_LEN) < 0)
		return -1;
	return CRYPTO_memcmp(want, msg + len - WG_MAC_LEN, WG_MAC_LEN) == 0 ? 0 : -1;
}

int noise_make_cookie(uint8_t cookie[WG_MAC_LEN], const uint8_t secret[WG_HASH_LEN],
		      const uint8_t *src, size_t srclen)
{
	return wg_mac(cookie, secret, WG_HASH_LEN, src, srclen);
}

int noise_create_cookie_reply(struct msg_cookie_reply *m, const struct noise_local *l,
			      uint32_t receiver, const uint8_t cookie[WG_MAC_LEN],
			      const uint8_t mac1[WG_MAC_LEN])
{
	memset(m, 0, sizeof *m);
	put_type(m->type, MSG_COOKIE_REPLY);
	noise_put_le32(m->receiver, receiver);
	if (RAND_bytes(m->nonce, sizeof m->nonce) != 1)
		return -1;
	return wg_xaead_seal(m->enc_cookie, l->cookie_key, m->nonce, cookie, WG_MAC_LEN, mac1,
			     WG_MAC_LEN);
}

int noise_consume_cookie_reply(const struct msg_cookie_reply *m, const struct noise_remote *r,
			       const uint8_t last_mac1[WG_MAC_LEN], uint8_t cookie[WG_MAC_LEN])
{
	return wg_xaead_open(cookie, r->cookie_key, m->nonce, m->enc_cookie, WG_MAC_LEN,
			     last_mac1, WG_MAC_LEN);
}
