/* noise.h: WireGuard's Noise_IKpsk2 handshake (whitepaper section 5.4) and
 * its message formats, as pure functions over byte buffers: no sockets, no
 * clocks but the ones passed in, so both sides can be tested in-process. */
#ifndef P2P_TUNNEL_NOISE_H
#define P2P_TUNNEL_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

enum {
	MSG_INITIATION = 1,
	MSG_RESPONSE = 2,
	MSG_COOKIE_REPLY = 3,
	MSG_DATA = 4,
};

#define MSG_INITIATION_LEN 148
#define MSG_RESPONSE_LEN 92
#define MSG_COOKIE_REPLY_LEN 64
#define MSG_DATA_HEADER_LEN 16
#define MSG_DATA_MIN_LEN (MSG_DATA_HEADER_LEN + WG_TAG_LEN)
#define TAI64N_LEN 12

/* Wire layouts; all integers little-endian. */
struct msg_initiation {
	uint8_t type[4];        /* 1, 0, 0, 0 */
	uint8_t sender[4];
	uint8_t ephemeral[32];
	uint8_t enc_static[32 + WG_TAG_LEN];
	uint8_t enc_timestamp[TAI64N_LEN + WG_TAG_LEN];
	uint8_t mac1[WG_MAC_LEN];
	uint8_t mac2[WG_MAC_LEN];
};

struct msg_response {
	uint8_t type[4];
	uint8_t sender[4];
	uint8_t receiver[4];
	uint8_t ephemeral[32];
	uint8_t enc_empty[WG_TAG_LEN];
	uint8_t mac1[WG_MAC_LEN];
	uint8_t mac2[WG_MAC_LEN];
};

struct msg_cookie_reply {
	uint8_t type[4];
	uint8_t receiver[4];
	uint8_t nonce[WG_XNONCE_LEN];
	uint8_t enc_cookie[WG_MAC_LEN + WG_TAG_LEN];
};

_Static_assert(sizeof(struct msg_initiation) == MSG_INITIATION_LEN, "initiation layout");
_Static_assert(sizeof(struct msg_response) == MSG_RESPONSE_LEN, "response layout");
_Static_assert(sizeof(struct msg_cookie_reply) == MSG_COOKIE_REPLY_LEN, "cookie layout");

/* Our identity, with the keys derived from it. */
struct noise_local {
	uint8_t priv[WG_KEY_LEN];
	uint8_t pub[WG_KEY_LEN];
	uint8_t mac1_key[WG_HASH_LEN];    /* HASH(LABEL_MAC1 || pub): checks what we receive */
	uint8_t cookie_key[WG_HASH_LEN];  /* HASH(LABEL_COOKIE || pub): seals our cookie replies */
	int has_key;
};

/* What we know of one peer, with the precomputed static-static DH. */
struct noise_remote {
	uint8_t pub[WG_KEY_LEN];
	uint8_t psk[WG_KEY_LEN];
	uint8_t ss[WG_KEY_LEN];           /* DH(local priv, remote pub); zero if invalid */
	uint8_t mac1_key[WG_HASH_LEN];    /* HASH(LABEL_MAC1 || remote pub) */
	uint8_t cookie_key[WG_HASH_LEN];  /* HASH(LABEL_COOKIE || remote pub) */
	int ss_ok;
};

enum handshake_state {
	HS_NONE,
	HS_INITIATION_SENT,      /* we initiated, waiting for the response */
	HS_INITIATION_CONSUMED,  /* they initiated, we are to respond */
};

struct noise_handshake {
	enum handshake_state state;
	uint8_t chain[WG_HASH_LEN];
	uint8_t hash[WG_HASH_LEN];
	uint8_t eph_priv[WG_KEY_LEN];
	uint8_t remote_eph[WG_KEY_LEN];
	uint32_t local_index;
	uint32_t remote_index;
	uint8_t last_timestamp[TAI64N_LEN];   /* greatest accepted from this peer */
};

