/* fetch.c: the providers' key sets, each from a file or an https URL.
 *
 * URLs are fetched with libcurl's multi interface driven by our event loop
 * (its sockets and its timer are the loop's), so a slow or dead identity
 * provider never holds up a decision that does not need it. A fetched set
 * is used until the answer's max-age (or the provider's jwks_max_age) runs
 * out, then fetched again; a token naming an unknown kid asks for a fetch
 * at most once every jwks_min_interval. When a fetch fails the set in hand
 * is kept however old (an IdP outage must not log everyone out, and a
 * missing set is a 503, not a 401: Envoy #41669), and the fetch is tried
 * again with a growing delay. */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authz.h"
#include "file.h"
#include "log.h"

#define FETCH_TIMEOUT_MS 10000
#define CONNECT_TIMEOUT_MS 5000
#define MAX_AGE_CAP 86400
#define BACKOFF_MAX 300

struct keysource {
	struct keysource *next;
	struct keystore *store;
	char *jwks;
	int is_url;
	int referenced;
	long max_age, min_interval;
	struct keyset *set;
	uint8_t digest[32];          /* of the text the set came from */
	time_t fetched_at, fresh_until, last_try;
	long backoff;
	unsigned long fetches, failures;
	char last_error[256];
	struct loop_timer *timer;    /* the next scheduled fetch */
	/* the fetch under way */
	CURL *easy;
	char *body;
	size_t len;
	long cc_max_age;             /* from Cache-Control, or -1 */
	int no_cache;
	char curl_error[CURL_ERROR_SIZE];
};

struct keystore {
	struct loop *loop;
	const char *cafile;
	CURLM *multi;
	struct loop_timer *curl_timer;
	keystore_fn *done;
	void *arg;
	struct keysource *sources;
	int changed;
};

static void start_fetch(struct keysource *src);

/* ---- libcurl in the loop ---- */

static void finish_transfers(struct keystore *ks);

static void on_curl_fd(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct keystore *ks = arg;
	int running, flags = 0;

	(void)loop;
	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(ks->multi, fd, flags, &running);
	finish_transfers(ks);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct keystore *ks = userp;
	uint32_t events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (socketp)
			loop_del_fd(ks->loop, fd);
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		events |= EPOLLOUT;
	if (socketp)
		return loop_mod_fd(ks->loop, fd, events);
	if (loop_add_fd(ks->loop, fd, events, on_curl_fd, ks) < 0) {
		log_error("unable to watch a socket of libcurl: %s", strerror(errno));
		return -1;
	}
	curl_multi_assign(ks->multi, fd, ks); /* marks it as ours */
	return 0;
}

