/* test: p2p-tunnel */
/* test-tunnel-noise.c: the Noise_IKpsk2 handshake between two in-process
 * peers: both derive the same transport keys; replays, wrong keys, wrong
 * PSKs and tampered messages are refused; MAC1/MAC2 and cookie replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "key.h"
#include "noise.h"

struct side {
	struct noise_local local;
	struct noise_remote remote;
	struct noise_handshake hs;
	struct noise_keys keys;
};

static void make_pair(struct side *a, struct side *b, const uint8_t *psk)
{
	uint8_t pa[32], pb[32];

	memset(a, 0, sizeof *a);
	memset(b, 0, sizeof *b);
	assert_int_equal(key_generate(pa), 0);
	assert_int_equal(key_generate(pb), 0);
	assert_int_equal(noise_local_set(&a->local, pa), 0);
	assert_int_equal(noise_local_set(&b->local, pb), 0);
	noise_remote_init(&a->remote, &a->local, b->local.pub, psk);
	noise_remote_init(&b->remote, &b->local, a->local.pub, psk);
	assert_true(a->remote.ss_ok && b->remote.ss_ok);
}

/* Run a whole handshake a -> b at time NS; returns 0 when both have keys. */
static int handshake(struct side *a, struct side *b, uint64_t ns, const uint8_t *last)
{
	struct msg_initiation init;
	struct msg_response resp;
	uint8_t ts[TAI64N_LEN], who[32];
	static const uint8_t zero[TAI64N_LEN];

	noise_tai64n(ts, ns);
	if (noise_create_initiation(&a->local, &a->remote, &a->hs, 0x11111111, ts, &init) < 0)
		return -1;
	noise_add_macs((uint8_t *)&init, sizeof init, a->remote.mac1_key, NULL);
	if (noise_check_mac1((uint8_t *)&init, sizeof init, b->local.mac1_key) < 0)
		return -2;
	if (noise_consume_initiation_static(&b->local, &init, &b->hs, who) < 0)
		return -3;
	if (memcmp(who, a->local.pub, 32) != 0)
		return -4;
	if (noise_consume_initiation_finish(&b->remote, &init, &b->hs, last ? last : zero) < 0)
		return -5;
	if (noise_create_response(&b->remote, &b->hs, 0x22222222, &resp, &b->keys) < 0)
		return -6;
	noise_add_macs((uint8_t *)&resp, sizeof resp, b->remote.mac1_key, NULL);
	if (noise_check_mac1((uint8_t *)&resp, sizeof resp, a->local.mac1_key) < 0)
		return -7;
	if (noise_consume_response(&a->local, &a->remote, &a->hs, &resp, &a->keys) < 0)
		return -8;
	return 0;
}

static void test_both_sides_derive_the_same_keys(void **ctx)
{
	struct side a, b;
	uint8_t psk[32];

	(void)ctx;
	make_pair(&a, &b, NULL);
	assert_int_equal(handshake(&a, &b, 1000000000000ull, NULL), 0);
	assert_memory_equal(a.keys.send, b.keys.recv, 32);
	assert_memory_equal(a.keys.recv, b.keys.send, 32);
	assert_memory_not_equal(a.keys.send, a.keys.recv, 32);
	assert_int_equal(a.keys.remote_index, 0x22222222);
	assert_int_equal(b.keys.remote_index, 0x11111111);
	assert_true(a.keys.initiator && !b.keys.initiator);
	/* With a preshared key on both sides too. */
	memset(psk, 0x5a, sizeof psk);
	make_pair(&a, &b, psk);
	assert_int_equal(handshake(&a, &b, 1000000000000ull, NULL), 0);
	assert_memory_equal(a.keys.send, b.keys.recv, 32);
}

static void test_psk_mismatch_fails(void **ctx)
{
	struct side a, b;
	uint8_t psk[32];

	(void)ctx;
	make_pair(&a, &b, NULL);
	memset(psk, 1, sizeof psk);
	noise_remote_init(&b.remote, &b.local, a.local.pub, psk);
	/* The responder cannot tell; the initiator refuses the response. */
	assert_int_equal(handshake(&a, &b, 1000000000000ull, NULL), -8);
}

static void test_wrong_responder_key_is_refused(void **ctx)
{
	struct side a, b, c;

	(void)ctx;
	make_pair(&a, &b, NULL);
	make_pair(&c, &c, NULL);
	/* a believes it talks to c, but sends to b: mac1 and decryption fail. */
	noise_remote_init(&a.remote, &a.local, c.local.pub, NULL);
	assert_int_equal(handshake(&a, &b, 1000000000000ull, NULL), -2);
}

