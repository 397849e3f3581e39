/* upstream.c: connections to the upstreams, and the pool that keeps them
 * open between requests (keyed by scheme, host and port).
 *
 * A connection writes its exchange's head and body (chunked when the
 * client's was, or when HTTP/2 gave no length) and reads the response into
 * the exchange, as far as the exchange's buffer has room: a full buffer
 * stops the reading, so a slow client slows the upstream and nothing
 * piles up here. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "tlsterm.h"

static struct upstream *idle_head;
static size_t nidle;

static void on_event(struct loop *loop, int fd, uint32_t events, void *arg);

static void unlink_idle(struct upstream *up)
{
	if (up->prev)
		up->prev->next = up->next;
	else if (idle_head == up)
		idle_head = up->next;
	if (up->next)
		up->next->prev = up->prev;
	up->next = up->prev = NULL;
	nidle--;
}

static void destroy(struct upstream *up)
{
	io_close(tt.loop, &up->io);
	buf_free(&up->in);
	buf_free(&up->out);
	free(up);
}

size_t upstreams_idle(void)
{
	return nidle;
}

static struct upstream *from_pool(const struct origin *o)
{
	for (struct upstream *up = idle_head; up; up = up->next)
		if (!strcmp(up->o.key, o->key)) {
			unlink_idle(up);
			return up;
		}
	return NULL;
}

static struct upstream *dial(const struct addr *a, uint16_t port, int *status, const char **why)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	struct upstream *up = calloc(1, sizeof *up);
	int one = 1;

	*status = 502;
	if (!up || buf_init(&up->in, tt.o.buffer) < 0 || buf_init(&up->out, tt.o.buffer + 65536) < 0) {
		if (up) {
			buf_free(&up->in);
			free(up);
		}
		*why = "out of memory";
		return NULL;
	}
	if (a->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, a->bytes, 4);
		sl = sizeof *s4;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, a->bytes, 16);
		sl = sizeof *s6;
	}
	up->io.fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (up->io.fd < 0) {
		*why = "no socket for the upstream";
		goto fail;
	}
	setsockopt(up->io.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(up->io.fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		*why = errno == ECONNREFUSED ? "the upstream refused the connection"
					     : "unable to connect to the upstream";
		goto fail;
	}
	if (loop_add_fd(tt.loop, up->io.fd, EPOLLOUT, on_event, up) < 0) {
		*why = "unable to watch the upstream connection";
		goto fail;
	}
	up->io.registered = EPOLLOUT;
	up->io.read_need = EPOLLIN;
	up->io.write_need = EPOLLOUT;
	up->state = UP_CONNECTING;
	up->deadline = loop_now_ms() + tt.o.connect_timeout_ms;
	tt.st.upstream_connects++;
	return up;
fail:
	if (up->io.fd >= 0)
		close(up->io.fd);
	buf_free(&up->in);
	buf_free(&up->out);
	free(up);
	return NULL;
}

struct upstream *upstream_get(const struct origin *o, struct exchange *ex, int *status,
			      const char *why[1])
{
	struct upstream *up = from_pool(o);

	if (up) {
		tt.st.upstream_reused++;
		up->state = UP_OPEN;
		up->reused = 1;
		up->io.drained = 0;
	} else if (!(up = dial(&o->addr, o->port, status, why))) {
		return NULL;
	}
	up->o = *o;
	up->ex = ex;
	up->head_queued = up->body_end_queued = up->got_response_bytes = 0;
	return up;
}

struct upstream *upstream_tcp(const struct addr *a, uint16_t port, struct exchange *ex, int *status)
{
	const char *why = NULL;
	struct upstream *up = dial(a, port, status, &why);

	if (!up) {
		log_info("TCP session %s: %s", ex->request_id, why);
		return NULL;
	}
	up->ex = ex;
	up->head_queued = up->body_end_queued = 1;
	return up;
}

void upstream_release(struct upstream *up, int reusable)
{
	up->ex = NULL;
	if (!reusable || up->dead || nidle >= tt.o.pool_max || buf_len(&up->out) || buf_len(&up->in)) {
		destroy(up);
		return;
	}
	up->state = UP_IDLE;
	up->idle_since = loop_now_ms();
	up->next = idle_head;
	up->prev = NULL;
	if (idle_head)
		idle_head->prev = up;
	idle_head = up;
	nidle++;
	io_update(tt.loop, &up->io, 1, 0);
}

/* An idle connection said something (the upstream closed it): drop it. */
static void idle_event(struct upstream *up)
{
	char c;

	if (up->io.ssl) {
		ssize_t r = io_read(&up->io, &c, 1);

		if (r == IO_AGAIN)
			return;
	}
	unlink_idle(up);
	destroy(up);
}

