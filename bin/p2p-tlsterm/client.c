/* client.c: a downstream connection from the overlay.
 *
 *   accept ─> TLS handshake (SNI picks the certificate) ─ ALPN h2 ─> h2.c
 *                                                       └ else  ─> HTTP/1.1
 *   HTTP/1.1: head ─> exchange (proxy.c) ─> response, then the next
 *   request on the same connection, one at a time (pipelined requests wait
 *   in the input buffer).
 *
 * Everything a connection does happens in client_pump: read what there is
 * room for, parse, move bytes between the exchange and its upstream, write,
 * until nothing moves; then the events it waits for are set from its
 * state. Nothing is read while there is nowhere to put it: that is the
 * back-pressure. Objects are freed only at the top of an event, never in
 * the middle of a step. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "tlsterm.h"

#define CLIENT_IN 32768
#define CLIENT_OUT (tt.o.buffer + HTTP_HEAD_MAX + 1024)
#define PUMP_ROUNDS 64

static struct client *clients;
static size_t nclients;
static struct client *kick_head;
static struct loop_timer *kick_timer;

static void on_event(struct loop *loop, int fd, uint32_t events, void *arg);

size_t clients_open(void)
{
	return nclients;
}

static void client_free(struct client *c)
{
	if (c->ex) {
		exchange_abort(c->ex, c->read_eof ? "the client closed the connection" : "the connection failed");
		c->ex = NULL;
	}
	if (c->h2c)
		h2_free(c);
	if (c->kicked) {
		for (struct client **pp = &kick_head; *pp; pp = &(*pp)->kick_next)
			if (*pp == c) {
				*pp = c->kick_next;
				break;
			}
	}
	io_close(tt.loop, &c->io);
	buf_free(&c->in);
	buf_free(&c->out);
	if (c->prev)
		c->prev->next = c->next;
	else
		clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	nclients--;
	tt.st.open = nclients;
	free(c);
}

int client_buffers(struct client *c)
{
	if (!c->in.data && buf_init(&c->in, CLIENT_IN) < 0)
		return -1;
	if (!c->out.data && buf_init(&c->out, CLIENT_OUT) < 0)
		return -1;
	return 0;
}

/* A connection waiting for its next request holds no buffer (they go
 * back to the pool): thousands of idle kept-alive connections cost little. */
static void release_buffers(struct client *c)
{
	if (c->ex || buf_len(&c->in) || buf_len(&c->out) || !c->io.handshake_done)
		return;
	if (c->h2c && !h2_idle(c))
		return;
	buf_free(&c->in);
	buf_free(&c->out);
}

static void reap(struct client *c)
{
	if (c->dead && !c->in_pump)
		client_free(c);
}

int client_accept(int fd, int kind, const char *resource, const struct addr *local, uint16_t lport,
		  const struct addr *peer, uint16_t pport)
{
	struct client *c = calloc(1, sizeof *c);
	const struct resource *r = site_by_resource(tt.site, resource);
	int one = 1;

	if (!c)
		return -1;
	c->io.fd = fd;
	c->io.read_need = EPOLLIN;
	c->io.write_need = EPOLLOUT;
	c->kind = kind;
	c->local = *local;
	c->peer = *peer;
	c->lport = lport;
	c->pport = pport;
	addr_str(peer, c->peer_ip);
	addr_str(local, c->local_ip);
	snprintf(c->src, sizeof c->src, "%s%s%s:%u", peer->family == AF_INET6 ? "[" : "", c->peer_ip,
		 peer->family == AF_INET6 ? "]" : "", pport);
	snprintf(c->resource, sizeof c->resource, "%s", resource);
	if (r && r->nnames) {
		/* a name its certificate covers: the first that is not a
		 * wildcard, or the first wildcard as it is (certs_find finds it) */
		size_t i = 0;

		while (i + 1 < r->nnames && r->names[i][0] == '*')
			i++;
		snprintf(c->default_name, sizeof c->default_name, "%s",
			 r->names[i][0] == '*' ? r->names[0] : r->names[i]);
	}
	if (client_buffers(c) < 0)
		goto fail;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (kind == LK_HTTPS) {
		if (!(c->io.ssl = tls_server_new(fd, c->default_name)))
			goto fail;
	} else {
		c->io.handshake_done = 1;
	}
	if (loop_add_fd(tt.loop, fd, EPOLLIN, on_event, c) < 0)
		goto fail;
	c->io.registered = EPOLLIN;
	c->deadline = loop_now_ms() + tt.o.header_timeout_ms;
	c->next = clients;
	if (clients)
		clients->prev = c;
	clients = c;
	nclients++;
	tt.st.accepted++;
	tt.st.open = nclients;
	if (kind == LK_TCP) {
		if (!(c->ex = exchange_tcp(c))) {
			c->dead = 1;
			reap(c);
			return 0;
		}
		client_pump(c);
		reap(c);
	}
	return 0;
fail:
	if (c->io.ssl)
		SSL_free(c->io.ssl);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
	return -1;
}

