/* proxy.c: one request, from its head to its audit record.
 *
 *   head parsed ─> resource by Host (and SNI) ─> p2p-audit reachable?
 *     ─> p2p-authz check ─ deny ─> 400/401/403/503 made here
 *                        └ allow ─> route ─> head rebuilt for the upstream
 *     ─> upstream (pool or new) ─> body both ways, bounded ─> audit record
 *
 * The client's identity headers never pass: p2p-authz names the ones to
 * strip, and the forwarded head is rebuilt field by field from the parsed
 * request without them, without hop-by-hop fields, and without any
 * X-Forwarded-* or Forwarded the client wrote; the proxy's own come last. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/rand.h>

#include "log.h"
#include "tlsterm.h"

static uint64_t request_counter;
static uint32_t request_salt;

/* The request id: the salt in 8 hex digits, then the count in 12 (more
 * when it outgrows them), as "%08x%012llx" would write it. */
static void request_id(char out[40], uint32_t salt, unsigned long long count)
{
	static const char hex[] = "0123456789abcdef";
	char digits[16];
	int n = 0, i;

	for (i = 7; i >= 0; i--, salt >>= 4)
		out[i] = hex[salt & 15];
	do
		digits[n++] = hex[count & 15];
	while ((count >>= 4) != 0);
	for (i = n; i < 12; i++)
		digits[i] = '0';
	n = n > 12 ? n : 12;
	for (i = 0; i < n; i++)
		out[8 + i] = digits[n - 1 - i];
	out[8 + n] = '\0';
}

struct exchange *exchange_new(struct client *c, struct http_msg *req, int32_t stream)
{
	struct exchange *ex = calloc(1, sizeof *ex);

	if (!ex)
		return NULL;
	if (buf_init(&ex->reqb, tt.o.buffer) < 0 || buf_init(&ex->respb, tt.o.buffer) < 0) {
		buf_free(&ex->reqb);
		free(ex);
		return NULL;
	}
	if (!request_salt && RAND_bytes((unsigned char *)&request_salt, sizeof request_salt) != 1)
		request_salt = 1;
	ex->c = c;
	ex->stream = stream;
	ex->req = *req;
	memset(req, 0, sizeof *req);
	ex->start_ms = ex->progress_ms = loop_now_ms();
	clock_gettime(CLOCK_REALTIME, &ex->start_wall);
	request_id(ex->request_id, request_salt, ++request_counter);
	str_copy(ex->resource, sizeof ex->resource, c->resource);
	ex->keep_alive = ex->req.keep_alive;
	switch (ex->req.body) {
	case BODY_LENGTH:
		ex->req_left = ex->req.length;
		ex->req_done = ex->req_left == 0;
		break;
	case BODY_CHUNKED:
		break;
	default:
		ex->req_done = 1;
	}
	tt.st.requests++;
	return ex;
}

int exchange_wants_body(const struct exchange *ex)
{
	if (ex->tunnel || ex->tcp)
		return !ex->down_eof && !ex->local;
	return !ex->req_done && !ex->broken;
}

