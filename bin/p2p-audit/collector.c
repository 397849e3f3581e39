/* collector.c: p2p-audit -L, the receiving end of forwarding: an HTTPS
 * server (non-blocking OpenSSL in the event loop) that demands a client
 * certificate from the CA, takes POST /v1/records (a host's record lines)
 * from hosts whose certificate names them, appends the records to
 * DIR/HOST/ with the same group commit as the writer, and answers only
 * once they are durable:
 *
 *   200 {"ok":true,"host":H,"stored":N,"duplicates":N,"next":SEQ}
 *   409 {"ok":false,"error":...,"next":SEQ}   a gap: send from SEQ
 *   4xx/5xx {"ok":false,"error":...}
 */
#include "audit.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"

#define CONNS_MAX 512
#define HOSTS_MAX 10000
#define IDLE_MS 60000
#define HANDSHAKE_MS 10000
#define SWEEP_MS 5000
#define TARGET "/v1/records"

struct host_store {
	struct host_store *next;
	char host[AUDIT_HOST_MAX + 1];
	struct store store;
	int dirty, failed;
	char error[600];
};

enum cstate { C_HANDSHAKE, C_HEAD, C_BODY, C_COMMIT, C_WRITE };

struct cconn {
	struct collector *c;
	struct cconn *prev, *next;
	int fd;
	SSL *ssl;
	enum cstate state;
	X509 *peer;
	char addr[ADDR_STRLEN + 8];
	char *in;
	size_t inlen, incap;
	struct http_request req;
	char *out;
	size_t outlen, outoff, outcap;
	int close_after;
	struct collector_result res;
	uint64_t since;             /* last activity, for the idle timeout */
};

struct collector {
	struct loop *loop;
	struct collector_options o;
	SSL_CTX *ctx;
	int lfd;
	struct host_store *hosts;
	size_t nhosts;
	struct cconn *conns;
	size_t nconns;
	struct loop_timer *commit_timer, *sweep_timer;
	uint64_t requests, stored, duplicates, refused, tls_failures;
};

static void conn_free(struct cconn *k);
static int read_input(struct cconn *k);
static void on_conn(struct loop *loop, int fd, uint32_t events, void *arg);
static void process(struct cconn *k);

#define RESPOND_DEPTH_MAX 8
static int respond_depth;   /* respond() within process() within respond()... */

/* ---- stores ---- */

static struct store *get_store(void *arg, const char *host, char *err, size_t errsize)
{
	struct cconn *k = arg;
	struct collector *c = k->c;
	struct host_store *h;
	char dir[PATH_MAX];

	for (h = c->hosts; h; h = h->next)
		if (strcmp(h->host, host) == 0)
			return &h->store;
	if (c->nhosts >= HOSTS_MAX) {
		snprintf(err, errsize, "more than %d hosts", HOSTS_MAX);
		return NULL;
	}
	h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	snprintf(h->host, sizeof h->host, "%s", host);
	if (snprintf(dir, sizeof dir, "%s/%s", c->o.dir, host) >= (int)sizeof dir ||
	    store_open(&h->store, dir, c->o.rotate_size, c->o.keep, 0, err, errsize) != STORE_OK) {
		if (!err[0])
			snprintf(err, errsize, "%s/%s: path too long", c->o.dir, host);
		log_error("unable to open the store of host %s: %s", host, err);
		free(h);
		return NULL;
	}
	if (h->store.torn)
		log_warning("%s: cut an unfinished last line of %zu bytes (a crash during a write)",
			    dir, h->store.torn);
	log_info("collecting host %s in %s from seq %llu", host, dir,
		 (unsigned long long)(h->store.seq + 1));
	h->next = c->hosts;
	c->hosts = h;
	c->nhosts++;
	return &h->store;
}

static struct host_store *host_of(struct collector *c, const struct store *s)
{
	for (struct host_store *h = c->hosts; h; h = h->next)
		if (&h->store == s)
			return h;
	return NULL;
}

static int peer_may(void *arg, const char *host)
{
	struct cconn *k = arg;

	return k->peer &&
	       X509_check_host(k->peer, host, strlen(host), X509_CHECK_FLAG_NO_WILDCARDS, NULL) == 1;
}

/* ---- output ---- */

static const char *reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Internal Server Error";
	}
}