static void test_replayed_initiation_is_refused(void **ctx)
{
	struct side a, b;
	struct msg_initiation init;
	struct noise_handshake hs;
	uint8_t ts[TAI64N_LEN], who[32], last[TAI64N_LEN];
	static const uint8_t zero[TAI64N_LEN];

	(void)ctx;
	make_pair(&a, &b, NULL);
	noise_tai64n(ts, 2000000000000ull);
	assert_int_equal(noise_create_initiation(&a.local, &a.remote, &a.hs, 7, ts, &init), 0);
	assert_int_equal(noise_consume_initiation_static(&b.local, &init, &hs, who), 0);
	assert_int_equal(noise_consume_initiation_finish(&b.remote, &init, &hs, zero), 0);
	memcpy(last, hs.last_timestamp, sizeof last);
	/* The same message again: its timestamp is not newer. */
	assert_int_equal(noise_consume_initiation_static(&b.local, &init, &hs, who), 0);
	assert_int_equal(noise_consume_initiation_finish(&b.remote, &init, &hs, last), -1);
	/* A tampered ciphertext never decrypts. */
	init.enc_timestamp[0] ^= 1;
	assert_int_equal(noise_consume_initiation_static(&b.local, &init, &hs, who), 0);
	assert_int_equal(noise_consume_initiation_finish(&b.remote, &init, &hs, zero), -1);
}

static void test_tai64n_is_monotonic_and_whitened(void **ctx)
{
	uint8_t t1[TAI64N_LEN], t2[TAI64N_LEN];

	(void)ctx;
	noise_tai64n(t1, 1700000000000000000ull);
	noise_tai64n(t2, 1700000000000000001ull);
	assert_memory_equal(t1, t2, TAI64N_LEN); /* 1 ns apart: the same */
	noise_tai64n(t2, 1700000000100000000ull);
	assert_true(memcmp(t1, t2, TAI64N_LEN) < 0);
	assert_int_equal(t1[0], 0x40); /* TAI64 label: 2^62 + seconds */
}

static void test_cookie_reply_round_trip(void **ctx)
{
	struct side a, b;
	struct msg_initiation init;
	struct msg_cookie_reply reply;
	uint8_t secret[32], cookie[16], got[16], ts[TAI64N_LEN];
	const uint8_t src[] = { 198, 18, 0, 10, 0xca, 0x6c };

	(void)ctx;
	make_pair(&a, &b, NULL);
	memset(secret, 9, sizeof secret);
	noise_tai64n(ts, 3000000000000ull);
	assert_int_equal(noise_create_initiation(&a.local, &a.remote, &a.hs, 5, ts, &init), 0);
	noise_add_macs((uint8_t *)&init, sizeof init, a.remote.mac1_key, NULL);
	/* Under load b wants mac2: the zero mac2 fails, b sends a cookie. */
	assert_int_equal(noise_make_cookie(cookie, secret, src, sizeof src), 0);
	assert_int_equal(noise_check_mac2((uint8_t *)&init, sizeof init, cookie), -1);
	assert_int_equal(noise_create_cookie_reply(&reply, &b.local, 5, cookie, init.mac1), 0);
	assert_int_equal(noise_consume_cookie_reply(&reply, &a.remote, init.mac1, got), 0);
	assert_memory_equal(got, cookie, 16);
	/* a retries with the cookie: mac2 now checks. */
	noise_add_macs((uint8_t *)&init, sizeof init, a.remote.mac1_key, got);
	assert_int_equal(noise_check_mac2((uint8_t *)&init, sizeof init, cookie), 0);
	assert_int_equal(noise_check_mac1((uint8_t *)&init, sizeof init, b.local.mac1_key), 0);
	/* A cookie reply bound to another message's mac1 does not open. */
	init.mac1[0] ^= 1;
	assert_int_equal(noise_consume_cookie_reply(&reply, &a.remote, init.mac1, got), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_both_sides_derive_the_same_keys),
		cmocka_unit_test(test_psk_mismatch_fails),
		cmocka_unit_test(test_wrong_responder_key_is_refused),
		cmocka_unit_test(test_replayed_initiation_is_refused),
		cmocka_unit_test(test_tai64n_is_monotonic_and_whitened),
		cmocka_unit_test(test_cookie_reply_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