ssize_t exchange_request_body(struct exchange *ex, const char *in, size_t len)
{
	size_t used = 0;

	if (ex->tunnel || ex->tcp || ex->req.body == BODY_LENGTH) {
		size_t n = len, space = buf_space(&ex->reqb);

		if (!ex->tunnel && !ex->tcp && n > ex->req_left)
			n = (size_t)ex->req_left;
		if (n > space)
			n = space;
		if (ex->local) {
			/* answered already: what the client still sends is dropped */
		} else if (buf_put(&ex->reqb, in, n) < 0) {
			return 0;
		}
		if (!ex->tunnel && !ex->tcp) {
			ex->req_left -= n;
			ex->req_done = ex->req_left == 0;
		}
		ex->bytes_in += n;
		if (n)
			ex->progress_ms = loop_now_ms();
		return (ssize_t)n;
	}
	while (used < len && !ex->req_done) {
		const char *data, *why = NULL;
		size_t u = 0, dlen = 0, space = buf_space(&ex->reqb);
		int r = chunked_step(&ex->req_ck, in + used, len - used, space, &u, &data, &dlen, &why);

		if (r < 0) {
			log_info("%s: request %s: refused: %s", ex->c->src, ex->request_id, why);
			snprintf(ex->reason, sizeof ex->reason, "malformed chunked body: %s", why);
			return -1;
		}
		if (dlen && !ex->local && buf_put(&ex->reqb, data, dlen) < 0)
			return -1;
		ex->bytes_in += dlen;
		used += u;
		ex->req_done = r == 1;
		if (u == 0)
			break;
	}
	if (used)
		ex->progress_ms = loop_now_ms();
	return (ssize_t)used;
}

static void set_local_header(struct exchange *ex, const char *name, const char *value)
{
	if (!ex->local_headers)
		ex->local_headers = json_object();
	json_object_set_new(ex->local_headers, name, json_string(value));
}

void exchange_local(struct exchange *ex, int status, const char *why)
{
	char body[256];
	int n;

	if (ex->resp_head_sent) {
		ex->broken = 1;
		return;
	}
	jsonl_cancel(tt.authz, ex);
	/* closed by exchange_pump_upstream or exchange_finish, never here:
	 * this may run inside upstream_pump */
	if (ex->up)
		ex->up->dead = 1;
	if (ex->resp_ready && !ex->local)
		http_msg_free(&ex->resp);
	ex->local = 1;
	ex->tunnel = 0;
	ex->status = status;
	ex->progress_ms = loop_now_ms();   /* the client's time to take it starts */
	ex->resp_ready = 1;
	ex->resp_done = 1;
	if (why && !ex->reason[0])
		str_copy(ex->reason, sizeof ex->reason, why);
	ex->respb.start = ex->respb.end = 0;
	if (ex->tcp)
		return;    /* a TCP session is just closed */
	n = snprintf(body, sizeof body, "%d %s\n", status, http_reason(status));
	buf_put(&ex->respb, body, (size_t)n);
	set_local_header(ex, "Content-Type", "text/plain; charset=utf-8");
	set_local_header(ex, "Cache-Control", "no-store");
	/* the rest of a body we will not read: the connection cannot go on */
	if (!ex->req_done && ex->c && !ex->c->h2)
		ex->keep_alive = 0;
	if (ex->phase < PH_DONE)
		ex->phase = PH_UPSTREAM;
}

void exchange_upstream_failed(struct exchange *ex, int status, const char *why)
{
	tt.st.upstream_failures++;
	log_info("%s: request %s to %s: %s", ex->c->src, ex->request_id, ex->up_origin.key, why);
	if (ex->resp_head_sent) {
		str_copy(ex->reason, sizeof ex->reason, why);
		ex->broken = 1;
		ex->resp_done = 1;
		return;
	}
	exchange_local(ex, status, why);
}

/* ---- the head for the upstream ---- */

/* Whether the array of strings LIST holds NAME of LEN bytes (any case). */
static int in_list(json_t *list, const char *name, size_t len)
{
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v)
		if (json_is_string(v) && json_string_length(v) == len &&
		    !strncasecmp(json_string_value(v), name, len))
			return 1;
	return 0;
}

/* Fields the head for the upstream makes itself (by their length first:
 * this runs for every field of every request). */
static int forwarded_field(const char *name, size_t len)
{
	if (len >= 12 && !strncasecmp(name, "x-forwarded-", 12))
		return 1;
	switch (len) {
	case 4:
		return !strcasecmp(name, "host");
	case 6:
		return !strcasecmp(name, "expect");
	case 9:
		return !strcasecmp(name, "forwarded") || !strcasecmp(name, "x-real-ip");
	case 14:
		return !strcasecmp(name, "content-length");
	default:
		return 0;
	}
}