static int queue(struct cconn *k, const char *data, size_t len)
{
	if (k->outlen + len > k->outcap) {
		size_t cap = k->outcap ? k->outcap : 1024;
		char *p;

		while (cap < k->outlen + len)
			cap *= 2;
		p = realloc(k->out, cap);
		if (!p)
			return -1;
		k->out = p;
		k->outcap = cap;
	}
	memcpy(k->out + k->outlen, data, len);
	k->outlen += len;
	return 0;
}

static void set_events(struct cconn *k, uint32_t ev)
{
	loop_mod_fd(k->c->loop, k->fd, ev);
}

/* Write what is queued: 1 all written, 0 more to write later, -1 gone. */
static int flush(struct cconn *k)
{
	while (k->outoff < k->outlen) {
		int n = SSL_write(k->ssl, k->out + k->outoff, (int)(k->outlen - k->outoff)), e;

		if (n > 0) {
			k->outoff += (size_t)n;
			continue;
		}
		e = SSL_get_error(k->ssl, n);
		if (e == SSL_ERROR_WANT_WRITE) {
			set_events(k, EPOLLOUT);
			return 0;
		}
		if (e == SSL_ERROR_WANT_READ) {
			set_events(k, EPOLLIN);
			return 0;
		}
		ERR_clear_error();
		return -1;
	}
	k->outoff = k->outlen = 0;
	return 1;
}

/* Answer STATUS with the JSON BODY (stolen). */
static void respond(struct cconn *k, int status, json_t *body)
{
	char head[256], *text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
	size_t len = text ? strlen(text) : 0;
	int hn;

	json_decref(body);
	if (status >= 400 && status != 409)
		k->c->refused++;
	if (!k->req.keep_alive || status == 400 || status == 413 || status == 431 || status == 501 ||
	    status == 505 || status == 417 || status == 414 || status == 411)
		k->close_after = 1;
	hn = snprintf(head, sizeof head,
		      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n",
		      status, reason(status), len + 1, k->close_after ? "Connection: close\r\n" : "");
	if (queue(k, head, (size_t)hn) < 0 || queue(k, text ? text : "", len) < 0 ||
	    queue(k, "\n", 1) < 0) {
		free(text);
		conn_free(k);
		return;
	}
	free(text);
	k->state = C_WRITE;
	/* process() reads the next pipelined request, whose answer comes
	 * back here: past a few answers in one go the rest wait for the next
	 * turn of the loop (the socket is writable, so it comes at once), so
	 * that a client pipelining thousands of requests answered at once
	 * (404s, empty POSTs) cannot grow the stack without end */
	if (respond_depth >= RESPOND_DEPTH_MAX) {
		set_events(k, EPOLLIN | EPOLLOUT);
		return;
	}
	respond_depth++;
	process(k);   /* K may be freed: not touched after */
	respond_depth--;
}

static void respond_error(struct cconn *k, int status, const char *error, uint64_t next)
{
	json_t *body = json_pack("{s:b,s:s}", "ok", 0, "error", error);

	if (next)
		json_object_set_new(body, "next", json_integer((json_int_t)next));
	log_warning("%s: refused a request: %d %s", k->addr, status, error);
	respond(k, status, body);
}

static void respond_result(struct cconn *k)
{
	struct collector_result *r = &k->res;
	struct host_store *h = r->store ? host_of(k->c, r->store) : NULL;

	if (h && h->failed) {
		respond_error(k, 503, h->error, r->store->seq + 1);
		return;
	}
	if (r->status != 200) {
		respond_error(k, r->status, r->error, r->status == 409 ? r->next : 0);
		return;
	}
	respond(k, 200, json_pack("{s:b,s:s,s:I,s:I,s:I}", "ok", 1, "host", r->host, "stored",
				  (json_int_t)r->stored, "duplicates", (json_int_t)r->duplicates,
				  "next", (json_int_t)r->next));
}

/* ---- group commit ---- */