/* ---- HTTP/1.1 ---- */

/* A response to a request that could not be parsed: no exchange, no
 * audit record (there is no request to speak of), and the end of the
 * connection, since where the next request begins is not known. */
static void refuse(struct client *c, int status, const char *why)
{
	tt.st.refused_parse++;
	tt.st.status[status / 100]++;
	log_info("%s: request refused with %d: %s", c->src, status, why);
	if (client_buffers(c) < 0) {
		c->dead = 1;
		return;
	}
	/* after what is still to go of the response before, whole; when there
	 * is no room left for it, the connection ends after that response */
	if (buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		       "Content-Length: %zu\r\nConnection: close\r\n\r\n%d %s\n", status,
		       http_reason(status), strlen(http_reason(status)) + 5, status, http_reason(status)) < 0)
		log_info("%s: no room for the %d after the response before: closing", c->src, status);
	c->close_after = 1;
	c->in.start = c->in.end = 0;
}

static void redirect(struct client *c, struct exchange *ex)
{
	const char *host = ex->req.host;
	const struct resource *r = host ? site_by_name(tt.site, host) : NULL;
	char name[300], loc[HTTP_LINE_MAX + 400];

	ex->redirect = 1;
	if (!r) {
		host = c->default_name[0] ? client_default_host(c) : NULL;
		r = host ? site_by_name(tt.site, host) : NULL;
	}
	if (!r || r->tcp) {
		exchange_local(ex, 421, "no resource has that name here");
		return;
	}
	snprintf(name, sizeof name, "%.*s", (int)strcspn(host, ":"), host);
	if (tt.o.https_port == 443)
		snprintf(loc, sizeof loc, "https://%s%s", name, ex->req.target);
	else
		snprintf(loc, sizeof loc, "https://%s:%u%s", name, tt.o.https_port, ex->req.target);
	exchange_local(ex, 308, NULL);
	json_object_set_new(ex->local_headers, "Location", json_string(loc));
}

static int h1_in(struct client *c)
{
	int moved = 0;

	if (!c->ex && !c->close_after && buf_len(&c->in)) {
		struct http_msg m;
		const char *why = NULL;
		size_t used = 0;
		int status = 400;
		int r = http_parse_request(buf_head(&c->in), buf_len(&c->in), &m, &used, &status, &why);

		if (r < 0) {
			http_msg_free(&m);
			refuse(c, status, why);
			return 1;
		}
		if (r == 0) {
			if (c->read_eof)
				c->close_after = 1;
			return 0;
		}
		buf_consume(&c->in, used);
		if (!(c->ex = exchange_new(c, &m, 0))) {
			http_msg_free(&m);
			refuse(c, 503, "out of memory");
			return 1;
		}
		c->requests++;
		if (c->kind == LK_REDIRECT)
			redirect(c, c->ex);
		else
			exchange_start(c->ex);
		moved = 1;
	}
	if (c->ex && exchange_wants_body(c->ex) && buf_len(&c->in)) {
		ssize_t n = exchange_request_body(c->ex, buf_head(&c->in), buf_len(&c->in));

		if (n < 0) {
			c->ex->keep_alive = 0;
			if (!c->ex->resp_head_sent)
				exchange_local(c->ex, 400, NULL);
			else
				c->ex->broken = 1;
			c->in.start = c->in.end = 0;
			return 1;
		}
		if (n > 0) {
			buf_consume(&c->in, (size_t)n);
			moved = 1;
		}
	}
	if (c->ex && c->read_eof && !buf_len(&c->in) && (c->ex->tunnel || c->ex->tcp) && !c->ex->down_eof) {
		c->ex->down_eof = 1;
		moved = 1;
	}
	return moved;
}

/* HTTP/1.1 STATUS REASON (STATUS 100..999, as the parsers let through) */
static void status_line(struct buf *b, int status, const char *reason)
{
	buf_puts(b, "HTTP/1.1 ");
	buf_put_u64(b, (uint64_t)(status < 0 ? 0 : status));
	buf_puts(b, " ");
	buf_puts(b, reason);
	buf_puts(b, "\r\n");
}

