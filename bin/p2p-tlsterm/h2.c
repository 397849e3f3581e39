/* h2.c: HTTP/2 toward clients (nghttp2, RFC 9113), on connections that
 * agreed on "h2" by ALPN. Each stream is one exchange, proxied to the
 * upstream over HTTP/1.1 as any other; nghttp2 checks the framing, the
 * pseudo-headers and the field names and values.
 *
 * Back-pressure both ways: window updates are sent only as the upstream
 * takes the request body (nghttp2_session_consume), so a client can never
 * have more in flight than the exchange's buffer holds; and a response
 * body is handed to nghttp2 only as it arrives (a deferred data source
 * resumed when there is more). */
#include <ctype.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decimal.h"
#include "log.h"
#include "tlsterm.h"

#define H2_HEADERS_MAX 16384
#define H2_STREAMS_MAX 100
#define H2_CONN_WINDOW (1 << 20)

struct h2req {
	int32_t id;
	char *hbuf;                 /* name\0value\0 ... */
	size_t hlen, nfields;
	int too_large;
	struct exchange *ex;
	uint64_t received, consumed;
	uint64_t born;              /* ms: a head not whole by header_timeout_ms ends the connection */
	int reset;                  /* RST_STREAM sent for a cut exchange */
	struct h2req *next;
};

struct h2conn {
	nghttp2_session *s;
	struct client *c;
	struct h2req *reqs;
	size_t nstreams;
	uint64_t idle_since;
	int goaway;
};