static void on_commit(struct loop *loop, void *arg)
{
	struct collector *c = arg;
	struct cconn *k, *next;
	char err[512];

	(void)loop;
	c->commit_timer = NULL;
	for (struct host_store *h = c->hosts; h; h = h->next) {
		int rc;

		if (!h->dirty)
			continue;
		h->dirty = 0;
		rc = store_commit(&h->store, UINT64_MAX, err, sizeof err);
		if (rc == STORE_SYNC)
			log_fatal(EXIT_SYSTEM, "%s (exiting: the next start recovers the file)", err);
		if (rc != STORE_OK) {
			log_error("%s", err);
			store_discard(&h->store);
			h->failed = 1;
			snprintf(h->error, sizeof h->error, "the collector is unable to write: %s", err);
		}
	}
	for (k = c->conns; k; k = next) {
		next = k->next;
		if (k->state == C_COMMIT)
			respond_result(k);
	}
	for (struct host_store *h = c->hosts; h; h = h->next)
		h->failed = 0;
}

static void schedule_commit(struct collector *c)
{
	if (!c->commit_timer)
		c->commit_timer = loop_timer_add(c->loop, c->o.commit_wait_ms, on_commit, c);
	if (!c->commit_timer)
		log_fatal(EXIT_SYSTEM, "unable to schedule a commit: out of memory");
}

/* ---- requests ---- */

static void handle_request(struct cconn *k)
{
	struct collector *c = k->c;
	const char *body = k->in + k->req.head_len;
	struct host_store *h;

	c->requests++;
	collector_take(body, (size_t)k->req.content_length, peer_may, get_store, k, &k->res);
	c->stored += k->res.stored;
	c->duplicates += k->res.duplicates;
	if (k->res.stored) {
		h = host_of(c, k->res.store);
		if (h)
			h->dirty = 1;
		k->state = C_COMMIT;
		set_events(k, 0);
		schedule_commit(c);
		return;
	}
	respond_result(k);
}

/* A complete head is in: check what we serve. 0 go on, -1 answered. */
static int check_head(struct cconn *k)
{
	struct http_request *r = &k->req;

	if (strcmp(r->target, TARGET) != 0) {
		respond_error(k, 404, "no such resource (the collector takes POST " TARGET ")", 0);
		return -1;
	}
	if (strcmp(r->method, "POST") != 0) {
		respond_error(k, 405, "only POST", 0);
		return -1;
	}
	if (r->chunked) {
		respond_error(k, 501, "Transfer-Encoding is not supported: send Content-Length", 0);
		return -1;
	}
	if (r->content_length < 0) {
		respond_error(k, 411, "Content-Length is required", 0);
		return -1;
	}
	if (r->content_length > (long long)HTTP_BODY_MAX) {
		respond_error(k, 413, "a body is at most 8 MiB", 0);
		return -1;
	}
	if (r->expect_continue) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

		if (queue(k, cont, sizeof cont - 1) < 0)
			return -1;
	}
	return 0;
}

/* Move on as far as the input and output allow. */
static void process(struct cconn *k)
{
	for (;;) {
		if (k->state == C_WRITE) {
			int rc = flush(k);
			size_t used;

			if (rc < 0 || (rc == 1 && k->close_after)) {
				conn_free(k);
				return;
			}
			if (rc == 0)
				return;
			used = k->req.head_len + (size_t)(k->req.content_length > 0 ? k->req.content_length : 0);
			if (used > k->inlen)
				used = k->inlen;
			memmove(k->in, k->in + used, k->inlen - used);
			k->inlen -= used;
			memset(&k->req, 0, sizeof k->req);
			k->state = C_HEAD;
			set_events(k, EPOLLIN);
			/* TLS may hold bytes the socket no longer shows. */
			if (read_input(k) < 0) {
				conn_free(k);
				return;
			}
			continue;
		}
		if (k->outlen > k->outoff) {
			int rc = flush(k);

			if (rc < 0) {
				conn_free(k);
				return;
			}
			if (rc == 1)
				set_events(k, EPOLLIN);
		}
		if (k->state == C_HEAD) {
			int status = 0, rc;
			char err[200];

			rc = http_parse_head(k->in, k->inlen, &k->req, &status, err, sizeof err);
			if (rc == HTTP_INCOMPLETE)
				return;
			if (rc == HTTP_BAD) {
				k->req.keep_alive = 0;
				respond_error(k, status, err, 0);
				return;
			}
			if (check_head(k) < 0)
				return;
			k->state = C_BODY;
		}
		if (k->state == C_BODY) {
			if (k->inlen < k->req.head_len + (size_t)k->req.content_length)
				return;
			handle_request(k);
			return;
		}
		return;
	}
}

/* ---- connections ---- */

