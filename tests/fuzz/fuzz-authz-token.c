/* fuzz: p2p-authz */
/* fuzz-authz-token.c: bearer tokens into jwt_verify() against a key set of
 * an RSA, an EC P-256 and an Ed25519 key made at start. The first byte
 * chooses what the rest is:
 *   even  the token itself (header, payload, signature as given);
 *   odd   "HEADER\nCLAIMS": both encoded and signed here with the EC key,
 *         so the fuzzer reaches the header and claim checks behind a good
 *         signature.
 * A token is never accepted without the claims the provider demands. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "../unit/authz-tokens.h"

#define NOW ((time_t)1800000000)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tkey rsa, ec, ed;
static struct keyset *ks;
static json_t *audience;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct tkey *all[] = { &rsa, &ec, &ed };
	char err[200], *text;

	(void)argc;
	(void)argv;
	json_object_seed(1);
	tk_init(&rsa, T_RSA, "rsa1", 2048);
	tk_init(&ec, T_EC256, "ec1", 0);
	tk_init(&ed, T_ED25519, "ed1", 0);
	text = tk_jwks(all, 3);
	ks = keyset_parse(text, strlen(text), err, sizeof err);
	free(text);
	if (!ks) {
		fprintf(stderr, "key set: %s\n", err);
		abort();
	}
	audience = json_pack("[s]", "p2p");
	return 0;
}

static void check(const char *token, size_t len)
{
	struct jwt_params p = {
		.issuer = "https://idp.test", .audience = audience, .algs = ALG_ALL, .skew = 60,
		.max_len = TOKEN_MAX_DEFAULT,
	};
	struct jwt_result r;
	enum jwt_outcome o = jwt_verify(token, len, &p, ks, NOW, &r);

	if (o == JWT_OK) {
		json_t *exp = json_object_get(r.claims, "exp");

		if (!r.claims || strcmp(json_string_value(json_object_get(r.claims, "iss")),
					"https://idp.test") || !json_is_number(exp) ||
		    json_number_value(exp) + 60 < (double)NOW) {
			fprintf(stderr, "accepted a token without the claims we demand\n");
			abort();
		}
		json_decref(r.claims);
	} else if (r.claims || !r.reason[0]) {
		abort(); /* a refusal has a reason and no claims */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl;
	char *header, *claims, *token;

	if (size < 1 || size > 20000)
		return 0;
	if (!(data[0] & 1)) {
		char *copy = malloc(size);

		memcpy(copy, data + 1, size - 1); /* a buffer of its own, for ASan */
		check(copy, size - 1);
		free(copy);
		return 0;
	}
	nl = memchr(data + 1, '\n', size - 1);
	if (!nl || memchr(data + 1, '\0', size - 1))
		return 0;
	header = strndup((const char *)data + 1, (size_t)(nl - (const char *)data - 1));
	claims = strndup(nl + 1, size - (size_t)(nl + 1 - (const char *)data));
	token = tk_token_raw(&ec, "ES256", header, claims);
	check(token, strlen(token));
	free(token);
	free(header);
	free(claims);
	return 0;
}