/* A Cookie value without the cookies named in DROP. A name is compared
 * without the blanks around it, as lenient cookie parsers (Go's, Node's)
 * read "\ttok =x" as the cookie tok. At most twice the value's length
 * (each ';' may become "; "). */
static void filter_cookies(struct buf *b, const char *value, json_t *drop)
{
	const char *p = value;
	int first = 1;

	while (*p) {
		const char *end = strchr(p, ';'), *eq;
		size_t n, nl;

		while (*p == ' ' || *p == '\t')
			p++;
		n = end ? (size_t)(end - p) : strlen(p);
		eq = memchr(p, '=', n);
		nl = eq ? (size_t)(eq - p) : n;
		while (nl && (p[nl - 1] == ' ' || p[nl - 1] == '\t'))
			nl--;
		if (n && !in_list(drop, p, nl)) {
			if (!first)
				buf_puts(b, "; ");
			buf_put(b, p, n);
			first = 0;
		}
		if (!end)
			break;
		p = end + 1;
	}
}

/* Whether the client's field NAME stops here: ours to write (forwarded
 * fields) or in the verdict's STRIP list (identity, credentials). A name
 * with '_' is looked at again with '-' for each: CGI-style servers (PHP,
 * WSGI, Rack) read X_P2P_User as they read X-P2P-User. */
static int field_stops(const char *name, size_t len, json_t *strip)
{
	char dashed[64];

	if (forwarded_field(name, len) || in_list(strip, name, len))
		return 1;
	if (len >= sizeof dashed || !memchr(name, '_', len))
		return 0;   /* every name of those lists is shorter */
	for (size_t i = 0; i < len; i++)
		dashed[i] = name[i] == '_' ? '-' : name[i];
	dashed[len] = '\0';
	return forwarded_field(dashed, len) || in_list(strip, dashed, len);
}

/* The head to send upstream: METHOD PATH HTTP/1.1, the client's fields
 * but those that must not pass, then ours. Every piece must fit (buf_put
 * is all or nothing): a head with a piece left out could end early, and
 * the rest of it, or the body, be read upstream as another request. */