static void on_event(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct upstream *up = arg;
	struct client *c;

	(void)loop;
	(void)fd;
	(void)events;
	up->io.drained = 0;
	if (up->state == UP_IDLE) {
		idle_event(up);
		return;
	}
	if (!up->ex)
		return;
	c = up->ex->c;
	/* An HTTP/2 connection's streams answer through many upstream
	 * connections: their responses found in one turn of the loop go out
	 * in one TLS write, once the turn's events are all handled. */
	if (c->h2c)
		client_kick(c);
	else
		client_pump_event(c);
}

static void fail(struct upstream *up, int status, const char *why)
{
	up->dead = 1;
	if (up->ex)
		exchange_upstream_failed(up->ex, status, why);
}

static int step_connect(struct upstream *up)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (up->state != UP_CONNECTING)
		return 0;
	if (getsockopt(up->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;

		/* connected only once the peer address is there */
		if (getpeername(up->io.fd, (struct sockaddr *)&ss, &sl) < 0)
			return 0;
	} else {
		fail(up, 502, err == ECONNREFUSED ? "the upstream refused the connection"
						  : "unable to connect to the upstream");
		return 1;
	}
	if (up->o.https) {
		if (!(up->io.ssl = tls_client_new(up->io.fd, up->o.host, !tt.o.upstream_insecure))) {
			fail(up, 502, "unable to set up TLS to the upstream");
			return 1;
		}
		up->state = UP_TLS;
	} else {
		up->state = UP_OPEN;
	}
	return 1;
}

static int step_tls(struct upstream *up)
{
	char err[256], why[400];
	int r;

	if (up->state != UP_TLS)
		return 0;
	r = io_handshake(&up->io, err, sizeof err);
	if (r == IO_AGAIN)
		return 0;
	if (r == IO_ERROR) {
		snprintf(why, sizeof why, "TLS to the upstream failed: %s", err);
		fail(up, 502, why);
		return 1;
	}
	up->state = UP_OPEN;
	return 1;
}

/* Move request bytes from the exchange to the output, framed. */
static int fill_out(struct upstream *up)
{
	struct exchange *ex = up->ex;
	int moved = 0;

	if (!up->head_queued) {
		if (buf_put(&up->out, ex->up_head, ex->up_head_len) < 0) {
			fail(up, 502, "the head for the upstream is too large");
			return 1;
		}
		up->head_queued = 1;
		moved = 1;
	}
	if (up->write_broken) {
		moved = buf_len(&ex->reqb) > 0;
		ex->reqb.start = ex->reqb.end = 0;   /* nobody to send it to */
		return moved;
	}
	while (buf_len(&ex->reqb)) {
		size_t space = buf_space(&up->out), n = buf_len(&ex->reqb);
		int chunked = ex->req.body == BODY_CHUNKED && !ex->tunnel && !ex->tcp;

		if (chunked) {
			char hdr[24];
			int hl;

			if (space < 64)
				break;
			if (n > space - 32)
				n = space - 32;
			hl = snprintf(hdr, sizeof hdr, "%zx\r\n", n);
			buf_put(&up->out, hdr, (size_t)hl);
			buf_put(&up->out, buf_head(&ex->reqb), n);
			buf_put(&up->out, "\r\n", 2);
		} else {
			if (!space)
				break;
			if (n > space)
				n = space;
			buf_put(&up->out, buf_head(&ex->reqb), n);
		}
		buf_consume(&ex->reqb, n);
		moved = 1;
	}
	if (ex->req_done && !buf_len(&ex->reqb) && !up->body_end_queued) {
		if (ex->req.body == BODY_CHUNKED && buf_put(&up->out, "0\r\n\r\n", 5) < 0)
			return moved;
		up->body_end_queued = 1;
		moved = 1;
	}
	return moved;
}

