/* authz.h: p2p-authz's parts.
 *
 *   policy.c     reads and checks policy.json (p2p-policy.5) and matches
 *                a request's path and method to a route
 *   path.c       the request path in the one form routes are matched on
 *   b64.c        strict base64url
 *   keyset.c     a JWKS: its verification keys, checked against their use
 *   jwt.c        a bearer token verified against a key set and a provider
 *   fetch.c      key sets read from files or fetched over HTTPS (libcurl's
 *                multi interface in the event loop), cached, kept stale
 *   cache.c      the decision cache
 *   assertion.c  the connector's ES256 key and the signed identity assertion
 *   decide.c     a check request in, a decision out
 *   main.c       options, authz.sock, reloads, the loop
 */
#ifndef P2P_AUTHZ_H
#define P2P_AUTHZ_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "loop.h"

#define POLICY_FILE_MAX (16u << 20)
#define POLICY_ERRORS_MAX 50
#define JWKS_MAX (1u << 20)          /* bytes of a JWKS, read or fetched */
#define JWKS_KEYS_MAX 100
#define TOKEN_MAX_DEFAULT 16384      /* bytes; longer tokens are refused unread */
#define SKEW_DEFAULT 60              /* seconds of clock skew allowed */
#define ASSERTION_LIFETIME_DEFAULT 120
#define CACHE_ENTRIES_DEFAULT 65536
#define CACHE_TTL_MAX 300            /* seconds a decision may be reused */

/* ---- policy.c ---- */