int exchange_build_head(struct exchange *ex, const char *path)
{
	json_t *strip = ex->verdict->strip, *set = ex->verdict->set, *cookies = ex->verdict->strip_cookies;
	const struct http_msg *m = &ex->req;
	const char *host = m->host ? m->host : client_default_host(ex->c);
	struct buf b;
	const char *k;
	json_t *v;

	size_t need = strlen(path) + strlen(host) * 3 + 1024;
	const char *k0;
	json_t *v0;

	for (size_t i = 0; i < m->nh; i++) {
		need += m->h[i].name_len + m->h[i].value_len + 4;
		if (json_array_size(cookies) && !strcasecmp(m->h[i].name, "cookie"))
			need += m->h[i].value_len;   /* filter_cookies' "; " */
	}
	json_object_foreach(set, k0, v0)
		need += strlen(k0) + json_string_length(v0) + 4;
	if (buf_init(&b, need) < 0)
		return -1;
	buf_puts(&b, m->method);
	buf_puts(&b, " ");
	buf_puts(&b, path);
	buf_puts(&b, " HTTP/1.1\r\nHost: ");
	buf_puts(&b, host);
	buf_puts(&b, "\r\n");
	for (size_t i = 0; i < m->nh; i++) {
		const struct header *h = &m->h[i];

		if (http_is_hop_by_hop(h->name, h->name_len) || field_stops(h->name, h->name_len, strip) ||
		    (!ex->c->h2 && http_connection_has(m, h->name)))
			continue;
		if (json_array_size(cookies) && !strcasecmp(h->name, "cookie")) {
			size_t before = buf_len(&b);

			buf_puts(&b, "Cookie: ");
			filter_cookies(&b, h->value, cookies);
			if (buf_len(&b) == before + 8)
				b.end = b.start + before;   /* nothing left of it */
			else
				buf_puts(&b, "\r\n");
			continue;
		}
		buf_put(&b, h->name, h->name_len);
		buf_puts(&b, ": ");
		buf_put(&b, h->value, h->value_len);
		buf_puts(&b, "\r\n");
	}
	json_object_foreach(set, k, v) {
		if (!json_is_string(v) || strpbrk(json_string_value(v), "\r\n"))
			continue;
		buf_puts(&b, k);
		buf_puts(&b, ": ");
		buf_puts(&b, json_string_value(v));
		buf_puts(&b, "\r\n");
	}
	buf_puts(&b, "X-Forwarded-For: ");
	buf_puts(&b, ex->c->peer_ip);
	buf_puts(&b, "\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: ");
	buf_puts(&b, host);
	buf_puts(&b, ex->c->peer.family == AF_INET6 ? "\r\nForwarded: for=\"[" : "\r\nForwarded: for=");
	buf_puts(&b, ex->c->peer_ip);
	buf_puts(&b, ex->c->peer.family == AF_INET6 ? "]\";proto=https;host=\"" : ";proto=https;host=\"");
	buf_puts(&b, host);
	buf_puts(&b, "\"\r\nX-Request-Id: ");
	buf_puts(&b, ex->request_id);
	buf_puts(&b, "\r\n");
	if (ex->req.upgrade) {
		const struct header *u = http_find(m, "upgrade");

		buf_puts(&b, "Connection: upgrade\r\nUpgrade: ");
		buf_put(&b, u->value, u->value_len);
		buf_puts(&b, "\r\n");
	}
	if (ex->req.body == BODY_LENGTH) {
		buf_puts(&b, "Content-Length: ");
		buf_put_u64(&b, ex->req.length);
		buf_puts(&b, "\r\n");
	} else if (ex->req.body == BODY_CHUNKED) {
		buf_puts(&b, "Transfer-Encoding: chunked\r\n");
	}
	if (buf_puts(&b, "\r\n") < 0 || b.failed) {
		log_error("request %s: the head for the upstream did not fit in %zu bytes", ex->request_id, need);
		buf_free(&b);
		return -1;
	}
	ex->up_head = b.data;
	ex->up_head_len = buf_len(&b);
	return 0;
}

/* The path the upstream gets: the route's prefix taken off when it says
 * strip, under the upstream URL's own path. */
static void upstream_path(char *out, size_t size, const struct origin *o, const struct route *rt,
			  const char *norm, const char *query)
{
	const char *rest = norm;

	if (rt && rt->strip) {
		size_t n = strlen(rt->path);

		if (rt->path[n - 1] == '/')
			n--;
		rest = norm + n;
	}
	/* BASE [/] REST [?QUERY], cut to SIZE as snprintf would */
	{
		const char *part[] = { o->base, rest[0] == '/' ? "" : "/", rest, query ? "?" : "",
				       query ? query : "" };
		size_t at = 0;

		for (size_t i = 0; i < sizeof part / sizeof part[0] && at + 1 < size; i++) {
			size_t n = strnlen(part[i], size - 1 - at);

			memcpy(out + at, part[i], n);
			at += n;
		}
		out[at] = '\0';
	}
}

