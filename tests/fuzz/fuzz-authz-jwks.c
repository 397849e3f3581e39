/* fuzz: p2p-authz */
/* fuzz-authz-jwks.c: JWKS documents (a file or an identity provider's
 * answer) into keyset_parse(). A refusal says why; an accepted set has at
 * least one key, each able to verify something. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	json_object_seed(1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[200] = "";
	struct keyset *ks = keyset_parse((const char *)data, size, err, sizeof err);

	if (!ks) {
		if (!err[0])
			abort();
		return 0;
	}
	if (ks->n == 0)
		abort();
	for (size_t i = 0; i < ks->n; i++)
		if (!ks->keys[i].algs || (!ks->keys[i].cjose && !ks->keys[i].evp))
			abort();
	keyset_free(ks);
	return 0;
}