struct policy_errors {
	char *msg[POLICY_ERRORS_MAX];
	int count;        /* how many were found; only POLICY_ERRORS_MAX are kept */
};
void policy_errors_add(struct policy_errors *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void policy_errors_clear(struct policy_errors *e);

/* JWS algorithms, as bits. */
enum {
	ALG_RS256 = 1 << 0, ALG_RS384 = 1 << 1, ALG_RS512 = 1 << 2,
	ALG_PS256 = 1 << 3, ALG_PS384 = 1 << 4, ALG_PS512 = 1 << 5,
	ALG_ES256 = 1 << 6, ALG_ES384 = 1 << 7, ALG_ES512 = 1 << 8,
	ALG_EDDSA = 1 << 9,
	ALG_ALL = (1 << 10) - 1,
};
/* The bit of NAME ("RS256"), or 0 for an algorithm we never accept. */
unsigned alg_from_name(const char *name);
const char *alg_name(unsigned alg);

/* How a route learns who is asking. */
enum { AUTH_NONE = 1, AUTH_WIREGUARD = 2, AUTH_JWT = 4 };

struct provider {
	const char *name;
	const char *issuer;
	json_t *audience;        /* array of strings */
	const char *jwks;        /* file path or https URL */
	int jwks_is_url;
	const char *cookie;      /* NULL: only Authorization: Bearer */
	unsigned algs;
	const char *user_claim, *groups_claim;
	long jwks_max_age, jwks_min_interval;
	int forward_token;
};

/* One entry of a route's "allow": every condition given must hold. NULL
 * members are not conditions. */
struct allow {
	json_t *users, *groups, *clients;   /* arrays of strings */
	json_t *claims;                     /* claim -> array of scalars */
};

struct route {
	char id[96];             /* "apps/routes/2" */
	const char *path;        /* exact path, or */
	const char *prefix;      /* prefix on a segment boundary */
	json_t *methods;         /* array of strings, or NULL for any */
	unsigned auth;           /* AUTH_* bits */
	const struct provider *provider;
	int allow_any;           /* "allow": "any" */
	struct allow *allow;
	size_t nallow;
};

struct resource_policy {
	const char *name;
	struct route *routes;
	size_t nroutes;
};

struct policy {
	json_t *doc;
	json_int_t version;      /* 0 when the file gives none */
	struct provider *providers;
	size_t nproviders;
	struct resource_policy *resources;
	size_t nresources;
};

/* Parse and check TEXT (the content of FILE, named in messages); NULL with
 * every problem in ERRS. */
struct policy *policy_load(const char *file, const char *text, size_t len,
			   struct policy_errors *errs);
void policy_free(struct policy *p);
const struct resource_policy *policy_resource(const struct policy *p, const char *name);
/* The first route matching PATH (normalised) and METHOD, or NULL. */
const struct route *policy_match(const struct resource_policy *r, const char *path,
				 const char *method);
int route_matches_path(const struct route *rt, const char *path);

/* ---- path.c ---- */

/* Put TARGET's path (without its query or fragment) in its normal form
 * into OUT: unreserved characters percent-decoded, other escapes in
 * upper-case hex, dot segments removed, repeated slashes merged. Returns 0,
 * or -1 with the reason in WHY for a path that must not be forwarded (not
 * beginning with '/', an escaped '/', '\' or NUL, a bad escape, a control
 * or non-ASCII byte). */
int path_normalise(const char *target, char *out, size_t outsize, const char **why);

/* ---- b64.c ---- */

/* Strict base64url without padding; returns the decoded length or -1. OUT
 * needs room for (LEN * 3) / 4 bytes. */
long b64url_decode(const char *in, size_t len, uint8_t *out);
/* Encodes LEN bytes into OUT (room for (LEN * 4 + 2) / 3 + 1); returns the
 * length written (without the NUL). */
size_t b64url_encode(const uint8_t *in, size_t len, char *out);

/* ---- keyset.c ---- */

struct jwk_key {
	char *kid;               /* NULL when the key has none */
	unsigned algs;           /* the algorithms this key may verify */
	void *cjose;             /* cjose_jwk_t for RSA and EC */
	void *evp;               /* EVP_PKEY for OKP (Ed25519, Ed448) */
};

struct keyset {
	struct jwk_key *keys;
	size_t n;
	size_t skipped;          /* keys not for signatures (use, kty, key_ops) */
};

/* Parse a JWKS ({"keys":[...]}); NULL with a reason in ERR. */
struct keyset *keyset_parse(const char *text, size_t len, char *err, size_t errsize);
void keyset_free(struct keyset *ks);

/* ---- jwt.c ---- */

enum jwt_outcome {
	JWT_OK,
	JWT_INVALID,       /* refused: 401 */
	JWT_UNKNOWN_KID,   /* no key with its kid: 401, unless a refresh finds it */
};

struct jwt_params {
	const char *issuer;
	json_t *audience;         /* array of strings */
	unsigned algs;
	long skew;
	size_t max_len;
};

struct jwt_result {
	char reason[200];         /* why it was refused; no token material */
	json_t *claims;           /* on JWT_OK: the payload (caller decrefs) */
	char alg[8];
	char kid[64];             /* as in the header, cut for messages */
};

/* Verify TOKEN against KS and P at time NOW. */
enum jwt_outcome jwt_verify(const char *token, size_t len, const struct jwt_params *p,
			    const struct keyset *ks, time_t now, struct jwt_result *out);

/* ---- fetch.c ---- */

/* Key sets by source (a file or an https URL), shared by the providers
 * that name it and kept across policy reloads. */
struct keystore;
struct keysource;

/* Called when a fetch of SRC ended, well or not. */
typedef void keystore_fn(struct keystore *ks, struct keysource *src, void *arg);

/* LOOP may be NULL (tests, fuzzing, -n): URLs are then never fetched. */
struct keystore *keystore_new(struct loop *loop, const char *cafile, keystore_fn *done,
			      void *arg);
void keystore_free(struct keystore *ks);
/* Make sure every provider of P has its source (file sources are read now;
 * a file that cannot be read or parsed is an error in ERRS), then drop the
 * sources no provider of P names. Returns 0 or -1. */
int keystore_prepare(struct keystore *ks, const struct policy *p, struct policy_errors *errs);
void keystore_retain(struct keystore *ks, const struct policy *p);
struct keysource *keystore_source(struct keystore *ks, const char *jwks);
/* The key set to verify with (fresh or stale), or NULL. */
const struct keyset *keysource_set(const struct keysource *src);
/* Is a fetch of SRC under way? */
int keysource_busy(const struct keysource *src);
/* Ask for a new copy because a token names an unknown kid (or there is no
 * set at all). Returns 1 when a read or fetch was started or done (for a
 * file, it is done on return), 0 when the rate limit forbids it now. */
int keysource_refresh(struct keystore *ks, struct keysource *src, time_t now);
/* Whether keys changed since the last call (the decision cache is then
 * cleared, so a key taken out of the set stops working at once). */
int keystore_changed(struct keystore *ks);
json_t *keystore_status(const struct keystore *ks);
/* Curl's work when the loop hands us events: for tests only. */
size_t keystore_count(const struct keystore *ks);

/* ---- cache.c ---- */

#define CACHE_KEY_LEN 32
struct dcache;
struct dcache *dcache_new(size_t max);
void dcache_free(struct dcache *c);
/* The cached reply fields for KEY (borrowed), or NULL when absent or
 * expired at NOW. */
json_t *dcache_get(struct dcache *c, const uint8_t key[CACHE_KEY_LEN], time_t now, time_t *expires);
/* Keep FIELDS (a reference is taken) until EXPIRES. */
void dcache_put(struct dcache *c, const uint8_t key[CACHE_KEY_LEN], json_t *fields,
		time_t expires, time_t now);
void dcache_clear(struct dcache *c);
size_t dcache_size(const struct dcache *c);

/* ---- assertion.c ---- */

struct signer;
/* Load the P-256 private key in PATH (PEM); when CREATE and PATH does not
 * exist, make one and write it there, mode 0600. NULL with ERR. */
struct signer *signer_load(const char *path, int create, char *err, size_t errsize);
/* A key made in memory, for tests. */
struct signer *signer_generate(char *err, size_t errsize);
void signer_free(struct signer *s);
const char *signer_kid(const struct signer *s);
/* {"keys":[the public key]} (new reference). */
json_t *signer_jwks(const struct signer *s);
/* The compact ES256 JWS of CLAIMS (caller frees), or NULL. */
char *signer_sign(const struct signer *s, json_t *claims);

/* ---- decide.c ---- */

struct authz_config {
	long skew;
	size_t token_max;
	long assertion_lifetime;
	const char *assertion_issuer;
};

struct authz_stats {
	unsigned long checks, allow, unauthorized, forbidden, unavailable, bad_path, cached;
	uint64_t ns_cached, ns_uncached;
	unsigned long n_cached, n_uncached;
};

struct authz {
	struct authz_config cfg;
	struct policy *policy;
	struct keystore *keys;
	struct dcache *cache;
	struct signer *signer;       /* NULL: no assertion */
	json_t *clients;             /* overlay address -> {name, user, groups} */
	json_t *names;               /* lower-case host -> resource (exact) */
	json_t *wildcards;           /* lower-case suffix of "*.suffix" -> resource */
	int map_ready;
	uint64_t generation;         /* counts changes that can change a decision */
	struct authz_stats st;
};

/* A proxy may apply a decision again to the same check for at most this
 * long (reuse_ms; p2p-ipc(7)), and only until the generation changes. */
#define REUSE_MS_MAX 60000

/* The policy, the map or a key set changed: decisions made before may not
 * hold. Clears the cache and counts a new generation. */
void authz_changed(struct authz *a);

/* Rebuild the client and name indexes from the map's sections. */
void authz_set_map(struct authz *a, json_t *clients, json_t *resources);

enum decide_outcome { DECIDED, WAIT_FOR_KEYS };

/* Decide on the check request REQ at NOW. DECIDED: *FIELDS holds the reply's
 * members (new reference), or *ERROR a message for a request that is not a
 * valid check (its fields are then NULL). WAIT_FOR_KEYS: the decision needs
 * the key set of *WAIT, being fetched: ask again when it is done. With WAIT
 * NULL it is decided with the key sets there are (never WAIT_FOR_KEYS). */
enum decide_outcome authz_decide(struct authz *a, json_t *req, time_t now, json_t **fields,
				 char *error, size_t errsize, struct keysource **wait);

#endif
