/* test: p2p-tunnel */
/* test-tunnel-crypto.c: WireGuard's primitives against published vectors:
 * X25519 (RFC 7748), ChaCha20-Poly1305 (RFC 8439), BLAKE2s (RFC 7693 and the
 * reference keyed KAT), HChaCha20 and XChaCha20-Poly1305
 * (draft-irtf-cfrg-xchacha-03), and HMAC/HKDF by their definitions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

static size_t unhex(uint8_t *out, const char *hex)
{
	size_t n = 0;

	for (; hex[0] && hex[1]; hex += 2) {
		unsigned v;

		while (*hex == ' ')
			hex++;
		if (!hex[0])
			break;
		sscanf(hex, "%2x", &v);
		out[n++] = (uint8_t)v;
	}
	return n;
}

static void assert_hex(const uint8_t *got, const char *want_hex)
{
	uint8_t want[512];
	size_t n = unhex(want, want_hex);

	assert_memory_equal(got, want, n);
}

static void test_x25519_rfc7748(void **ctx)
{
	uint8_t alice[32], bob_pub[32], shared[32], zero_pub[32] = { 0 };

	(void)ctx;
	unhex(alice, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
	unhex(bob_pub, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
	assert_int_equal(wg_dh(shared, alice, bob_pub), 0);
	assert_hex(shared, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
	/* A low-order point gives the all-zero secret: refused. */
	assert_int_equal(wg_dh(shared, alice, zero_pub), -1);
}

static const char sunscreen[] =
	"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for "
	"the future, sunscreen would be it.";

/* RFC 8439 appendix A.5: its nonce 00000000 0102030405060708 is exactly
 * WireGuard's form (0^32 || LE64 counter) with counter 0x0807060504030201. */
static const char a5_cipher[] =
	"64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb2"
	"4c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf"
	"332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855"
	"9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4"
	"b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e"
	"af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a"
	"0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a10"
	"49e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29"
	"a6ad5cb4022b02709b";

static void test_chacha20poly1305_rfc8439(void **ctx)
{
	uint8_t key[32], ad[12], in[300], out[300], back[300];
	size_t len;
	struct wg_aead *a = wg_aead_new();
	const uint64_t counter = 0x0807060504030201ull;

	(void)ctx;
	assert_non_null(a);
	unhex(key, "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0");
	unhex(ad, "f33388860000000000004e91");
	len = unhex(in, a5_cipher);
	assert_int_equal(len, 265);
	unhex(in + len, "eead9d67890cbb22392336fea1851f38");
	assert_int_equal(wg_aead_open(a, back, key, counter, in, len, ad, 12), 0);
	assert_memory_equal(back, "Internet-Drafts are draft documents valid for a maximum of six months", 69);
	/* Sealing the plaintext again gives the RFC's ciphertext and tag. */
	assert_int_equal(wg_aead_seal(a, out, key, counter, back, len, ad, 12), 0);
	assert_memory_equal(out, in, len + 16);
	/* Any flipped bit in ciphertext, tag or AD, or another counter, fails. */
	in[3] ^= 1;
	assert_int_equal(wg_aead_open(a, back, key, counter, in, len, ad, 12), -1);
	in[3] ^= 1;
	in[len + 5] ^= 0x80;
	assert_int_equal(wg_aead_open(a, back, key, counter, in, len, ad, 12), -1);
	in[len + 5] ^= 0x80;
	assert_int_equal(wg_aead_open(a, back, key, counter + 1, in, len, ad, 12), -1);
	ad[0] ^= 1;
	assert_int_equal(wg_aead_open(a, back, key, counter, in, len, ad, 12), -1);
	wg_aead_free(a);
}

