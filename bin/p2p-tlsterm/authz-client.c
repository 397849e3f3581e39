/* authz-client.c: the check request for p2p-authz (p2p-ipc.7): the
 * resource, the host, the method and target as received, the overlay
 * source address (the WireGuard identity), and the two header fields a
 * decision reads, Authorization and Cookie, every copy of them. Written
 * straight as JSON, and only when it is to be asked: a request whose
 * decision is kept is looked up by a key of the same inputs (check_key).
 *
 * An answer that p2p-authz says may be reused (reuse_ms) is kept for the
 * very same check (reuse.c), but only while this connection watches
 * p2p-authz: it tells of every change that can change a decision (the
 * policy, the map, a key set), and each change drops every answer kept.
 * No watch (the connection is new or gone, or p2p-authz is older), no
 * reuse: every request is asked. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "tlsterm.h"

#define WATCH_TIMEOUT_MS 5000

static struct {
	int asked;              /* a watch was sent on this connection */
	int live;               /* ... and p2p-authz took it */
	json_int_t generation;  /* of p2p-authz's decisions, as last told */
} watch;

static void on_watch(void *ctx, json_t *reply, const char *err)
{
	const char *event = json_string_value(json_object_get(reply, "event"));
	json_t *gen = json_object_get(reply, "generation");

	(void)ctx;
	reuse_clear();
	if (!reply) {           /* the connection went: ask again on the next */
		(void)err;
		watch.asked = watch.live = 0;
		return;
	}
	if (!json_is_integer(gen) || (!event && !json_is_true(json_object_get(reply, "ok")))) {
		/* refused (an older p2p-authz), or a line we cannot read */
		log_info("p2p-authz gave no watch: every request is asked");
		watch.live = 0; /* asked stays: not again on this connection */
		return;
	}
	watch.generation = json_integer_value(gen);
	watch.live = 1;
}

size_t authz_reuse_entries(void)
{
	return reuse_size();
}

int authz_watching(void)
{
	return watch.live;
}

/* The verdict for a check that was asked: kept when it may be reused and
 * no change was told since it was decided. */
static void on_check_reply(void *ctx, json_t *reply, const char *err)
{
	struct exchange *ex = ctx;
	json_t *reuse = json_object_get(reply, "reuse_ms"), *gen = json_object_get(reply, "generation");
	struct verdict *v = reply ? verdict_new(reply) : NULL;

	if (reply && !v)
		err = "out of memory";
	if (v && ex->check && watch.live && v->ok && json_is_integer(reuse) &&
	    json_integer_value(reuse) > 0 && json_integer_value(reuse) <= 3600000 &&
	    json_is_integer(gen) && json_integer_value(gen) == watch.generation &&
	    (v->status == 200 || v->status == 403))
		reuse_put(ex->check, ex->check_len, v, loop_now_ms() + (uint64_t)json_integer_value(reuse));
	if (!reply && !watch.live)
		watch.asked = 0; /* a refused watch: ask again on the next connection */
	free(ex->check);
	ex->check = NULL;
	ex->on_check(ex, v, err);
	verdict_unref(v);
}

/* "name":"value" or "name":["v1","v2"] for the fields called NAME. */
static void add_fields(struct jw *w, const struct http_msg *m, const char *name)
{
	size_t n = http_count(m, name), k = 0;

	if (!n)
		return;
	if (n == 1) {
		const struct header *h = http_find(m, name);

		jw_strn(w, name, h->value, h->value_len);
		return;
	}
	jw_raw(w, name, "[", 1);
	for (size_t i = 0; i < m->nh; i++) {
		struct jw one = { 0 };

		if (strcasecmp(m->h[i].name, name))
			continue;
		jw_strn(&one, "x", m->h[i].value, m->h[i].value_len);
		/* one is "x":"..." : keep the value */
		if (one.failed || one.len < 4) {
			w->failed = 1;
		} else {
			if (k++)
				jw_raw(w, NULL, ",", 1);
			jw_raw(w, NULL, one.p + 4, one.len - 4);
		}
		jw_free(&one);
	}
	jw_raw(w, NULL, "]", 1);
}

