/* key.h: WireGuard keys (Curve25519, 32 bytes) in wg(8)'s base64 and in the
 * UAPI's lower-case hex. */
#ifndef P2P_KEY_H
#define P2P_KEY_H

#include <stdint.h>

#define KEY_LEN 32
#define KEY_B64_LEN 44   /* without the NUL */
#define KEY_HEX_LEN 64

/* Decoders are strict: exact length, canonical padding, no whitespace. */
int key_from_base64(uint8_t key[KEY_LEN], const char *text);
void key_to_base64(char out[KEY_B64_LEN + 1], const uint8_t key[KEY_LEN]);
int key_from_hex(uint8_t key[KEY_LEN], const char *text);
void key_to_hex(char out[KEY_HEX_LEN + 1], const uint8_t key[KEY_LEN]);

/* A new private key, clamped as wg genkey does. 0 or -1. */
int key_generate(uint8_t priv[KEY_LEN]);
/* The X25519 public key of PRIV. 0 or -1. */
int key_public(uint8_t pub[KEY_LEN], const uint8_t priv[KEY_LEN]);

/* Overwrite a secret in a way the compiler does not optimise away. */
void key_wipe(void *p, unsigned long len);

#endif