/* draft-irtf-cfrg-xchacha-03 appendix A.3.1. */
static void test_xchacha20poly1305_draft(void **ctx)
{
	uint8_t key[32], ad[12], nonce[24], out[200], back[200];
	size_t len = strlen(sunscreen);

	(void)ctx;
	unhex(key, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
	unhex(ad, "50515253c0c1c2c3c4c5c6c7");
	unhex(nonce, "404142434445464748494a4b4c4d4e4f5051525354555657");
	assert_int_equal(wg_xaead_seal(out, key, nonce, (const uint8_t *)sunscreen, len, ad, 12), 0);
	assert_hex(out, "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
			"731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
			"2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
			"21f9664c97637da9768812f615c68b13b52e");
	assert_hex(out + len, "c0875924c1c7987947deafd8780acf49");
	assert_int_equal(wg_xaead_open(back, key, nonce, out, len, ad, 12), 0);
	assert_memory_equal(back, sunscreen, len);
	out[len] ^= 1;
	assert_int_equal(wg_xaead_open(back, key, nonce, out, len, ad, 12), -1);
}

static void test_hchacha20_draft(void **ctx)
{
	uint8_t key[32], nonce[16], out[32];

	(void)ctx;
	unhex(key, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
	unhex(nonce, "000000090000004a0000000031415927");
	wg_hchacha20(out, key, nonce);
	assert_hex(out, "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc");
}

static void test_blake2s_rfc7693(void **ctx)
{
	uint8_t out[32];

	(void)ctx;
	assert_int_equal(wg_hash(out, "abc", 3, NULL, 0), 0);
	assert_hex(out, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
	/* HASH(a || b) is the hash of the concatenation. */
	assert_int_equal(wg_hash(out, "a", 1, "bc", 2), 0);
	assert_hex(out, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
}

/* HMAC by its definition (RFC 2104) with BLAKE2s's 64-byte block. */
static void reference_hmac(uint8_t out[32], const uint8_t key[32], const uint8_t *m, size_t len)
{
	uint8_t ipad[64], opad[64], inner[32], *buf = malloc(64 + len);

	memset(ipad, 0x36, 64);
	memset(opad, 0x5c, 64);
	for (int i = 0; i < 32; i++) {
		ipad[i] ^= key[i];
		opad[i] ^= key[i];
	}
	memcpy(buf, ipad, 64);
	memcpy(buf + 64, m, len);
	wg_hash(inner, buf, 64 + len, NULL, 0);
	wg_hash(out, opad, 64, inner, 32);
	free(buf);
}

static void test_hmac_and_kdf(void **ctx)
{
	uint8_t key[32], got[32], want[32], t1[32], t2[32], t3[32], prk[32], buf[33];
	const uint8_t msg[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";

	(void)ctx;
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(wg_hmac(got, key, msg, sizeof msg - 1), 0);
	reference_hmac(want, key, msg, sizeof msg - 1);
	assert_memory_equal(got, want, 32);
	/* KDF3 = HKDF: T1 = HMAC(PRK, 1), T2 = HMAC(PRK, T1||2), T3 = HMAC(PRK, T2||3). */
	assert_int_equal(wg_kdf(t1, t2, t3, key, msg, sizeof msg - 1), 0);
	reference_hmac(prk, key, msg, sizeof msg - 1);
	buf[0] = 1;
	reference_hmac(want, prk, buf, 1);
	assert_memory_equal(t1, want, 32);
	memcpy(buf, want, 32);
	buf[32] = 2;
	reference_hmac(want, prk, buf, 33);
	assert_memory_equal(t2, want, 32);
	memcpy(buf, want, 32);
	buf[32] = 3;
	reference_hmac(want, prk, buf, 33);
	assert_memory_equal(t3, want, 32);
}

/* Keyed BLAKE2s with a 16-byte digest (the MAC of MAC1/MAC2): the digest
 * length is in the parameter block, so this is not a truncated BLAKE2s-256.
 * Expected values from Python's hashlib.blake2s(data, key=k, digest_size=16),
 * an independent implementation. */
static void test_keyed_blake2s(void **ctx)
{
	uint8_t key[32], out[16];

	(void)ctx;
	unhex(key, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
	assert_int_equal(wg_mac(out, key, 32, "abc", 3), 0);
	assert_hex(out, "61ba5f165c194692e09d12520cc4c74a");
	assert_int_equal(wg_mac(out, key, 16, "abc", 3), 0);
	assert_hex(out, "75296c2d2c0f51210b383f386bc8b1ff");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_x25519_rfc7748),
		cmocka_unit_test(test_chacha20poly1305_rfc8439),
		cmocka_unit_test(test_xchacha20poly1305_draft),
		cmocka_unit_test(test_hchacha20_draft),
		cmocka_unit_test(test_blake2s_rfc7693),
		cmocka_unit_test(test_hmac_and_kdf),
		cmocka_unit_test(test_keyed_blake2s),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