static int add_header(struct buf *b, const char *name, size_t nl, const char *value, size_t vl)
{
	if (buf_put(b, name, nl) < 0 || buf_put(b, ": ", 2) < 0 || buf_put(b, value, vl) < 0)
		return -1;
	return buf_put(b, "\r\n", 2);
}

/* The response head for the client, into OUT; -1 when it does not fit
 * yet. Framing is ours: chunked when the upstream's length is not known
 * and the client speaks HTTP/1.1. */
static int response_head(struct client *c, struct exchange *ex)
{
	char tmp[HTTP_HEAD_MAX + 4096];
	struct buf b = { .data = tmp, .cap = sizeof tmp };
	const struct http_msg *m = &ex->resp;
	int keep = ex->keep_alive && !c->close_after && c->kind != LK_TCP;

	if (ex->local) {
		const char *k;
		json_t *v;

		status_line(&b, ex->status, http_reason(ex->status));
		json_object_foreach(ex->local_headers, k, v)
			add_header(&b, k, strlen(k), json_string_value(v), strlen(json_string_value(v)));
		buf_puts(&b, "Content-Length: ");
		buf_put_u64(&b, buf_len(&ex->respb));
		buf_puts(&b, "\r\n");
		if (!ex->req_done)
			keep = 0;
	} else {
		status_line(&b, m->status, m->reason && m->reason[0] ? m->reason : http_reason(m->status));
		for (size_t i = 0; i < m->nh; i++) {
			const struct header *h = &m->h[i];

			if (ex->tunnel && h->name_len == 7 && !strcasecmp(h->name, "upgrade")) {
				add_header(&b, h->name, h->name_len, h->value, h->value_len);
				continue;
			}
			if (http_is_hop_by_hop(h->name, h->name_len) || http_connection_has(m, h->name))
				continue;
			if (h->name_len == 14 && !strcasecmp(h->name, "content-length") &&
			    m->body != BODY_LENGTH && m->body != BODY_NONE)
				continue;
			add_header(&b, h->name, h->name_len, h->value, h->value_len);
		}
		if (ex->tunnel) {
			buf_puts(&b, "Connection: upgrade\r\n");
		} else if (m->body == BODY_CHUNKED || m->body == BODY_CLOSE) {
			if (ex->req.minor >= 1) {
				buf_puts(&b, "Transfer-Encoding: chunked\r\n");
				ex->resp_chunked_out = 1;
			} else {
				keep = 0;
			}
		}
	}
	if (tt.draining)
		keep = 0;
	if (!ex->tunnel) {
		if (!keep)
			buf_puts(&b, "Connection: close\r\n");
		else if (ex->req.minor == 0)
			buf_puts(&b, "Connection: keep-alive\r\n");
	}
	if (buf_put(&b, "\r\n", 2) < 0)
		return -1;
	if (buf_space(&c->out) < buf_len(&b))
		return -1;
	buf_put(&c->out, b.data, buf_len(&b));
	ex->keep_alive = keep;
	ex->resp_head_sent = 1;
	return 0;
}

/* Response body from the exchange to OUT, framed. */
static int body_out(struct client *c, struct exchange *ex)
{
	int moved = 0;

	while (buf_len(&ex->respb)) {
		size_t space = buf_space(&c->out), n = buf_len(&ex->respb);

		if (ex->resp_chunked_out) {
			char hdr[24];
			int hl;

			if (space < 64)
				break;
			if (n > space - 32)
				n = space - 32;
			hl = snprintf(hdr, sizeof hdr, "%zx\r\n", n);
			buf_put(&c->out, hdr, (size_t)hl);
			buf_put(&c->out, buf_head(&ex->respb), n);
			buf_put(&c->out, "\r\n", 2);
		} else {
			if (!space)
				break;
			if (n > space)
				n = space;
			buf_put(&c->out, buf_head(&ex->respb), n);
		}
		buf_consume(&ex->respb, n);
		ex->bytes_out += n;
		ex->progress_ms = loop_now_ms();
		moved = 1;
	}
	return moved;
}

static void next_request(struct client *c)
{
	struct exchange *ex = c->ex;

	if (!ex->keep_alive || !ex->req_done || ex->broken)
		c->close_after = 1;
	c->ex = NULL;
	exchange_finish(ex);
	c->got_bytes = buf_len(&c->in) > 0;
	c->deadline = loop_now_ms() + (c->got_bytes ? tt.o.header_timeout_ms : tt.o.idle_timeout_ms);
}