static struct h2req *find_req(struct h2conn *h, int32_t id)
{
	for (struct h2req *r = h->reqs; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
	struct h2conn *h = arg;
	struct h2req *r;

	(void)s;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (!(r = calloc(1, sizeof *r)))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	r->id = f->hd.stream_id;
	r->born = loop_now_ms();
	r->next = h->reqs;
	h->reqs = r;
	h->nstreams++;
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
		     const uint8_t *value, size_t vl, uint8_t flags, void *arg)
{
	struct h2conn *h = arg;
	struct h2req *r = find_req(h, f->hd.stream_id);
	size_t need = nl + vl + 2;

	(void)s;
	(void)flags;
	if (!r || r->ex)
		return 0;    /* trailers: dropped */
	if (r->hlen + need > H2_HEADERS_MAX || r->nfields >= HTTP_HEADERS_MAX + 4) {
		r->too_large = 1;
		return 0;
	}
	if (!r->hbuf && !(r->hbuf = malloc(H2_HEADERS_MAX + 1)))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	memcpy(r->hbuf + r->hlen, name, nl);
	r->hbuf[r->hlen + nl] = '\0';
	memcpy(r->hbuf + r->hlen + nl + 1, value, vl);
	r->hbuf[r->hlen + nl + 1 + vl] = '\0';
	r->hlen += need;
	r->nfields++;
	return 0;
}

/* The request as an http_msg, the way http1.c would have made it: the
 * pseudo-headers become the method, target and Host; Cookie fields are
 * joined (RFC 9113 8.2.3). 0, or an HTTP status to answer. */
static int build_msg(struct h2req *r, int end_stream, struct http_msg *m)
{
	const char *method = NULL, *path = NULL, *authority = NULL, *host = NULL;
	char *p, *end, *cookies = NULL;
	size_t clen = 0;

	memset(m, 0, sizeof *m);
	if (r->too_large)
		return 431;
	if (!r->hbuf)
		return 400;
	/* the fields, and one more for the Cookie fields joined */
	if (http_msg_alloc(m, r->hlen * 2 + 64, r->nfields + 1) < 0)
		return 503;
	cookies = m->block + r->hlen + 32;
	memcpy(m->block, r->hbuf, r->hlen);
	end = m->block + r->hlen;
	for (p = m->block; p < end;) {
		char *name = p, *value = p + strlen(p) + 1;

		p = value + strlen(value) + 1;
		if (!strcmp(name, ":method"))
			method = value;
		else if (!strcmp(name, ":path"))
			path = value;
		else if (!strcmp(name, ":authority"))
			authority = value;
		else if (name[0] == ':')
			continue;
		else if (!strcmp(name, "cookie")) {
			if (clen)
				memcpy(cookies + clen, "; ", 2), clen += 2;
			memcpy(cookies + clen, value, strlen(value));
			clen += strlen(value);
		} else {
			if (!strcmp(name, "host"))
				host = value;
			if (!strcmp(name, "connection"))
				http_note_connection(m, value);   /* nghttp2 refuses it; noted all the same */
			if (m->nh == m->hcap)
				return 431;
			m->h[m->nh].name = name;
			m->h[m->nh].name_len = strlen(name);
			m->h[m->nh].value = value;
			m->h[m->nh].value_len = strlen(value);
			m->nh++;
		}
	}
	if (clen) {
		cookies[clen] = '\0';
		if (m->nh == m->hcap)
			return 431;
		m->h[m->nh].name = "cookie";
		m->h[m->nh].name_len = 6;
		m->h[m->nh].value = cookies;
		m->h[m->nh].value_len = clen;
		m->nh++;
	}
	if (!method || !path || path[0] != '/' || !strcmp(method, "CONNECT") ||
	    strlen(path) > HTTP_LINE_MAX || strpbrk(path, " \t"))
		return !method || !path || path[0] != '/' ? 400 : !strcmp(method, "CONNECT") ? 405 : 414;
	if (http_find(m, "expect") && !strcasecmp(http_find(m, "expect")->value, "100-continue"))
		m->expect_continue = !end_stream;
	m->method = method;
	m->target = path;
	m->host = authority ? authority : host;
	m->minor = 1;
	m->keep_alive = 1;
	if (end_stream) {
		m->body = BODY_NONE;
	} else if (http_find(m, "content-length")) {
		char *e;

		m->length = strtoull(http_find(m, "content-length")->value, &e, 10);
		m->body = BODY_LENGTH;
	} else {
		m->body = BODY_CHUNKED;
	}
	return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
	struct h2conn *h = arg;
	struct h2req *r = find_req(h, f->hd.stream_id);
	struct http_msg m;
	int status;

	(void)s;
	if (!r)
		return 0;
	if (f->hd.type == NGHTTP2_DATA || (f->hd.type == NGHTTP2_HEADERS && r->ex)) {
		/* nghttp2 has checked the body against a Content-Length */
		if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && r->ex)
			r->ex->req_done = 1;
		return 0;
	}
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	status = build_msg(r, f->hd.flags & NGHTTP2_FLAG_END_STREAM, &m);
	free(r->hbuf);
	r->hbuf = NULL;
	if (!(r->ex = exchange_new(h->c, &m, r->id))) {
		http_msg_free(&m);
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	tt.st.h2_requests++;
	h->c->requests++;
	if (status) {
		if (!r->ex->req.method)
			r->ex->req.method = "GET";
		if (!r->ex->req.target)
			r->ex->req.target = "/";
		exchange_local(r->ex, status, "a malformed HTTP/2 request");
	} else {
		exchange_start(r->ex);
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *arg)
{
	struct h2conn *h = arg;
	struct h2req *r = find_req(h, id);

	(void)flags;
	if (!r || !r->ex || r->ex->local || buf_put(&r->ex->reqb, data, len) < 0) {
		/* nobody wants it: let the window open again at once */
		nghttp2_session_consume(s, id, len);
		return 0;
	}
	r->received += len;
	r->ex->bytes_in += len;
	r->ex->progress_ms = loop_now_ms();
	if (r->ex->req.body == BODY_LENGTH)
		r->ex->req_left = r->ex->req_left > len ? r->ex->req_left - len : 0;
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *arg)
{
	struct h2conn *h = arg;
	struct h2req *r = find_req(h, id);

	(void)s;
	(void)code;
	if (!r)
		return 0;
	if (r->ex)
		r->ex->phase = PH_DONE;
	else
		r->id = -1;
	if (r->ex && !r->ex->resp_done && !r->ex->reason[0])
		snprintf(r->ex->reason, sizeof r->ex->reason, "the client reset the stream");
	return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *out, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *arg)
{
	struct exchange *ex = src->ptr;
	size_t n = buf_len(&ex->respb);

	(void)s;
	(void)id;
	(void)arg;
	if (n > len)
		n = len;
	if (n) {
		memcpy(out, buf_head(&ex->respb), n);
		buf_consume(&ex->respb, n);
		ex->bytes_out += n;
		ex->progress_ms = loop_now_ms();
	}
	if (ex->resp_done && !buf_len(&ex->respb) && !ex->broken) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return (ssize_t)n;
	}
	if (ex->broken)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* resets the stream */
	if (!n) {
		ex->h2_deferred = 1;
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

/* Submit the response head (and its body as a data source). */
static int submit(struct h2conn *h, struct exchange *ex)
{
	nghttp2_nv nv[HTTP_HEADERS_MAX + 8];
	char status[24], lower[HTTP_HEAD_MAX + 1024], clen[24];
	size_t n = 0, used = 0;
	nghttp2_data_provider prd = { .source.ptr = ex, .read_callback = read_body };
	int has_body;

	nv[n++] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)status, 7,
				(size_t)(decimal_i64(status, ex->status) - status), 0 };
	if (ex->local) {
		const char *k;
		json_t *v;

		json_object_foreach(ex->local_headers, k, v) {
			size_t kl = strlen(k);

			if (used + kl + 1 > sizeof lower || n >= HTTP_HEADERS_MAX)
				break;
			for (size_t i = 0; i < kl; i++)
				lower[used + i] = (char)tolower((unsigned char)k[i]);
			nv[n++] = (nghttp2_nv){ (uint8_t *)lower + used, (uint8_t *)json_string_value(v), kl,
						strlen(json_string_value(v)), 0 };
			used += kl;
		}
		nv[n++] = (nghttp2_nv){ (uint8_t *)"content-length", (uint8_t *)clen, 14,
					(size_t)(decimal_u64(clen, buf_len(&ex->respb)) - clen), 0 };
		has_body = buf_len(&ex->respb) > 0;
	} else {
		const struct http_msg *m = &ex->resp;

		for (size_t i = 0; i < m->nh && n < HTTP_HEADERS_MAX; i++) {
			const struct header *hd = &m->h[i];

			if (http_is_hop_by_hop(hd->name, hd->name_len) || http_connection_has(m, hd->name) ||
			    used + hd->name_len > sizeof lower)
				continue;
			for (size_t k = 0; k < hd->name_len; k++)
				lower[used + k] = (char)tolower((unsigned char)hd->name[k]);
			nv[n++] = (nghttp2_nv){ (uint8_t *)lower + used, (uint8_t *)hd->value, hd->name_len,
						hd->value_len, 0 };
			used += hd->name_len;
		}
		has_body = m->body != BODY_NONE && strcmp(ex->req.method, "HEAD");
	}
	ex->resp_head_sent = 1;
	ex->h2_submitted = 1;
	return nghttp2_submit_response(h->s, ex->stream, nv, n, has_body ? &prd : NULL);
}

int h2_start(struct client *c)
{
	nghttp2_session_callbacks *cb;
	nghttp2_option *opt;
	struct h2conn *h = calloc(1, sizeof *h);
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_STREAMS_MAX },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)(tt.o.buffer < 65535 ? tt.o.buffer : 65535) },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, H2_HEADERS_MAX },
	};
	int rv;

	if (!h || nghttp2_session_callbacks_new(&cb) != 0) {
		free(h);
		return -1;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	if (nghttp2_option_new(&opt) != 0) {
		nghttp2_session_callbacks_del(cb);
		free(h);
		return -1;
	}
	nghttp2_option_set_no_auto_window_update(opt, 1);
	rv = nghttp2_session_server_new2(&h->s, cb, h, opt);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	if (rv != 0) {
		free(h);
		return -1;
	}
	if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
	    nghttp2_submit_window_update(h->s, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW - 65535) != 0) {
		nghttp2_session_del(h->s);
		free(h);
		return -1;
	}
	h->c = c;
	h->idle_since = loop_now_ms();
	c->h2c = h;
	c->h2 = 1;
	return 0;
}

