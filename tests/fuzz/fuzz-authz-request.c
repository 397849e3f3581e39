/* fuzz: p2p-authz */
/* fuzz-authz-request.c: check requests (one JSON line of authz.sock) into
 * authz_decide(), with a policy of every kind of route, a map of two
 * clients and a key set in a file made at start. Every request is either
 * refused as malformed (with a message) or decided: a known status, allow
 * exactly when 200, a rule and a reason, and on allow the headers to strip
 * (the identity headers first). A path that was allowed is in normal form. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authz.h"
#include "../unit/authz-tokens.h"

#define NOW ((time_t)1800000000)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct authz a;

static const char policy_fmt[] =
	"{\"providers\":{\"idp\":{\"issuer\":\"https://idp.test\",\"audience\":\"p2p\","
	"\"jwks_file\":\"%s\",\"cookie\":\"p2p_token\",\"jwks_min_interval\":0}},"
	"\"resources\":{\"apps\":{\"provider\":\"idp\",\"routes\":["
	"{\"path\":\"/health\",\"auth\":\"none\"},"
	"{\"prefix\":\"/public\",\"allow\":\"any\"},"
	"{\"prefix\":\"/alice\",\"methods\":[\"GET\"],\"allow\":{\"users\":[\"alice\"]}},"
	"{\"prefix\":\"/ops/\",\"auth\":\"wireguard\",\"allow\":{\"groups\":[\"ops\"]}},"
	"{\"prefix\":\"/both\",\"auth\":[\"jwt\",\"wireguard\"],\"allow\":[{\"groups\":[\"eng\"]},"
	"{\"claims\":{\"level\":[1,\"x\"]}}]}]}}}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static struct tkey ec;
	struct tkey *one[] = { &ec };
	char path[] = "/tmp/fuzz-authz-jwks.XXXXXX", err[200], policy[4096];
	struct policy_errors errs = { 0 };
	char *jwks;
	int fd;
	json_t *clients, *resources;

	(void)argc;
	(void)argv;
	json_object_seed(1);
	tk_init(&ec, T_EC256, "ec1", 0);
	jwks = tk_jwks(one, 1);
	fd = mkstemp(path);
	if (fd < 0 || write(fd, jwks, strlen(jwks)) != (ssize_t)strlen(jwks))
		abort();
	close(fd);
	free(jwks);
	snprintf(policy, sizeof policy, policy_fmt, path);
	a.cfg.skew = 60;
	a.cfg.token_max = TOKEN_MAX_DEFAULT;
	a.cfg.assertion_lifetime = 120;
	a.cfg.assertion_issuer = "p2p-authz";
	a.policy = policy_load("policy.json", policy, strlen(policy), &errs);
	a.keys = keystore_new(NULL, NULL, NULL, NULL);
	a.cache = dcache_new(64);
	a.signer = signer_generate(err, sizeof err);
	if (!a.policy || !a.keys || !a.cache || !a.signer ||
	    keystore_prepare(a.keys, a.policy, &errs) < 0)
		abort();
	unlink(path); /* the set is in memory now; a re-read fails and keeps it */
	clients = json_pack("{s:{s:s,s:s,s:[s,s]},s:{s:s}}",
		"alice-laptop", "addr", "100.96.1.10", "user", "alice", "groups", "eng", "ops",
		"kiosk", "addr", "100.96.1.12");
	resources = json_pack("{s:{s:[s,s]}}", "apps", "names", "apps.corp.test", "*.apps.corp.test");
	authz_set_map(&a, clients, resources);
	json_decref(clients);
	json_decref(resources);
	return 0;
}

static void check_reply(json_t *f)
{
	int status = (int)json_integer_value(json_object_get(f, "status"));
	const char *decision = json_string_value(json_object_get(f, "decision"));
	const char *path = json_string_value(json_object_get(f, "path"));

	if (status != 200 && status != 400 && status != 401 && status != 403 && status != 503)
		abort();
	if (!decision || (strcmp(decision, "allow") == 0) != (status == 200))
		abort();
	if (!json_is_string(json_object_get(f, "rule")) || !json_is_string(json_object_get(f, "reason")))
		abort();
	if (!json_is_object(json_object_get(f, "identity")))
		abort();
	if (status == 200) {
		json_t *strip = json_object_get(f, "strip");
		char norm[4096];
		const char *why;

		if (strcmp(json_string_value(json_array_get(strip, 0)), "x-p2p-user") != 0)
			abort();
		if (path && (path_normalise(path, norm, sizeof norm, &why) < 0 || strcmp(norm, path)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *req = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL), *f = NULL;
	struct keysource *wait = NULL;
	char error[300] = "";
	enum decide_outcome o;

	if (!json_is_object(req)) {
		json_decref(req);
		return 0;
	}
	o = authz_decide(&a, req, NOW, &f, error, sizeof error, &wait);
	if (o == WAIT_FOR_KEYS)
		abort(); /* a file source never waits */
	if (f)
		check_reply(f);
	else if (!error[0])
		abort();
	json_decref(f);
	json_decref(req);
	if (dcache_size(a.cache) > 64)
		abort();
	return 0;
}