static int flush_out(struct upstream *up)
{
	int moved = 0;

	while (buf_len(&up->out)) {
		ssize_t n = io_write(&up->io, buf_head(&up->out), buf_len(&up->out));

		if (n == IO_AGAIN)
			break;
		if (n < 0) {
			/* The upstream may have answered without reading the whole
			 * request (413, 401...): stop sending, read its answer, and
			 * fail only if there is none. */
			up->write_broken = 1;
			up->keep = 0;
			up->out.start = up->out.end = 0;
			return 1;
		}
		buf_consume(&up->out, (size_t)n);
		moved = 1;
	}
	/* a tunnel whose client has finished sending: pass the end on */
	if ((up->ex->tunnel || up->ex->tcp) && up->ex->down_eof && !buf_len(&up->ex->reqb) &&
	    !buf_len(&up->out) && !up->shut_wr && !up->io.ssl) {
		shutdown(up->io.fd, SHUT_WR);
		up->shut_wr = 1;
		moved = 1;
	}
	/* A request just went out: its answer is there only if the upstream
	 * ran in between, which it mostly has not (it shares the core, and the
	 * other clients' requests are written in the same turn), so it is read
	 * when epoll says so rather than tried at once, which mostly costs a
	 * read that finds nothing. Not for tunnels: their bytes flow both ways
	 * at once. */
	if (moved && !buf_len(&up->out) && !up->ex->tunnel && !up->ex->tcp && !up->got_response_bytes)
		up->io.drained = io_drained(&up->io, 0, 1);
	return moved;
}

static int parse_head(struct upstream *up)
{
	struct exchange *ex = up->ex;
	struct http_msg m;
	const char *why = NULL;
	size_t used = 0;
	int r;

	for (;;) {
		r = http_parse_response(buf_head(&up->in), buf_len(&up->in), ex->req.method, &m, &used, &why);
		if (r == 0) {
			if (buf_len(&up->in) >= up->in.cap) {
				fail(up, 502, "the upstream's response head is too large");
				return 1;
			}
			return 0;
		}
		if (r < 0) {
			char text[200];

			http_msg_free(&m);
			snprintf(text, sizeof text, "a malformed response from the upstream: %s", why);
			fail(up, 502, text);
			return 1;
		}
		buf_consume(&up->in, used);
		if (m.status >= 100 && m.status < 200 && m.status != 101) {
			http_msg_free(&m);   /* 100 Continue was ours to send; 103 is dropped */
			continue;
		}
		break;
	}
	if (m.status == 101 && !ex->req.upgrade) {
		http_msg_free(&m);
		fail(up, 502, "101 from the upstream for a request without Upgrade");
		return 1;
	}
	ex->resp = m;
	ex->status = m.status;
	ex->resp_ready = 1;
	ex->progress_ms = loop_now_ms();
	if (m.status == 101) {
		ex->tunnel = 1;
		ex->req_done = 1;
	} else if (m.body == BODY_LENGTH) {
		ex->resp_left = m.length;
		ex->resp_done = m.length == 0;
	} else if (m.body == BODY_NONE) {
		ex->resp_done = 1;
	}
	return 1;
}

/* Response body bytes from the input to the exchange, decoded. */
static int take_body(struct upstream *up)
{
	struct exchange *ex = up->ex;
	int moved = 0;

	while (buf_len(&up->in) && !ex->resp_done) {
		size_t space = buf_space(&ex->respb), n = buf_len(&up->in);

		if (!space)
			break;
		if (ex->tunnel || ex->tcp || ex->resp.body == BODY_CLOSE || ex->resp.body == BODY_LENGTH) {
			if (ex->resp.body == BODY_LENGTH && !ex->tunnel && n > ex->resp_left)
				n = (size_t)ex->resp_left;
			if (n > space)
				n = space;
			buf_put(&ex->respb, buf_head(&up->in), n);
			buf_consume(&up->in, n);
			if (ex->resp.body == BODY_LENGTH && !ex->tunnel) {
				ex->resp_left -= n;
				ex->resp_done = ex->resp_left == 0;
			}
		} else {
			const char *data, *why = NULL;
			size_t used = 0, dlen = 0;
			int r = chunked_step(&ex->resp_ck, buf_head(&up->in), n, space, &used, &data, &dlen, &why);

			if (r < 0) {
				char text[200];

				snprintf(text, sizeof text, "a malformed chunked body from the upstream: %s", why);
				fail(up, 502, text);
				return 1;
			}
			if (dlen)
				buf_put(&ex->respb, data, dlen);
			buf_consume(&up->in, used);
			if (r == 1)
				ex->resp_done = 1;
			if (!used)
				break;
		}
		ex->progress_ms = loop_now_ms();
		moved = 1;
	}
	return moved;
}