static void conn_free(struct cconn *k)
{
	struct collector *c = k->c;

	loop_del_fd(c->loop, k->fd);
	if (k->ssl)
		SSL_free(k->ssl);
	ERR_clear_error();
	close(k->fd);
	X509_free(k->peer);
	if (k->prev)
		k->prev->next = k->next;
	else
		c->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	c->nconns--;
	free(k->in);
	free(k->out);
	free(k);
}

static int read_input(struct cconn *k)
{
	size_t limit = HTTP_HEAD_MAX + HTTP_BODY_MAX;

	for (;;) {
		int n, e;

		if (k->inlen == k->incap) {
			size_t cap = k->incap ? 2 * k->incap : 16384;
			char *p;

			if (k->incap >= limit)
				return 0; /* a full request is in: stop reading */
			if (cap > limit)
				cap = limit;
			p = realloc(k->in, cap);
			if (!p)
				return -1;
			k->in = p;
			k->incap = cap;
		}
		n = SSL_read(k->ssl, k->in + k->inlen, (int)(k->incap - k->inlen));
		if (n > 0) {
			k->inlen += (size_t)n;
			continue;
		}
		e = SSL_get_error(k->ssl, n);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return 0;
		ERR_clear_error();
		return -1; /* closed or broken */
	}
}

/* 0: done or to be continued; -1: failed, and K is freed. */
static int handshake(struct cconn *k)
{
	char detail[400];
	int rc, e;

	ERR_clear_error();
	rc = SSL_accept(k->ssl);
	if (rc == 1) {
		k->peer = SSL_get1_peer_certificate(k->ssl);
		k->state = C_HEAD;
		return 0;
	}
	e = SSL_get_error(k->ssl, rc);
	if (e == SSL_ERROR_WANT_READ) {
		set_events(k, EPOLLIN);
		return 0;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		set_events(k, EPOLLOUT);
		return 0;
	}
	k->c->tls_failures++;
	log_warning("%s: TLS handshake failed: %s", k->addr,
		    e == SSL_ERROR_SYSCALL && errno ? strerror(errno) : tls_errors(detail, sizeof detail));
	conn_free(k);
	return -1;
}

static void on_conn(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct cconn *k = arg;

	(void)loop;
	(void)fd;
	(void)events;
	k->since = loop_now_ms();
	if (k->state == C_HANDSHAKE) {
		if (handshake(k) < 0 || k->state == C_HANDSHAKE)
			return;
		set_events(k, EPOLLIN);
	}
	if (k->state == C_HEAD || k->state == C_BODY) {
		if (read_input(k) < 0) {
			conn_free(k);
			return;
		}
	}
	if (k->state != C_COMMIT)
		process(k);
}

static void on_accept(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct collector *c = arg;

	(void)events;
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t salen = sizeof sa;
		int cfd = accept4(fd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct cconn *k;
		char host[ADDR_STRLEN];
		struct addr a = { 0 };
		uint16_t port = 0;

		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_error("unable to accept on %s: %s", c->o.listen, strerror(errno));
			return;
		}
		if (c->nconns >= CONNS_MAX) {
			log_warning("refusing a connection: %d connections already", CONNS_MAX);
			close(cfd);
			continue;
		}
		k = calloc(1, sizeof *k);
		if (!k || !(k->ssl = SSL_new(c->ctx)) || SSL_set_fd(k->ssl, cfd) != 1 ||
		    loop_add_fd(loop, cfd, EPOLLIN, on_conn, k) < 0) {
			log_error("unable to take a connection: %s", strerror(errno));
			if (k)
				SSL_free(k->ssl);
			free(k);
			close(cfd);
			continue;
		}
		if (sa.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&sa;

			a.family = AF_INET;
			memcpy(a.bytes, &in->sin_addr, 4);
			port = ntohs(in->sin_port);
		} else if (sa.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;

			a.family = AF_INET6;
			memcpy(a.bytes, &in6->sin6_addr, 16);
			port = ntohs(in6->sin6_port);
		}
		snprintf(k->addr, sizeof k->addr, a.family == AF_INET6 ? "[%s]:%u" : "%s:%u",
			 a.family ? addr_str(&a, host) : "?", port);
		k->c = c;
		k->fd = cfd;
		k->state = C_HANDSHAKE;
		k->since = loop_now_ms();
		k->next = c->conns;
		if (c->conns)
			c->conns->prev = k;
		c->conns = k;
		c->nconns++;
	}
}

