/* test: lib */
/* test-key.c: lib/key.c, WireGuard keys. A key in the map must be read
 * exactly as wg(8) writes it (and nothing else: a mangled key is refused
 * rather than silently read as a different key), the public key must be the
 * real X25519 one (RFC 7748 vectors), and generated keys are clamped like
 * `wg genkey`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "key.h"

/* RFC 7748 section 6.1. */
#define ALICE_PRIV "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
#define ALICE_PUB  "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
#define BOB_PRIV   "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
#define BOB_PUB    "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
/* The same two Alice keys in standard base64 (as `wg pubkey` prints them). */
#define ALICE_PRIV_B64 "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="
#define ALICE_PUB_B64  "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void check_public(const char *priv_hex, const char *pub_hex)
{
	uint8_t priv[KEY_LEN], pub[KEY_LEN];
	char hex[KEY_HEX_LEN + 1];

	assert_int_equal(key_from_hex(priv, priv_hex), 0);
	assert_int_equal(key_public(pub, priv), 0);
	key_to_hex(hex, pub);
	assert_string_equal(hex, pub_hex);
}

static void test_rfc7748_public_keys(void **ctx)
{
	(void)ctx;
	check_public(ALICE_PRIV, ALICE_PUB);
	check_public(BOB_PRIV, BOB_PUB);
}