static void drop_req(struct h2conn *h, struct h2req *r)
{
	for (struct h2req **pp = &h->reqs; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	h->nstreams--;
	free(r->hbuf);
	free(r);
}

void h2_free(struct client *c)
{
	struct h2conn *h = c->h2c;

	while (h->reqs) {
		struct h2req *r = h->reqs;

		if (r->ex)
			exchange_abort(r->ex, "the connection ended");
		r->ex = NULL;
		drop_req(h, r);
	}
	nghttp2_session_del(h->s);
	free(h);
	c->h2c = NULL;
}

static int read_in(struct client *c, struct h2conn *h)
{
	char buf[16384];
	int moved = 0;

	while (!c->io.drained && nghttp2_session_want_read(h->s) && !c->read_eof) {
		ssize_t n = io_read(&c->io, buf, sizeof buf);

		if (n == IO_AGAIN) {
			c->io.drained = 1;
			break;
		}
		if (n <= 0) {
			c->read_eof = 1;
			c->close_after = 1;
			return 1;
		}
		tt.st.bytes_in += (uint64_t)n;
		c->io.drained = io_drained(&c->io, n, sizeof buf);
		if (nghttp2_session_mem_recv(h->s, (const uint8_t *)buf, (size_t)n) < 0) {
			log_debug("%s: HTTP/2: a protocol error: closing", c->src);
			c->dead = 1;
			return 1;
		}
		moved = 1;
	}
	return moved;
}

static int write_out(struct client *c, struct h2conn *h)
{
	int moved = 0;

	for (;;) {
		while (buf_len(&c->out)) {
			ssize_t n = io_write(&c->io, buf_head(&c->out), buf_len(&c->out));

			if (n == IO_AGAIN)
				return moved;
			if (n < 0) {
				c->dead = 1;
				return 1;
			}
			tt.st.bytes_out += (uint64_t)n;
			buf_consume(&c->out, (size_t)n);
			moved = 1;
		}
		/* gather frames until the buffer is nearly full, then write */
		while (nghttp2_session_want_write(h->s) && buf_space(&c->out) >= 32768) {
			const uint8_t *data;
			ssize_t n = nghttp2_session_mem_send(h->s, &data);

			if (n < 0) {
				c->dead = 1;
				return 1;
			}
			if (n == 0)
				break;
			if (buf_put(&c->out, data, (size_t)n) < 0) {
				c->dead = 1;
				return 1;
			}
			moved = 1;
		}
		if (!buf_len(&c->out))
			return moved;
	}
}

/* Each stream's exchange one step on: the upstream, the window, the
 * response. */
static int streams(struct h2conn *h)
{
	int moved = 0;

	for (struct h2req *r = h->reqs; r; r = r->next) {
		struct exchange *ex = r->ex;
		uint64_t taken;

		if (!ex || ex->phase == PH_DONE)
			continue;
		moved |= exchange_pump_upstream(ex);
		if (ex->local && buf_len(&ex->reqb))
			ex->reqb.start = ex->reqb.end = 0;   /* answered here: the body goes nowhere */
		taken = r->received - buf_len(&ex->reqb);
		if (taken > r->consumed) {
			nghttp2_session_consume(h->s, r->id, (size_t)(taken - r->consumed));
			r->consumed = taken;
			moved = 1;
		}
		if (ex->send_continue && !ex->continue_sent && !ex->resp_ready) {
			nghttp2_nv nv = { (uint8_t *)":status", (uint8_t *)"100", 7, 3, 0 };

			nghttp2_submit_headers(h->s, NGHTTP2_FLAG_NONE, r->id, NULL, &nv, 1, NULL);
			ex->continue_sent = 1;
			moved = 1;
		}
		if (ex->resp_ready && !ex->h2_submitted) {
			if (submit(h, ex) != 0)
				nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, r->id, NGHTTP2_INTERNAL_ERROR);
			moved = 1;
		} else if (ex->h2_deferred && (buf_len(&ex->respb) || ex->resp_done || ex->broken)) {
			ex->h2_deferred = 0;
			nghttp2_session_resume_data(h->s, r->id);
			moved = 1;
		}
		if (ex->broken && !r->reset) {
			/* also when its response is under way: a client that opens
			 * no window would never let read_body say so */
			nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, r->id, NGHTTP2_INTERNAL_ERROR);
			ex->h2_submitted = 1;
			r->reset = 1;
			moved = 1;
		}
		if (ex->up)
			upstream_update_events(ex->up);
	}
	return moved;
}

