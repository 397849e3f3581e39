/* fuzz: p2p-authz */
/* fuzz-authz-policy.c: policy.json text into policy_load(). A refused
 * policy must say why; a loaded one is matched against a few paths and
 * methods (every route, with its own path or prefix, must match itself or
 * be shadowed by an earlier route), then freed. */
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
	json_object_seed(1); /* the same input takes the same path every run */
	return 0;
}

static void match_everything(const struct policy *p)
{
	static const char *const paths[] = { "/", "/health", "/alice", "/alice/x", "/public/a" };
	static const char *const methods[] = { "GET", "POST", "DELETE" };

	for (size_t i = 0; i < p->nresources; i++) {
		const struct resource_policy *r = &p->resources[i];

		if (policy_resource(p, r->name) == NULL)
			abort();
		for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++)
			for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++)
				(void)policy_match(r, paths[k], methods[m]);
		for (size_t k = 0; k < r->nroutes; k++) {
			const struct route *rt = &r->routes[k];
			const char *self = rt->path ? rt->path : rt->prefix;
			const struct route *hit;

			if (!self || !rt->auth)
				abort(); /* a loaded route has a path and a mechanism */
			hit = policy_match(r, self, rt->methods ?
					   json_string_value(json_array_get(rt->methods, 0)) : "GET");
			if (!hit || hit > rt)
				abort();
			if (!(rt->auth & AUTH_NONE) && !rt->allow_any && rt->nallow && !rt->allow)
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_errors errs = { 0 };
	struct policy *p = policy_load("policy.json", (const char *)data, size, &errs);

	if (!p) {
		if (errs.count == 0) {
			fprintf(stderr, "policy refused without a reason\n");
			abort();
		}
		policy_errors_clear(&errs);
		return 0;
	}
	if (errs.count != 0)
		abort();
	match_everything(p);
	policy_free(p);
	return 0;
}