static int h1_out(struct client *c)
{
	struct exchange *ex = c->ex;
	int moved = 0;

	if (!ex)
		return 0;
	if (ex->tcp) {
		moved |= body_out(c, ex);
		if ((ex->local || ex->resp_done || (ex->up_eof && !ex->up)) && !buf_len(&ex->respb)) {
			c->close_after = 1;
			c->ex = NULL;
			exchange_finish(ex);
			return 1;
		}
		if (ex->up_eof && !buf_len(&ex->respb) && !c->write_eof && !buf_len(&c->out)) {
			shutdown(c->io.fd, SHUT_WR);
			c->write_eof = 1;
			if (ex->down_eof) {
				c->close_after = 1;
				c->ex = NULL;
				exchange_finish(ex);
			}
			return 1;
		}
		return moved;
	}
	if (ex->send_continue && !ex->continue_sent && !ex->resp_ready &&
	    buf_put(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0) {
		ex->continue_sent = 1;
		moved = 1;
	}
	if (ex->broken && !ex->resp_head_sent) {
		/* cut (exchange_sweep) before its head could go */
		c->close_after = 1;
		c->ex = NULL;
		exchange_finish(ex);
		return 1;
	}
	if (ex->resp_ready && !ex->resp_head_sent) {
		if (response_head(c, ex) < 0)
			return moved;
		moved = 1;
	}
	if (!ex->resp_head_sent)
		return moved;
	moved |= body_out(c, ex);
	if (ex->tunnel) {
		if ((ex->up_eof || !ex->up || ex->broken) && !buf_len(&ex->respb)) {
			c->close_after = 1;
			c->ex = NULL;
			exchange_finish(ex);
			return 1;
		}
		return moved;
	}
	if (ex->broken) {
		/* the response cannot be completed: the client sees it cut */
		c->close_after = 1;
		c->ex = NULL;
		exchange_finish(ex);
		return 1;
	}
	if (ex->resp_done && !buf_len(&ex->respb)) {
		if (ex->resp_chunked_out && buf_put(&c->out, "0\r\n\r\n", 5) < 0)
			return moved;
		next_request(c);
		return 1;
	}
	return moved;
}

static int wants_read(struct client *c)
{
	if (c->dead || c->read_eof)
		return 0;
	if (!c->io.handshake_done)
		return 1;
	if (c->h2c)
		return h2_wants_read(c);
	if (c->close_after)
		return 0;
	if (!c->in.data)
		return !c->ex;   /* idle, its buffers given back */
	if (!c->ex)
		return buf_len(&c->in) < c->in.cap;
	return exchange_wants_body(c->ex) && buf_len(&c->in) < c->in.cap;
}

/* An HTTP/1.1 client waiting for its response reads nothing more (one
 * request at a time), but its EPOLLIN stays registered as long as nothing
 * is left unread: taking it off and putting it back cost two epoll_ctl a
 * request whenever the upstream had not answered at once. Once it fired
 * and bytes may be left (a pipelined request, a close), it is taken off,
 * or level-triggered epoll would call again and again. */
static int keeps_read(const struct client *c)
{
	return c->ex && (c->io.drained || !c->read_fired) && !c->dead && !c->read_eof &&
	       !c->close_after && (c->io.registered & EPOLLIN) && c->io.read_need == EPOLLIN;
}

static int read_in(struct client *c)
{
	int moved = 0;

	while (!c->io.drained && wants_read(c)) {
		size_t space = buf_space(&c->in);
		ssize_t n;

		if (!space)
			break;
		n = io_read(&c->io, buf_tail(&c->in), space);
		if (n == IO_AGAIN) {
			c->io.drained = 1;
			break;
		}
		if (n <= 0) {
			c->read_eof = 1;
			if (n < 0 || (!c->ex && !buf_len(&c->in)))
				c->close_after = 1;
			return 1;
		}
		if (!c->ex && !c->got_bytes) {
			c->got_bytes = 1;
			c->deadline = loop_now_ms() + tt.o.header_timeout_ms;
		}
		tt.st.bytes_in += (uint64_t)n;
		buf_produced(&c->in, (size_t)n);
		c->io.drained = io_drained(&c->io, n, space);
		moved = 1;
	}
	return moved;
}

static int flush_out(struct client *c)
{
	int moved = 0;

	while (buf_len(&c->out)) {
		ssize_t n = io_write(&c->io, buf_head(&c->out), buf_len(&c->out));

		if (n == IO_AGAIN)
			break;
		if (n < 0) {
			c->dead = 1;
			return 1;
		}
		tt.st.bytes_out += (uint64_t)n;
		buf_consume(&c->out, (size_t)n);
		moved = 1;
	}
	if (!buf_len(&c->out) && c->close_after && !c->ex)
		c->dead = 1;
	return moved;
}

static int handshake(struct client *c)
{
	char err[256];
	int r;

	if (c->io.handshake_done)
		return 0;
	r = io_handshake(&c->io, err, sizeof err);
	if (r == IO_AGAIN)
		return 0;
	if (r == IO_ERROR) {
		tt.st.handshake_failures++;
		log_debug("%s: TLS handshake failed: %s", c->src, err);
		c->dead = 1;
		return 1;
	}
	tt.st.handshakes++;
	if (io_alpn_h2(&c->io) && h2_start(c) < 0)
		c->dead = 1;
	return 1;
}

void client_pump(struct client *c)
{
	if (c->in_pump || c->dead)
		return;
	if (client_buffers(c) < 0) {
		log_warning("%s: out of memory: closing", c->src);
		c->dead = 1;
		return;
	}
	c->in_pump = 1;
	for (int round = 0; round < PUMP_ROUNDS && !c->dead; round++) {
		int moved = handshake(c);

		if (!c->io.handshake_done || c->dead)
			break;
		if (c->h2c) {
			moved |= h2_pump(c);
		} else {
			moved |= read_in(c);
			moved |= h1_in(c);
			if (c->ex)
				moved |= exchange_pump_upstream(c->ex);
			moved |= h1_out(c);
			moved |= flush_out(c);
		}
		if (!moved)
			break;
	}
	c->in_pump = 0;
	if (c->dead)
		return;
	release_buffers(c);
	if (c->h2c)
		io_update(tt.loop, &c->io, wants_read(c), h2_wants_write(c));
	else
		io_update(tt.loop, &c->io, wants_read(c) || keeps_read(c), buf_len(&c->out) > 0);
	if (!c->h2c && c->ex && c->ex->up)
		upstream_update_events(c->ex->up);
}

static void on_event(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct client *c = arg;

	(void)loop;
	(void)fd;
	c->io.drained = 0;
	if ((events & EPOLLERR) || ((events & EPOLLHUP) && !(events & EPOLLIN))) {
		c->read_eof = 1;
		c->dead = 1;
	} else {
		c->read_fired = (events & EPOLLIN) != 0;
		client_pump(c);
		c->read_fired = 0;
	}
	reap(c);
}

void client_pump_event(struct client *c)
{
	client_pump(c);
	reap(c);   /* not left for the sweep: its upstream's events would come again until then */
}

static void run_kicks(struct loop *loop, void *arg)
{
	(void)loop;
	(void)arg;
	kick_timer = NULL;
	while (kick_head) {
		struct client *c = kick_head;

		kick_head = c->kick_next;
		c->kicked = 0;
		client_pump(c);
		reap(c);
	}
}

void client_kick(struct client *c)
{
	if (c->kicked)
		return;
	c->kicked = 1;
	c->kick_next = kick_head;
	kick_head = c;
	if (!kick_timer)
		kick_timer = loop_timer_add(tt.loop, 0, run_kicks, NULL);
}

/* Timeouts; a connection is pumped only when something was due on it (an
 * idle one costs nothing here). */
static void sweep_one(struct client *c, uint64_t now)
{
	if (c->h2c) {
		h2_sweep(c, now);
	} else if (c->ex) {
		exchange_sweep(c->ex, now);
	} else if (tt.draining && !buf_len(&c->in) && !buf_len(&c->out)) {
		c->dead = 1;      /* between requests: nothing is lost */
		return;
	} else if (now >= c->deadline) {
		tt.st.timeouts++;
		if (c->io.handshake_done && buf_len(&c->in) && !c->close_after) {
			refuse(c, 408, "the request head did not arrive in time");
		} else {
			c->dead = 1;
			return;
		}
	} else {
		return;
	}
	client_pump(c);
}

void client_sweep(uint64_t now)
{
	struct client *c = clients, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->dead) {
			reap(c);
			continue;
		}
		sweep_one(c, now);
		next = c->next;
		reap(c);
	}
}

void clients_close_all(void)
{
	while (clients) {
		clients->dead = 1;
		clients->in_pump = 0;
		client_free(clients);
	}
	if (kick_timer)
		loop_timer_cancel(tt.loop, kick_timer);
	kick_timer = NULL;
}