/* Streams that nghttp2 has closed: their exchanges end (and are audited). */
static void reap_streams(struct h2conn *h)
{
	struct h2req *r = h->reqs, *next;

	for (; r; r = next) {
		next = r->next;
		if (r->id == -1 || (r->ex && r->ex->phase == PH_DONE)) {
			/* body bytes never taken still count against the
			 * connection's window: given back (the stream is gone) */
			if (r->received > r->consumed)
				nghttp2_session_consume(h->s, r->id, (size_t)(r->received - r->consumed));
			if (r->ex)
				exchange_finish(r->ex);
			r->ex = NULL;
			drop_req(h, r);
			h->idle_since = loop_now_ms();
		}
	}
}

int h2_pump(struct client *c)
{
	struct h2conn *h = c->h2c;
	int moved = read_in(c, h);

	if (!c->dead)
		moved |= streams(h);
	if (!c->dead)
		moved |= write_out(c, h);
	reap_streams(h);
	if (!c->dead && !nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s) &&
	    !buf_len(&c->out))
		c->dead = 1;
	if (c->read_eof && !buf_len(&c->out))
		c->dead = 1;
	return moved;
}

int h2_wants_read(struct client *c)
{
	return !c->read_eof && nghttp2_session_want_read(c->h2c->s);
}