static void on_curl_timeout(struct loop *loop, void *arg)
{
	struct keystore *ks = arg;
	int running;

	(void)loop;
	ks->curl_timer = NULL;
	curl_multi_socket_action(ks->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	finish_transfers(ks);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct keystore *ks = userp;

	(void)multi;
	if (ks->curl_timer) {
		loop_timer_cancel(ks->loop, ks->curl_timer);
		ks->curl_timer = NULL;
	}
	if (timeout_ms >= 0 &&
	    !(ks->curl_timer = loop_timer_add(ks->loop, (uint64_t)timeout_ms, on_curl_timeout, ks)))
		return -1;
	return 0;
}

/* Put SET (from TEXT) in place; the store counts as changed only when the
 * text differs, so reading the same file again keeps the decision cache. */
static void install(struct keysource *src, struct keyset *set, const char *text, size_t len)
{
	uint8_t digest[32];
	unsigned int n = sizeof digest;

	if (EVP_Digest(text, len, digest, &n, EVP_sha256(), NULL) != 1 ||
	    memcmp(digest, src->digest, sizeof digest) != 0 || !src->set)
		src->store->changed = 1;
	memcpy(src->digest, digest, sizeof digest);
	keyset_free(src->set);
	src->set = set;
}

/* ---- one fetch ---- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct keysource *src = arg;
	size_t len = size * n;
	char *bigger;

	if (src->len + len > JWKS_MAX)
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	bigger = realloc(src->body, src->len + len + 1);
	if (!bigger)
		return 0;
	src->body = bigger;
	memcpy(src->body + src->len, data, len);
	src->len += len;
	src->body[src->len] = '\0';
	return len;
}

/* Cache-Control: max-age=N, no-cache, no-store (RFC 9111 5.2.2). */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct keysource *src = arg;
	size_t len = size * n;
	char line[512], *p;

	if (len >= sizeof line || strncasecmp(data, "cache-control:", 14) != 0)
		return len;
	memcpy(line, data, len);
	line[len] = '\0';
	for (p = line + 14; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	if (strstr(line + 14, "no-cache") || strstr(line + 14, "no-store"))
		src->no_cache = 1;
	if ((p = strstr(line + 14, "max-age="))) {
		long v = strtol(p + 8, NULL, 10);

		if (v >= 0)
			src->cc_max_age = v;
	}
	return len;
}

static void on_refresh_timer(struct loop *loop, void *arg)
{
	struct keysource *src = arg;

	(void)loop;
	src->timer = NULL;
	start_fetch(src);
}

static void schedule(struct keysource *src, long seconds)
{
	struct keystore *ks = src->store;

	if (src->timer)
		loop_timer_cancel(ks->loop, src->timer);
	src->timer = loop_timer_add(ks->loop, (uint64_t)seconds * 1000, on_refresh_timer, src);
	if (!src->timer)
		log_error("%s: unable to schedule the next fetch: %s", src->jwks, strerror(errno));
}

static long clamp(long v, long lo, long hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void fetch_failed(struct keysource *src, const char *why)
{
	time_t now = time(NULL);

	src->failures++;
	snprintf(src->last_error, sizeof src->last_error, "%s", why);
	src->backoff = src->backoff ? src->backoff * 2 : (src->min_interval > 0 ? src->min_interval : 1);
	src->backoff = clamp(src->backoff, 1, BACKOFF_MAX);
	if (src->set)
		log_warning("%s: %s; keeping the %zu keys fetched %lld s ago, trying again in %ld s",
			    src->jwks, why, src->set->n, (long long)(now - src->fetched_at),
			    src->backoff);
	else
		log_error("%s: %s; no key set for its providers yet (their tokens get 503), "
			  "trying again in %ld s", src->jwks, why, src->backoff);
	schedule(src, src->backoff);
}

static void fetch_done(struct keysource *src, CURLcode rc)
{
	char why[512];
	long status = 0;
	struct keyset *set;

	curl_easy_getinfo(src->easy, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK) {
		snprintf(why, sizeof why, "fetch failed: %s%s%s", curl_easy_strerror(rc),
			 src->curl_error[0] ? ": " : "", src->curl_error);
		if (rc == CURLE_WRITE_ERROR && src->len + 1 > JWKS_MAX / 2)
			snprintf(why, sizeof why, "fetch failed: the key set is over %u bytes",
				 JWKS_MAX);
		fetch_failed(src, why);
	} else if (status != 200) {
		snprintf(why, sizeof why, "fetch failed: HTTP status %ld", status);
		fetch_failed(src, why);
	} else if (!(set = keyset_parse(src->body ? src->body : "", src->len, why, sizeof why))) {
		char msg[600];

		snprintf(msg, sizeof msg, "not a good key set: %s", why);
		fetch_failed(src, msg);
	} else {
		long age = src->cc_max_age >= 0 ? src->cc_max_age : src->max_age;

		if (src->no_cache)
			age = 0;
		age = clamp(age, src->min_interval > 0 ? src->min_interval : 1, MAX_AGE_CAP);
		install(src, set, src->body ? src->body : "", src->len);
		src->fetched_at = time(NULL);
		src->fresh_until = src->fetched_at + age;
		src->backoff = 0;
		src->last_error[0] = '\0';
		log_info("%s: %zu keys (%zu skipped), fetched again in %ld s", src->jwks, set->n,
			 set->skipped, age);
		schedule(src, age);
	}
	free(src->body);
	src->body = NULL;
	src->len = 0;
}

static void finish_transfers(struct keystore *ks)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(ks->multi, &left))) {
		struct keysource *src = NULL;
		CURL *easy = msg->easy_handle;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&src);
		fetch_done(src, msg->data.result);
		curl_multi_remove_handle(ks->multi, easy);
		curl_easy_cleanup(easy);
		src->easy = NULL;
		if (ks->done)
			ks->done(ks, src, ks->arg);
	}
}

