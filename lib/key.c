/* key.c: key encodings and generation, all primitives from OpenSSL. */
#include "key.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

int key_from_base64(uint8_t key[KEY_LEN], const char *text)
{
	unsigned char buf[33];
	char again[KEY_B64_LEN + 1];

	if (strlen(text) != KEY_B64_LEN || text[KEY_B64_LEN - 1] != '=' ||
	    text[KEY_B64_LEN - 2] == '=')
		return -1;
	/* 44 characters decode to 33 bytes, the last of them padding. */
	if (EVP_DecodeBlock(buf, (const unsigned char *)text, KEY_B64_LEN) != 33)
		return -1;
	memcpy(key, buf, KEY_LEN);
	/* Reject non-canonical encodings (stray low bits in the last symbol). */
	key_to_base64(again, key);
	key_wipe(buf, sizeof buf);
	if (strcmp(again, text) != 0) {
		key_wipe(again, sizeof again);
		key_wipe(key, KEY_LEN);
		return -1;
	}
	key_wipe(again, sizeof again);
	return 0;
}

void key_to_base64(char out[KEY_B64_LEN + 1], const uint8_t key[KEY_LEN])
{
	EVP_EncodeBlock((unsigned char *)out, key, KEY_LEN);
	out[KEY_B64_LEN] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int key_from_hex(uint8_t key[KEY_LEN], const char *text)
{
	if (strlen(text) != KEY_HEX_LEN)
		return -1;
	for (int i = 0; i < KEY_LEN; i++) {
		int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			key_wipe(key, KEY_LEN);
			return -1;
		}
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void key_to_hex(char out[KEY_HEX_LEN + 1], const uint8_t key[KEY_LEN])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < KEY_LEN; i++) {
		out[2 * i] = digits[key[i] >> 4];
		out[2 * i + 1] = digits[key[i] & 15];
	}
	out[KEY_HEX_LEN] = '\0';
}

int key_generate(uint8_t priv[KEY_LEN])
{
	if (RAND_priv_bytes(priv, KEY_LEN) != 1)
		return -1;
	priv[0] &= 248;
	priv[31] = (uint8_t)((priv[31] & 127) | 64);
	return 0;
}

int key_public(uint8_t pub[KEY_LEN], const uint8_t priv[KEY_LEN])
{
	EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, KEY_LEN);
	size_t len = KEY_LEN;
	int ok;

	if (!pkey)
		return -1;
	ok = EVP_PKEY_get_raw_public_key(pkey, pub, &len) == 1 && len == KEY_LEN;
	EVP_PKEY_free(pkey);
	return ok ? 0 : -1;
}

void key_wipe(void *p, unsigned long len)
{
	OPENSSL_cleanse(p, len);
}