int h2_wants_write(struct client *c)
{
	return buf_len(&c->out) > 0 || nghttp2_session_want_write(c->h2c->s);
}

int h2_idle(struct client *c)
{
	return !c->h2c->reqs && !nghttp2_session_want_write(c->h2c->s);
}

void h2_sweep(struct client *c, uint64_t now)
{
	struct h2conn *h = c->h2c;

	for (struct h2req *r = h->reqs; r; r = r->next) {
		if (r->ex && r->ex->phase != PH_DONE) {
			exchange_sweep(r->ex, now);
		} else if (!r->ex && r->id != -1 && now - r->born >= tt.o.header_timeout_ms) {
			/* a head begun and never finished (no CONTINUATION):
			 * nothing else can come on this connection; a client
			 * that does this gets no GOAWAY either */
			tt.st.timeouts++;
			log_info("%s: an HTTP/2 request head did not arrive in time: closing", c->src);
			c->dead = 1;
			return;
		}
	}
	if (tt.draining && !h->goaway) {
		/* no new streams; those in flight finish */
		nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->s),
				      NGHTTP2_NO_ERROR, NULL, 0);
		h->goaway = 1;
	}
	if (tt.draining && !h->reqs)
		nghttp2_session_terminate_session(h->s, NGHTTP2_NO_ERROR);
	if (!h->reqs && now - h->idle_since >= tt.o.idle_timeout_ms) {
		nghttp2_session_terminate_session(h->s, NGHTTP2_NO_ERROR);
		h->idle_since = now;
	}
}