static void start_fetch(struct keysource *src)
{
	struct keystore *ks = src->store;
	CURL *e;

	if (src->easy || !ks->multi)
		return;
	src->last_try = time(NULL);
	src->fetches++;
	src->cc_max_age = -1;
	src->no_cache = 0;
	src->curl_error[0] = '\0';
	e = curl_easy_init();
	if (!e) {
		fetch_failed(src, "unable to start a fetch: curl_easy_init failed");
		return;
	}
	if (curl_easy_setopt(e, CURLOPT_URL, src->jwks) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)FETCH_TIMEOUT_MS) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_WRITEDATA, src) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_HEADERDATA, src) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, src->curl_error) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PRIVATE, src) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_USERAGENT, "p2p-authz") != CURLE_OK ||
	    (ks->cafile && curl_easy_setopt(e, CURLOPT_CAINFO, ks->cafile) != CURLE_OK) ||
	    curl_multi_add_handle(ks->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		fetch_failed(src, "unable to start a fetch: libcurl refused an option");
		return;
	}
	src->easy = e;
	log_debug("%s: fetching", src->jwks);
}

/* ---- files ---- */

/* Read the file source again; 0, or -1 with WHY (the set in hand kept). */
static int read_file(struct keysource *src, char *why, size_t whysize)
{
	size_t len;
	char *text, err[300];
	struct keyset *set;

	src->last_try = time(NULL);
	src->fetches++;
	text = file_read(src->jwks, JWKS_MAX, &len);
	if (!text) {
		snprintf(why, whysize, "%s: %s", src->jwks,
			 errno == EFBIG ? "over 1 MiB" : strerror(errno));
		goto fail;
	}
	set = keyset_parse(text, len, err, sizeof err);
	if (!set) {
		free(text);
		snprintf(why, whysize, "%s: %s", src->jwks, err);
		goto fail;
	}
	install(src, set, text, len);
	free(text);
	src->fetched_at = src->last_try;
	src->last_error[0] = '\0';
	return 0;
fail:
	src->failures++;
	snprintf(src->last_error, sizeof src->last_error, "%s", why);
	return -1;
}

/* ---- the store ---- */