static int wants_read(const struct upstream *up)
{
	const struct exchange *ex = up->ex;

	if (up->state == UP_TLS)
		return 1;
	if (up->state != UP_OPEN || !ex || up->dead || ex->up_eof)
		return 0;
	return (ex->tcp || ex->tunnel || !ex->resp_done) && buf_len(&up->in) < up->in.cap;
}

static int read_in(struct upstream *up)
{
	struct exchange *ex = up->ex;
	int moved = 0;

	while (!up->io.drained && wants_read(up) && up->state == UP_OPEN) {
		size_t space = buf_space(&up->in);
		ssize_t n;

		if (!space)
			break;
		n = io_read(&up->io, buf_tail(&up->in), space);
		if (n == IO_AGAIN) {
			up->io.drained = 1;
			break;
		}
		if (n <= 0) {
			if (ex->tunnel || ex->tcp) {
				ex->up_eof = 1;
			} else if (!ex->resp_ready && up->reused && !up->got_response_bytes &&
				   ex->req.body == BODY_NONE && !ex->retried) {
				/* a kept-alive connection the upstream closed as we
				 * took it: the request (without a body) goes again,
				 * once, on a new connection */
				up->dead = 1;
				ex->retry = 1;
			} else if (!ex->resp_ready) {
				fail(up, 502, up->write_broken ? "the upstream closed the connection while being sent the request"
					      : up->reused ? "the upstream closed a kept-alive connection"
					      : "the upstream closed the connection without a response");
			} else if (ex->resp.body == BODY_CLOSE && n == 0) {
				up->dead = 1;
				ex->resp_done = 1;
				ex->up_eof = 1;
			} else {
				fail(up, 502, "the upstream's response ended early");
			}
			return 1;
		}
		buf_produced(&up->in, (size_t)n);
		up->io.drained = io_drained(&up->io, n, space);
		up->got_response_bytes = 1;
		moved = 1;
		if (!ex->resp_ready && !ex->tcp)
			moved |= parse_head(up);
		if (up->dead)
			return 1;
		moved |= take_body(up);
	}
	return moved;
}

int upstream_pump(struct upstream *up)
{
	int moved = 0;

	if (up->dead || !up->ex)
		return 0;
	moved |= step_connect(up);
	moved |= step_tls(up);
	if (up->state != UP_OPEN || up->dead)
		return moved;
	if (!up->ex->local) {
		moved |= fill_out(up);
		if (up->dead)
			return 1;
		moved |= flush_out(up);
		if (up->dead)
			return 1;
		moved |= read_in(up);
		if (!up->dead && up->ex->resp_ready)
			moved |= take_body(up);
	}
	return moved;
}

void upstream_update_events(struct upstream *up)
{
	if (up->dead || up->io.fd < 0)
		return;
	if (up->state == UP_CONNECTING) {
		if (up->io.registered != EPOLLOUT) {
			up->io.registered = EPOLLOUT;
			loop_mod_fd(tt.loop, up->io.fd, EPOLLOUT);
		}
		return;
	}
	if (up->state == UP_TLS) {
		io_update(tt.loop, &up->io, 1, 0);
		return;
	}
	io_update(tt.loop, &up->io, wants_read(up), buf_len(&up->out) > 0);
}

void upstream_sweep(uint64_t now)
{
	struct upstream *up = idle_head, *next;

	for (; up; up = next) {
		next = up->next;
		if (now - up->idle_since >= tt.o.pool_idle_ms) {
			unlink_idle(up);
			destroy(up);
		}
	}
}

void upstreams_close_all(void)
{
	while (idle_head) {
		struct upstream *up = idle_head;

		unlink_idle(up);
		destroy(up);
	}
}