/* One field of a reuse key: its length in four bytes, then its bytes. */
static char *key_field(char *o, const char *end, const char *p, size_t n)
{
	if (!o || n > UINT32_MAX || (size_t)(end - o) < 4 + n)
		return NULL;
	o[0] = (char)(n >> 24);
	o[1] = (char)(n >> 16);
	o[2] = (char)(n >> 8);
	o[3] = (char)n;
	memcpy(o + 4, p, n);
	return o + 4 + n;
}

/* Each Authorization and Cookie field in the order they came, as a tag
 * ("a" or "c") and the value, both with their lengths: the tags keep the
 * two lists apart, so equal keys mean equal lists. One pass, the lengths
 * of the names compared first. */
static char *key_credentials(char *o, const char *end, const struct http_msg *m)
{
	for (size_t i = 0; o && i < m->nh; i++) {
		const struct header *h = &m->h[i];
		const char *tag = h->name_len == 13 && !strncasecmp(h->name, "authorization", 13) ? "a"
				  : h->name_len == 6 && !strncasecmp(h->name, "cookie", 6) ? "c"
				  : NULL;

		if (tag) {
			o = key_field(o, end, tag, 1);
			o = key_field(o, end, h->value, h->value_len);
		}
	}
	return o;
}

/* The reuse key of EX's check: every input of the check (resource, host,
 * method, target, source, each Authorization and Cookie field), each with
 * its length before it, so that two keys are equal only when the checks
 * would be. Made without JSON: the check itself is written only when it
 * is to be asked. Its length, or -1 when it would be longer than SIZE. */
static long check_key(const struct exchange *ex, char *out, size_t size)
{
	const char *end = out + size, *host = ex->req.host;
	char *o = out;

	o = key_field(o, end, ex->resource, strlen(ex->resource));
	o = key_field(o, end, host ? "1" : "0", 1);
	o = key_field(o, end, host ? host : "", host ? strlen(host) : 0);
	o = key_field(o, end, ex->req.method, strlen(ex->req.method));
	o = key_field(o, end, ex->req.target, strlen(ex->req.target));
	o = key_field(o, end, ex->c->peer_ip, strlen(ex->c->peer_ip));
	o = key_credentials(o, end, &ex->req);
	return o ? (long)(o - out) : -1;
}

int authz_ask(struct exchange *ex, verdict_fn *fn)
{
	static char key[REUSE_KEY_MAX];
	struct jw w = { 0 }, h = { 0 };
	long klen = tt.o.reuse_max ? check_key(ex, key, sizeof key) : -1;
	struct verdict *hit;
	int r;

	if (klen >= 0 && watch.live && (hit = reuse_get(key, (size_t)klen, loop_now_ms()))) {
		tt.st.authz_reused++;
		verdict_ref(hit);  /* FN may end the exchange, and a change the entry */
		fn(ex, hit, NULL);
		verdict_unref(hit);
		return 0;
	}
	jw_str(&w, "op", "check", 16);
	jw_str(&w, "resource", ex->resource, sizeof ex->resource);
	if (ex->req.host)
		jw_str(&w, "host", ex->req.host, HTTP_HEAD_MAX);
	jw_str(&w, "method", ex->req.method, 64);
	jw_str(&w, "path", ex->req.target, HTTP_HEAD_MAX);
	jw_str(&w, "source", ex->c->peer_ip, ADDR_STRLEN);
	add_fields(&h, &ex->req, "authorization");
	add_fields(&h, &ex->req, "cookie");
	jw_raw(&w, "headers", "{", 1);
	if (h.len)
		jw_raw(&w, NULL, h.p, h.len);
	jw_raw(&w, NULL, "}", 1);
	if (w.failed || h.failed) {
		r = -1;
	} else {
		if (tt.o.reuse_max && !watch.asked) {
			/* sent first on the connection: told of changes before any answer */
			if (jsonl_watch(tt.authz, "\"op\":\"watch\"", 12, WATCH_TIMEOUT_MS, on_watch, NULL) == 0)
				watch.asked = 1;
		}
		ex->on_check = fn;
		if (klen >= 0 && (ex->check = malloc((size_t)klen + 1))) {
			memcpy(ex->check, key, (size_t)klen);   /* kept until the answer */
			ex->check_len = (size_t)klen;
		}
		r = jsonl_call_raw(tt.authz, w.p, w.len, tt.o.authz_timeout_ms, on_check_reply, ex);
		if (r < 0) {
			free(ex->check);
			ex->check = NULL;
		}
	}
	jw_free(&w);
	jw_free(&h);
	return r;
}