struct keystore *keystore_new(struct loop *loop, const char *cafile, keystore_fn *done,
			      void *arg)
{
	struct keystore *ks = calloc(1, sizeof *ks);

	if (!ks)
		return NULL;
	ks->loop = loop;
	ks->cafile = cafile;
	ks->done = done;
	ks->arg = arg;
	if (!loop)
		return ks;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(ks->multi = curl_multi_init())) {
		free(ks);
		errno = ENOMEM;
		return NULL;
	}
	curl_multi_setopt(ks->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(ks->multi, CURLMOPT_SOCKETDATA, ks);
	curl_multi_setopt(ks->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(ks->multi, CURLMOPT_TIMERDATA, ks);
	return ks;
}

static void source_free(struct keystore *ks, struct keysource *src)
{
	if (src->easy) {
		curl_multi_remove_handle(ks->multi, src->easy);
		curl_easy_cleanup(src->easy);
	}
	if (src->timer)
		loop_timer_cancel(ks->loop, src->timer);
	keyset_free(src->set);
	free(src->body);
	free(src->jwks);
	free(src);
}

void keystore_free(struct keystore *ks)
{
	if (!ks)
		return;
	while (ks->sources) {
		struct keysource *next = ks->sources->next;

		source_free(ks, ks->sources);
		ks->sources = next;
	}
	if (ks->curl_timer)
		loop_timer_cancel(ks->loop, ks->curl_timer);
	if (ks->multi) {
		curl_multi_cleanup(ks->multi);
		curl_global_cleanup();
	}
	free(ks);
}

struct keysource *keystore_source(struct keystore *ks, const char *jwks)
{
	for (struct keysource *s = ks->sources; s; s = s->next)
		if (strcmp(s->jwks, jwks) == 0)
			return s;
	return NULL;
}

int keystore_prepare(struct keystore *ks, const struct policy *p, struct policy_errors *errs)
{
	int rc = 0;

	for (struct keysource *s = ks->sources; s; s = s->next)
		s->referenced = 0;
	for (size_t i = 0; i < p->nproviders; i++) {
		const struct provider *pv = &p->providers[i];
		struct keysource *src = keystore_source(ks, pv->jwks);
		char why[600];
		int fresh = 0;

		if (!src) {
			src = calloc(1, sizeof *src);
			if (!src || !(src->jwks = strdup(pv->jwks))) {
				free(src);
				policy_errors_add(errs, "out of memory");
				return -1;
			}
			src->store = ks;
			src->is_url = pv->jwks_is_url;
			src->next = ks->sources;
			ks->sources = src;
			fresh = 1;
		}
		if (src->referenced) {
			/* two providers share it: the stricter rate limit wins */
			if (pv->jwks_min_interval > src->min_interval)
				src->min_interval = pv->jwks_min_interval;
			continue;
		}
		src->referenced = 1;
		src->max_age = pv->jwks_max_age;
		src->min_interval = pv->jwks_min_interval;
		if (!src->is_url) {
			if (read_file(src, why, sizeof why) < 0) {
				policy_errors_add(errs, ".providers.%s.jwks_file: %s", pv->name, why);
				rc = -1;
			}
		} else if (fresh) {
			start_fetch(src);
		}
	}
	return rc;
}

void keystore_retain(struct keystore *ks, const struct policy *p)
{
	struct keysource **pp = &ks->sources;

	while (*pp) {
		struct keysource *s = *pp;
		int used = 0;

		for (size_t i = 0; p && i < p->nproviders && !used; i++)
			used = strcmp(p->providers[i].jwks, s->jwks) == 0;
		if (used) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		source_free(ks, s);
	}
}

const struct keyset *keysource_set(const struct keysource *src)
{
	return src ? src->set : NULL;
}

int keysource_busy(const struct keysource *src)
{
	return src && src->easy != NULL;
}

int keysource_refresh(struct keystore *ks, struct keysource *src, time_t now)
{
	char why[600];

	(void)ks;
	if (src->easy)
		return 1;
	if (src->last_try && now - src->last_try < src->min_interval)
		return 0;
	if (!src->is_url) {
		if (read_file(src, why, sizeof why) < 0)
			log_warning("%s; keeping the key set in hand", why);
		else
			log_info("%s: read again for an unknown kid: %zu keys", src->jwks,
				 src->set->n);
		return 1;
	}
	if (!src->store->multi)
		return 0;
	log_info("%s: fetching again for an unknown kid", src->jwks);
	start_fetch(src);
	return src->easy != NULL;
}

int keystore_changed(struct keystore *ks)
{
	int c = ks->changed;

	ks->changed = 0;
	return c;
}

size_t keystore_count(const struct keystore *ks)
{
	size_t n = 0;

	for (const struct keysource *s = ks->sources; s; s = s->next)
		n++;
	return n;
}

json_t *keystore_status(const struct keystore *ks)
{
	json_t *out = json_array();
	time_t now = time(NULL);

	for (const struct keysource *s = ks->sources; s; s = s->next) {
		const char *state = !s->set ? "none" : !s->is_url ? "file" :
				    (now < s->fresh_until && !s->last_error[0]) ? "fresh" : "stale";

		json_array_append_new(out, json_pack("{s:s,s:s,s:I,s:s,s:I,s:I,s:I,s:b,s:s?}",
			"jwks", s->jwks,
			"kind", s->is_url ? "url" : "file",
			"keys", (json_int_t)(s->set ? s->set->n : 0),
			"state", state,
			"fetched_at", (json_int_t)(s->set ? s->fetched_at : 0),
			"fetches", (json_int_t)s->fetches,
			"failures", (json_int_t)s->failures,
			"fetching", s->easy != NULL,
			"last_error", s->last_error[0] ? s->last_error : NULL));
	}
	return out;
}