static void test_hex_codec(void **ctx)
{
	uint8_t key[KEY_LEN];
	char hex[KEY_HEX_LEN + 1];

	(void)ctx;
	assert_int_equal(key_from_hex(key, ALICE_PRIV), 0);
	assert_int_equal(key[0], 0x77);
	assert_int_equal(key[1], 0x07);
	assert_int_equal(key[31], 0x2a);
	key_to_hex(hex, key);
	assert_string_equal(hex, ALICE_PRIV);
	memset(key, 0xff, sizeof key);
	key_to_hex(hex, key);
	assert_string_equal(hex, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
}

static void test_hex_rejects(void **ctx)
{
	char upper[] = ALICE_PRIV, odd[] = ALICE_PRIV, space[] = ALICE_PRIV;
	char shorter[] = ALICE_PRIV, longer[KEY_HEX_LEN + 2];
	uint8_t key[KEY_LEN];

	(void)ctx;
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	assert_int_equal(key_from_hex(key, upper), -1);
	odd[10] = 'g';
	assert_int_equal(key_from_hex(key, odd), -1);
	odd[10] = 'A';   /* one upper-case digit is enough */
	assert_int_equal(key_from_hex(key, odd), -1);
	space[KEY_HEX_LEN - 1] = ' ';
	assert_int_equal(key_from_hex(key, space), -1);
	shorter[KEY_HEX_LEN - 1] = '\0';
	assert_int_equal(key_from_hex(key, shorter), -1);
	snprintf(longer, sizeof longer, "%s0", ALICE_PRIV);
	assert_int_equal(key_from_hex(key, longer), -1);
	assert_int_equal(key_from_hex(key, ""), -1);
	assert_int_equal(key_from_hex(key, "0x" ALICE_PRIV), -1);
}

static void test_base64_known_vector(void **ctx)
{
	uint8_t key[KEY_LEN], priv[KEY_LEN], pub[KEY_LEN];
	char b64[KEY_B64_LEN + 1];

	(void)ctx;
	assert_int_equal(key_from_hex(priv, ALICE_PRIV), 0);
	key_to_base64(b64, priv);
	assert_string_equal(b64, ALICE_PRIV_B64);
	assert_int_equal(key_from_base64(key, ALICE_PRIV_B64), 0);
	assert_memory_equal(key, priv, KEY_LEN);
	/* What `wg pubkey` would print for it. */
	assert_int_equal(key_public(pub, key), 0);
	key_to_base64(b64, pub);
	assert_string_equal(b64, ALICE_PUB_B64);
}

static void test_base64_round_trip(void **ctx)
{
	uint8_t key[KEY_LEN], back[KEY_LEN];
	char b64[KEY_B64_LEN + 1];
	unsigned seed = 12345;

	(void)ctx;
	for (int round = 0; round < 300; round++) {
		for (int i = 0; i < KEY_LEN; i++) {
			seed = seed * 1103515245u + 12345u;
			key[i] = round == 0 ? 0 : round == 1 ? 0xff : (uint8_t)(seed >> 16);
		}
		key_to_base64(b64, key);
		assert_int_equal(strlen(b64), KEY_B64_LEN);
		assert_int_equal(b64[KEY_B64_LEN - 1], '=');
		assert_int_equal(key_from_base64(back, b64), 0);
		assert_memory_equal(back, key, KEY_LEN);
	}
}

static void test_base64_rejects_noncanonical(void **ctx)
{
	uint8_t key[KEY_LEN];
	char b64[KEY_B64_LEN + 1];
	const char *pos;
	int idx;

	(void)ctx;
	/* The last symbol before '=' carries 4 data bits and 2 bits that must be
	 * zero; with them set the text names the same bytes, but is not what wg
	 * writes, so a second spelling of one key could dodge the duplicate-key
	 * check. */
	strcpy(b64, ALICE_PRIV_B64);
	pos = strchr(b64_alphabet, b64[KEY_B64_LEN - 2]);
	assert_non_null(pos);
	idx = (int)(pos - b64_alphabet);
	assert_int_equal(idx & 3, 0);
	for (int low = 1; low <= 3; low++) {
		b64[KEY_B64_LEN - 2] = b64_alphabet[idx | low];
		if (key_from_base64(key, b64) != -1)
			fail_msg("non-canonical %s accepted", b64);
	}
	/* The same for the all-zero key, "AAAA...A=". */
	memset(key, 0, sizeof key);
	key_to_base64(b64, key);
	b64[KEY_B64_LEN - 2] = 'B';
	assert_int_equal(key_from_base64(key, b64), -1);
}

static void test_base64_rejects_malformed(void **ctx)
{
	char buf[64];
	uint8_t key[KEY_LEN];

	(void)ctx;
	/* Missing '=' (43 characters), and '=' replaced by a symbol (44). */
	snprintf(buf, sizeof buf, "%.43s", ALICE_PRIV_B64);
	assert_int_equal(key_from_base64(key, buf), -1);
	snprintf(buf, sizeof buf, "%.43sA", ALICE_PRIV_B64);
	assert_int_equal(key_from_base64(key, buf), -1);
	/* Too long: an extra '=' or an extra symbol. */
	snprintf(buf, sizeof buf, "%s=", ALICE_PRIV_B64);
	assert_int_equal(key_from_base64(key, buf), -1);
	snprintf(buf, sizeof buf, "A%s", ALICE_PRIV_B64);
	assert_int_equal(key_from_base64(key, buf), -1);
	/* A 31-byte key ("==" padding) of the right length. */
	snprintf(buf, sizeof buf, "%.42s==", ALICE_PRIV_B64);
	assert_int_equal(key_from_base64(key, buf), -1);
	/* Characters outside the standard alphabet, URL-safe ones included. */
	strcpy(buf, ALICE_PRIV_B64);
	buf[5] = '!';
	assert_int_equal(key_from_base64(key, buf), -1);
	strcpy(buf, ALICE_PUB_B64);   /* holds a '/' */
	*strchr(buf, '/') = '_';
	assert_int_equal(key_from_base64(key, buf), -1);
	/* Whitespace anywhere, even replacing a character. */
	strcpy(buf, ALICE_PRIV_B64);
	buf[0] = ' ';
	assert_int_equal(key_from_base64(key, buf), -1);
	strcpy(buf, ALICE_PRIV_B64);
	buf[20] = '\n';
	assert_int_equal(key_from_base64(key, buf), -1);
	snprintf(buf, sizeof buf, "%s\n", ALICE_PRIV_B64);
	assert_int_equal(key_from_base64(key, buf), -1);
	assert_int_equal(key_from_base64(key, ""), -1);
	/* A hex key is not a base64 key. */
	assert_int_equal(key_from_base64(key, ALICE_PRIV), -1);
}

static void test_generate_clamps_and_differs(void **ctx)
{
	enum { N = 64 };
	static uint8_t keys[N][KEY_LEN];
	uint8_t pub[KEY_LEN], zero[KEY_LEN] = { 0 };

	(void)ctx;
	for (int i = 0; i < N; i++) {
		assert_int_equal(key_generate(keys[i]), 0);
		assert_int_equal(keys[i][0] & 7, 0);
		assert_int_equal(keys[i][31] & 128, 0);
		assert_int_equal(keys[i][31] & 64, 64);
		assert_int_equal(key_public(pub, keys[i]), 0);
		assert_memory_not_equal(pub, zero, KEY_LEN);
		for (int j = 0; j < i; j++)
			assert_memory_not_equal(keys[i], keys[j], KEY_LEN);
	}
}

static void test_public_ignores_clamp_bits(void **ctx)
{
	uint8_t priv[KEY_LEN], clamped[KEY_LEN], a[KEY_LEN], b[KEY_LEN];

	(void)ctx;
	/* Alice's key is not clamped; X25519 clamps, so wg sees one key. */
	assert_int_equal(key_from_hex(priv, ALICE_PRIV), 0);
	memcpy(clamped, priv, KEY_LEN);
	clamped[0] &= 248;
	clamped[31] = (uint8_t)((clamped[31] & 127) | 64);
	assert_int_equal(key_public(a, priv), 0);
	assert_int_equal(key_public(b, clamped), 0);
	assert_memory_equal(a, b, KEY_LEN);
}

static void test_wipe(void **ctx)
{
	uint8_t secret[KEY_LEN], zero[KEY_LEN] = { 0 };

	(void)ctx;
	memset(secret, 0xa5, sizeof secret);
	key_wipe(secret, sizeof secret);
	assert_memory_equal(secret, zero, KEY_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7748_public_keys),
		cmocka_unit_test(test_hex_codec),
		cmocka_unit_test(test_hex_rejects),
		cmocka_unit_test(test_base64_known_vector),
		cmocka_unit_test(test_base64_round_trip),
		cmocka_unit_test(test_base64_rejects_noncanonical),
		cmocka_unit_test(test_base64_rejects_malformed),
		cmocka_unit_test(test_generate_clamps_and_differs),
		cmocka_unit_test(test_public_ignores_clamp_bits),
		cmocka_unit_test(test_wipe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