/* Transport keys of one session. */
struct noise_keys {
	uint8_t send[WG_KEY_LEN];
	uint8_t recv[WG_KEY_LEN];
	uint32_t local_index;
	uint32_t remote_index;
	int initiator;
};

int noise_local_set(struct noise_local *l, const uint8_t priv[WG_KEY_LEN]);
/* Recompute SS and the MAC keys after the local key or the peer changed. */
void noise_remote_init(struct noise_remote *r, const struct noise_local *l,
		       const uint8_t pub[WG_KEY_LEN], const uint8_t psk[WG_KEY_LEN]);

/* TAI64N of NOW_NS (nanoseconds since the Unix epoch), with the
 * nanoseconds rounded down to a power-of-two interval so the timestamp does
 * not leak fine timing. */
void noise_tai64n(uint8_t out[TAI64N_LEN], uint64_t now_ns);

/* Initiator: fill M (without mac1/mac2). */
int noise_create_initiation(const struct noise_local *l, const struct noise_remote *r,
			    struct noise_handshake *hs, uint32_t local_index,
			    const uint8_t timestamp[TAI64N_LEN], struct msg_initiation *m);

/* Responder, step 1: decrypt the initiator's static key out of M. The
 * caller then finds the peer by that key, and calls step 2. HS receives the
 * partial state. */
int noise_consume_initiation_static(const struct noise_local *l, const struct msg_initiation *m,
				    struct noise_handshake *hs, uint8_t remote_pub[WG_KEY_LEN]);
/* Step 2: with the peer known, decrypt and check the timestamp (strictly
 * newer than LAST, the greatest accepted before). On success the caller
 * stores HS as the peer's handshake (state HS_INITIATION_CONSUMED). */
int noise_consume_initiation_finish(const struct noise_remote *r, const struct msg_initiation *m,
				    struct noise_handshake *hs,
				    const uint8_t last[TAI64N_LEN]);

/* Responder: fill M (without macs) and derive the session keys. */
int noise_create_response(const struct noise_remote *r, struct noise_handshake *hs,
			  uint32_t local_index, struct msg_response *m, struct noise_keys *keys);
/* Initiator: check M against our pending handshake and derive the keys. */
int noise_consume_response(const struct noise_local *l, const struct noise_remote *r,
			   struct noise_handshake *hs, const struct msg_response *m,
			   struct noise_keys *keys);

/* MAC1/MAC2 of a handshake message of LEN bytes whose last 32 bytes are
 * mac1 || mac2. COOKIE may be NULL (mac2 zero). */
int noise_add_macs(uint8_t *msg, size_t len, const uint8_t mac1_key[WG_HASH_LEN],
		   const uint8_t *cookie);
int noise_check_mac1(const uint8_t *msg, size_t len, const uint8_t mac1_key[WG_HASH_LEN]);
/* mac2 against COOKIE = MAC(secret, source address bytes). */
int noise_check_mac2(const uint8_t *msg, size_t len, const uint8_t cookie[WG_MAC_LEN]);
/* The cookie for a source: MAC(SECRET, SRC) where SRC is the address and
 * port in network order. */
int noise_make_cookie(uint8_t cookie[WG_MAC_LEN], const uint8_t secret[WG_HASH_LEN],
		      const uint8_t *src, size_t srclen);
/* Seal COOKIE for the sender of a message whose mac1 was MAC1. */
int noise_create_cookie_reply(struct msg_cookie_reply *m, const struct noise_local *l,
			      uint32_t receiver, const uint8_t cookie[WG_MAC_LEN],
			      const uint8_t mac1[WG_MAC_LEN]);
/* Open a cookie reply to the message we sent with LAST_MAC1. */
int noise_consume_cookie_reply(const struct msg_cookie_reply *m, const struct noise_remote *r,
			       const uint8_t last_mac1[WG_MAC_LEN], uint8_t cookie[WG_MAC_LEN]);

uint32_t noise_le32(const uint8_t *p);
void noise_put_le32(uint8_t *p, uint32_t v);
uint64_t noise_le64(const uint8_t *p);
void noise_put_le64(uint8_t *p, uint64_t v);

#endif
