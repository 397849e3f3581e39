/* authz-client.c: the check request for p2p-authz (p2p-ipc.7): the
 * resource, the host, the method and target as received, the overlay
 * source address (the WireGuard identity), and the two header fields a
 * decision reads, Authorization and Cookie, every copy of them. */
#include <string.h>
#include <strings.h>

#include "tlsterm.h"

static void add_field(json_t *headers, const char *key, const struct header *h)
{
	json_t *v = json_stringn(h->value, h->value_len), *prev = json_object_get(headers, key);

	if (!v)
		return;
	if (!prev) {
		json_object_set_new(headers, key, v);
	} else if (json_is_array(prev)) {
		json_array_append_new(prev, v);
	} else {
		json_t *a = json_array();

		json_array_append(a, prev);
		json_array_append_new(a, v);
		json_object_set_new(headers, key, a);
	}
}

int authz_ask(struct exchange *ex, jsonl_fn *fn)
{
	json_t *headers = json_object(), *req;

	for (size_t i = 0; i < ex->req.nh; i++) {
		const struct header *h = &ex->req.h[i];

		if (!strcasecmp(h->name, "authorization"))
			add_field(headers, "authorization", h);
		else if (!strcasecmp(h->name, "cookie"))
			add_field(headers, "cookie", h);
	}
	req = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "op", "check", "resource", ex->resource,
			"method", ex->req.method, "path", ex->req.target, "source", ex->c->peer_ip,
			"headers", headers);
	if (!req)
		return -1;
	if (ex->req.host)
		json_object_set_new(req, "host", json_string(ex->req.host));
	return jsonl_call(tt.authz, req, tt.o.authz_timeout_ms, fn, ex);
}