static void allowed(struct exchange *ex)
{
	const struct resource *r = site_by_resource(tt.site, ex->resource);
	const char *norm = ex->verdict->path;
	const char *query = strchr(ex->req.target, '?'), *why = NULL;
	const struct route *rt;
	char path[HTTP_LINE_MAX + 1100];
	int status = 502;

	if (!r || r->tcp || !norm) {
		exchange_local(ex, r ? 502 : 421, "the resource left the map");
		return;
	}
	rt = site_route(r, norm);
	ex->up_origin = rt ? rt->up : r->up;
	upstream_path(path, sizeof path, &ex->up_origin, rt, norm, query ? query + 1 : NULL);
	if (exchange_build_head(ex, path) < 0) {
		exchange_local(ex, 431, "the head for the upstream is too large");
		return;
	}
	ex->phase = PH_UPSTREAM;
	ex->progress_ms = loop_now_ms();
	if (!(ex->up = upstream_get(&ex->up_origin, ex, &status, &why))) {
		exchange_upstream_failed(ex, status, why ? why : "unable to connect");
		return;
	}
	if (ex->req.expect_continue && !ex->req_done)
		ex->send_continue = 1;
}

static void on_verdict(struct exchange *ex, struct verdict *v, const char *err)
{
	if (!v || !v->ok) {
		const char *e = v ? v->error : err;

		log_warning("request %s: p2p-authz: %s: answering 503", ex->request_id, e ? e : "error");
		tt.st.authz_unavailable++;
		exchange_local(ex, 503, "p2p-authz gave no decision");
		client_kick(ex->c);
		return;
	}
	ex->verdict = verdict_ref(v);
	if (v->resource)
		str_copy(ex->resource, sizeof ex->resource, v->resource);
	if (v->allow && v->status == 200) {
		if (ex->tcp)
			ex->phase = PH_UPSTREAM;
		else
			allowed(ex);
	} else {
		const char *wa = v->www_authenticate;

		tt.st.denied++;
		exchange_local(ex, v->status >= 400 && v->status <= 599 ? v->status : 403, NULL);
		if (wa && v->status == 401 && !strpbrk(wa, "\r\n"))
			set_local_header(ex, "WWW-Authenticate", wa);
	}
	client_kick(ex->c);
}

#ifdef TLSTERM_BENCH_NOCHECKS
/* make bench's p2p-tlsterm-nochecks (Makefile): every request allowed
 * without asking p2p-authz, with the path as received, to measure what
 * the check and the record cost. The verdict is made once a path and
 * kept, as a reused decision is, so that only the checking is left out.
 * Never in a program that is installed. */
static void bench_allow(struct exchange *ex)
{
	static struct { char path[256]; struct verdict *v; } kept[16];
	static unsigned next;
	const char *t = ex->req.target ? ex->req.target : "/", *q = strchr(t, '?');
	size_t len = q ? (size_t)(q - t) : strlen(t);
	struct verdict *v = NULL;

	for (size_t i = 0; i < sizeof kept / sizeof kept[0] && !v; i++)
		if (kept[i].v && strlen(kept[i].path) == len && !memcmp(kept[i].path, t, len))
			v = verdict_ref(kept[i].v);
	if (!v) {
		json_t *reply = json_pack("{s:b,s:s,s:i,s:s%}", "ok", 1, "decision", "allow", "status", 200,
					  "path", t, len);

		v = reply ? verdict_new(reply) : NULL;
		json_decref(reply);
		if (v && len < sizeof kept[0].path) {
			unsigned i = next++ % (sizeof kept / sizeof kept[0]);

			verdict_unref(kept[i].v);
			memcpy(kept[i].path, t, len);
			kept[i].path[len] = '\0';
			kept[i].v = verdict_ref(v);
		}
	}
	ex->phase = PH_AUTHZ;
	if (v)
		on_verdict(ex, v, NULL);
	else
		exchange_local(ex, 500, "out of memory");
	verdict_unref(v);
}
#endif

/* Whether HOST is an address, not a name: the one dialled (with or without
 * a port) or any IPv6 literal. */
static int is_ip_literal(const char *host, const struct client *c)
{
	size_t n = strlen(c->local_ip);

	return (!strncmp(host, c->local_ip, n) && (host[n] == '\0' || host[n] == ':')) ||
	       host[0] == '[';
}

