/* authz-client.c: the check request for p2p-authz (p2p-ipc.7): the
 * resource, the host, the method and target as received, the overlay
 * source address (the WireGuard identity), and the two header fields a
 * decision reads, Authorization and Cookie, every copy of them. Written
 * straight as JSON: this is done for every request. */
#include <string.h>
#include <strings.h>

#include "tlsterm.h"

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

int authz_ask(struct exchange *ex, jsonl_fn *fn)
{
	struct jw w = { 0 }, h = { 0 };
	int r;

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
	r = w.failed || h.failed ? -1 : jsonl_call_raw(tt.authz, w.p, w.len, tt.o.authz_timeout_ms, fn, ex);
	jw_free(&w);
	jw_free(&h);
	return r;
}