/* Close connections that stall: a handshake over 10 s, idle over 60 s. */
static void on_sweep(struct loop *loop, void *arg)
{
	struct collector *c = arg;
	uint64_t now = loop_now_ms();
	struct cconn *k, *next;

	for (k = c->conns; k; k = next) {
		next = k->next;
		if (k->state == C_COMMIT)
			continue;
		if (now - k->since > (k->state == C_HANDSHAKE ? HANDSHAKE_MS : IDLE_MS))
			conn_free(k);
	}
	c->sweep_timer = loop_timer_add(loop, SWEEP_MS, on_sweep, c);
}

struct collector *collector_new(struct loop *loop, const struct collector_options *o,
				char *err, size_t errsize)
{
	struct collector *c = calloc(1, sizeof *c);

	if (!c) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	c->loop = loop;
	c->o = *o;
	c->lfd = -1;
	if (o->listen) {
		c->ctx = tls_server_ctx(o->cert, o->key, o->ca, err, errsize);
		if (!c->ctx) {
			free(c);
			return NULL;
		}
	}
	return c;
}

int collector_listen(struct collector *c, char *err, size_t errsize)
{
	struct addr a;
	uint16_t port;
	struct sockaddr_storage sa = { 0 };
	socklen_t salen;
	int one = 1;

	if (!c->o.listen)
		return 0;
	if (endpoint_parse(c->o.listen, &a, &port) < 0) {
		snprintf(err, errsize, "-l %s: not address:port or [address]:port", c->o.listen);
		return -1;
	}
	if (a.family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&sa;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		memcpy(&in->sin_addr, a.bytes, 4);
		salen = sizeof *in;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		memcpy(&in6->sin6_addr, a.bytes, 16);
		salen = sizeof *in6;
	}
	c->lfd = socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->lfd < 0 || setsockopt(c->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(c->lfd, (struct sockaddr *)&sa, salen) < 0 || listen(c->lfd, 128) < 0 ||
	    loop_add_fd(c->loop, c->lfd, EPOLLIN, on_accept, c) < 0) {
		snprintf(err, errsize, "unable to listen on %s: %s", c->o.listen, strerror(errno));
		return -1;
	}
	c->sweep_timer = loop_timer_add(c->loop, SWEEP_MS, on_sweep, c);
	return 0;
}

int collector_open_hosts(struct collector *c)
{
	DIR *d = opendir(c->o.dir);
	struct dirent *de;
	struct cconn fake = { .c = c };

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char err[1024] = "";

		if (de->d_type != DT_DIR || !record_host_ok(de->d_name))
			continue;
		/* A host that cannot be opened is logged, and refused with 500
		 * when it sends, until someone looks. */
		get_store(&fake, de->d_name, err, sizeof err);
	}
	closedir(d);
	return 0;
}

json_t *collector_status(const struct collector *c)
{
	json_t *hosts = json_object();

	for (struct host_store *h = c->hosts; h; h = h->next)
		json_object_set_new(hosts, h->host, json_integer((json_int_t)h->store.seq));
	return json_pack("{s:s,s:s?,s:s,s:o,s:I,s:I,s:I,s:I,s:I,s:I}", "mode", "collector",
			 "listen", c->o.listen, "dir", c->o.dir, "hosts", hosts,
			 "connections", (json_int_t)c->nconns, "requests", (json_int_t)c->requests,
			 "stored", (json_int_t)c->stored, "duplicates", (json_int_t)c->duplicates,
			 "refused", (json_int_t)c->refused, "tls_failures", (json_int_t)c->tls_failures);
}

void collector_free(struct collector *c)
{
	struct host_store *h, *hn;

	if (!c)
		return;
	while (c->conns)
		conn_free(c->conns);
	for (h = c->hosts; h; h = hn) {
		hn = h->next;
		/* Records waiting for a commit were never acknowledged: the
		 * senders send them again. */
		store_close(&h->store);
		free(h);
	}
	if (c->commit_timer)
		loop_timer_cancel(c->loop, c->commit_timer);
	if (c->sweep_timer)
		loop_timer_cancel(c->loop, c->sweep_timer);
	if (c->lfd >= 0) {
		loop_del_fd(c->loop, c->lfd);
		close(c->lfd);
	}
	SSL_CTX_free(c->ctx);
	free(c);
}