void exchange_start(struct exchange *ex)
{
	struct client *c = ex->c;
	const char *host = ex->req.host, *sni = io_sni(&c->io);
	const struct resource *r = NULL, *tls_r;

	if (host)
		r = site_by_name(tt.site, host);
	if (!r && (!host || is_ip_literal(host, c)))
		r = site_by_resource(tt.site, c->resource);
	if (!r || r->tcp) {
		exchange_local(ex, 421, "no resource has that name here");
		return;
	}
	/* the TLS name: the SNI, or without one the address dialled, whose
	 * resource's certificate the client accepted */
	tls_r = sni ? site_by_name(tt.site, sni) : site_by_resource(tt.site, c->resource);
	if ((sni || tls_r) && tls_r != r) {
		exchange_local(ex, 421, "the Host is not a name of the resource the TLS name chose");
		return;
	}
	str_copy(ex->resource, sizeof ex->resource, r->name);
#ifdef TLSTERM_BENCH_NOCHECKS
	bench_allow(ex);
	return;
#endif
	if (!audit_available()) {
		tt.st.audit_unavailable++;
		exchange_local(ex, 503, "p2p-audit cannot be reached");
		return;
	}
	ex->phase = PH_AUTHZ;   /* before: a reused verdict moves it on at once */
	if (authz_ask(ex, on_verdict) < 0) {
		tt.st.authz_unavailable++;
		exchange_local(ex, 503, "p2p-authz cannot be reached");
	}
}

struct exchange *exchange_tcp(struct client *c)
{
	struct http_msg m = { 0 };
	struct exchange *ex;
	const struct resource *r = site_by_resource(tt.site, c->resource);

	if (!(m.block = malloc(10)))
		return NULL;
	memcpy(m.block, "CONNECT\0/", 10);
	m.method = m.block;
	m.target = m.block + 8;
	m.minor = 1;
	if (!(ex = exchange_new(c, &m, 0))) {
		free(m.block);
		return NULL;
	}
	ex->tcp = 1;
	ex->req_done = 0;
	tt.st.tcp_sessions++;
	if (!r || !r->tcp) {
		snprintf(ex->reason, sizeof ex->reason, "the resource left the map");
		ex->local = ex->resp_done = 1;
		return ex;
	}
	snprintf(ex->up_origin.key, sizeof ex->up_origin.key, "tcp://%s", "");
	{
		char a[ADDR_STRLEN];

		snprintf(ex->up_origin.key, sizeof ex->up_origin.key, "%s%s%s:%u",
			 r->tcp_addr.family == AF_INET6 ? "[" : "", addr_str(&r->tcp_addr, a),
			 r->tcp_addr.family == AF_INET6 ? "]" : "", r->tcp_port);
	}
	ex->phase = PH_AUTHZ;
	if (!audit_available() || authz_ask(ex, on_verdict) < 0) {
		snprintf(ex->reason, sizeof ex->reason, "%s cannot be reached",
			 audit_available() ? "p2p-authz" : "p2p-audit");
		ex->local = ex->resp_done = 1;
	}
	return ex;
}

/* TCP: once allowed, connect. */
static int tcp_connect(struct exchange *ex)
{
	const struct resource *r = site_by_resource(tt.site, ex->resource);
	int status = 502;

	if (!r || !r->tcp || !(ex->up = upstream_tcp(&r->tcp_addr, r->tcp_port, ex, &status))) {
		snprintf(ex->reason, sizeof ex->reason, "unable to connect to %.100s", ex->up_origin.key);
		ex->local = ex->resp_done = 1;
		return 1;
	}
	ex->status = 200;
	return 1;
}

/* Whether EX's upstream connection can serve another request: the whole
 * exchange went through it and nothing is left on it. */
static int upstream_reusable(const struct exchange *ex)
{
	return !ex->broken && !ex->tunnel && !ex->tcp && ex->resp_done && ex->req_done &&
	       ex->resp_ready && !ex->local && ex->resp.keep_alive && buf_len(&ex->up->in) == 0 &&
	       ex->up->body_end_queued && !ex->up->write_broken;
}

int exchange_pump_upstream(struct exchange *ex)
{
	int moved;

	if (ex->tcp && ex->phase == PH_UPSTREAM && !ex->up && !ex->local && !ex->resp_done)
		return tcp_connect(ex);
	if (!ex->up)
		return 0;
	moved = upstream_pump(ex->up);
	if (ex->up && ex->up->dead) {
		upstream_release(ex->up, 0);
		ex->up = NULL;
		moved = 1;
	} else if (ex->up && ex->c->h2c && upstream_reusable(ex)) {
		/* An HTTP/2 stream's response is all here: the connection goes
		 * back to the pool now, not when the stream ends, and its
		 * EPOLLIN stays as it was instead of being taken off and put
		 * back (two epoll_ctl). */
		upstream_release(ex->up, 1);
		ex->up = NULL;
	}
	if (ex->retry && !ex->up && !ex->local) {
		const char *why = NULL;
		int status = 502;

		ex->retry = 0;
		ex->retried = 1;
		log_debug("request %s: the upstream closed a kept-alive connection: trying again", ex->request_id);
		if (!(ex->up = upstream_get(&ex->up_origin, ex, &status, &why)))
			exchange_upstream_failed(ex, status, why ? why : "unable to connect");
	}
	return moved;
}

void exchange_sweep(struct exchange *ex, uint64_t now)
{
	struct upstream *up = ex->up;

	if (ex->phase != PH_UPSTREAM)
		return;
	if (ex->local) {
		/* an answer made here that the client does not take: it is cut
		 * (the connection, or the stream, ends) */
		if (!ex->broken && now >= ex->progress_ms + tt.o.body_timeout_ms) {
			tt.st.timeouts++;
			log_info("%s: request %s: the client took nothing of its %d for %u ms", ex->c->src,
				 ex->request_id, ex->status, tt.o.body_timeout_ms);
			ex->broken = 1;
		}
		return;
	}
	if (up && (up->state == UP_CONNECTING || up->state == UP_TLS) && now >= up->deadline) {
		tt.st.timeouts++;
		exchange_upstream_failed(ex, 504, "no connection to the upstream in time");
	} else if (up && !ex->resp_ready && !ex->tunnel && !ex->tcp &&
		   now >= ex->progress_ms + tt.o.response_timeout_ms) {
		tt.st.timeouts++;
		exchange_upstream_failed(ex, 504, "no response from the upstream in time");
	} else if (now >= ex->progress_ms + tt.o.body_timeout_ms && (ex->resp_ready || ex->tcp)) {
		tt.st.timeouts++;
		snprintf(ex->reason, sizeof ex->reason, "idle for %u ms", tt.o.body_timeout_ms);
		ex->broken = 1;
		ex->resp_done = 1;
	}
}

void exchange_finish(struct exchange *ex)
{
	jsonl_cancel(tt.authz, ex);
#ifndef TLSTERM_BENCH_NOCHECKS
	if (!ex->audited && !ex->redirect)
		audit_exchange(ex);
#endif
	if (ex->status >= 100 && ex->status < 600)
		tt.st.status[ex->status / 100]++;
	if (ex->up)
		upstream_release(ex->up, upstream_reusable(ex));
	http_msg_free(&ex->req);
	if (!ex->local)
		http_msg_free(&ex->resp);
	verdict_unref(ex->verdict);
	free(ex->check);
	json_decref(ex->local_headers);
	free(ex->up_head);
	buf_free(&ex->reqb);
	buf_free(&ex->respb);
	free(ex);
}

void exchange_abort(struct exchange *ex, const char *why)
{
	if (!ex->reason[0] && why)
		str_copy(ex->reason, sizeof ex->reason, why);
	ex->broken = 1;
	exchange_finish(ex);
}
