/* send-syslog.c: the chain as RFC 5424 messages over TLS (RFC 5425) to a
 * syslog server such as rsyslog, with non-blocking OpenSSL in the event
 * loop.
 *
 * RFC 5425 has no acknowledgement. A batch counts as delivered once its
 * bytes are written and the server's TCP has acknowledged all of them (the
 * socket's send queue, SIOCOUTQ, is empty), and as settled a second later
 * if the connection has not broken meanwhile. Whenever it breaks, however
 * it breaks, everything not settled is sent again: a FIN or a TLS
 * close_notify does not prove the server read what its TCP took (rsyslog
 * may close with data unread, and the test saw it lose records when a
 * close was taken for proof). So records are repeated rather than lost,
 * except by a server that takes data into its TCP buffer and then stalls
 * for longer than the settle time before dying. */
#include "audit.h"

#include <errno.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"

#define CONNECT_TIMEOUT_MS 10000
#define DRAIN_TIMEOUT_MS 30000
#define WRITE_CHUNK 16384

enum state { DOWN, CONNECTING, HANDSHAKE, UP };

struct slog {
	struct loop *loop;
	SSL_CTX *ctx;
	char dest[300];             /* host:port, for messages */
	char host[256];             /* the name or address the certificate must show */
	int host_is_ip;
	struct addrinfo *addrs, *trying;
	int facility;
	enum state state;
	int fd;
	SSL *ssl;
	char *out;                  /* the framed batch */
	size_t outlen, outoff, outcap;
	int sending;
	struct loop_timer *timer;   /* connect timeout or drain poll */
	uint64_t deadline;
	struct forwarder *f;
};

static void on_event(struct loop *loop, int fd, uint32_t events, void *arg);

static void cancel_timer(struct slog *s)
{
	if (s->timer)
		loop_timer_cancel(s->loop, s->timer);
	s->timer = NULL;
}

static void close_conn(struct slog *s, int polite)
{
	cancel_timer(s);
	if (s->ssl) {
		if (polite && s->state == UP)
			SSL_shutdown(s->ssl); /* best effort: non-blocking */
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0) {
		loop_del_fd(s->loop, s->fd);
		close(s->fd);
		s->fd = -1;
	}
	s->state = DOWN;
	ERR_clear_error();
}

/* The connection is gone: what is not settled is sent again. */
static void broken(struct slog *s, const char *why)
{
	int was_sending = s->sending;

	close_conn(s, 0);
	s->sending = 0;
	s->outlen = s->outoff = 0;
	if (was_sending)
		forwarder_done(s->f, 0, 0, why);
	forwarder_broken(s->f, why);
}

static void try_connect(struct slog *s);

static void next_address(struct slog *s, const char *why)
{
	close_conn(s, 0);
	s->trying = s->trying ? s->trying->ai_next : NULL;
	if (s->trying) {
		try_connect(s);
		return;
	}
	broken(s, why);
}

static void on_connect_timeout(struct loop *loop, void *arg)
{
	struct slog *s = arg;
	char why[400];

	(void)loop;
	s->timer = NULL;
	snprintf(why, sizeof why, "unable to connect to %s: timed out", s->dest);
	next_address(s, why);
}

static void try_connect(struct slog *s)
{
	char why[400];
	struct addrinfo *ai = s->trying;

	s->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || (connect(s->fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) ||
	    loop_add_fd(s->loop, s->fd, EPOLLOUT, on_event, s) < 0) {
		snprintf(why, sizeof why, "unable to connect to %s: %s", s->dest, strerror(errno));
		if (s->fd >= 0)
			close(s->fd);
		s->fd = -1;
		next_address(s, why);
		return;
	}
	s->state = CONNECTING;
	s->timer = loop_timer_add(s->loop, CONNECT_TIMEOUT_MS, on_connect_timeout, s);
}

static void set_events(struct slog *s, uint32_t ev)
{
	if (loop_mod_fd(s->loop, s->fd, ev) < 0)
		log_warning("syslog: unable to watch the connection to %s: %s", s->dest,
			    strerror(errno));
}

static void on_drain(struct loop *loop, void *arg);
static void read_some(struct slog *s);

static void write_some(struct slog *s)
{
	char why[600], detail[400];

	while (s->outoff < s->outlen) {
		size_t want = s->outlen - s->outoff < WRITE_CHUNK ? s->outlen - s->outoff : WRITE_CHUNK;
		int n = SSL_write(s->ssl, s->out + s->outoff, (int)want), e;

		if (n > 0) {
			s->outoff += (size_t)n;
			continue;
		}
		e = SSL_get_error(s->ssl, n);
		if (e == SSL_ERROR_WANT_WRITE) {
			set_events(s, EPOLLIN | EPOLLOUT);
			return;
		}
		if (e == SSL_ERROR_WANT_READ) {
			set_events(s, EPOLLIN);
			return;
		}
		snprintf(why, sizeof why, "writing to %s: %s", s->dest,
			 e == SSL_ERROR_SYSCALL && errno ? strerror(errno)
							 : tls_errors(detail, sizeof detail));
		broken(s, why);
		return;
	}
	set_events(s, EPOLLIN);
	/* Written: wait for the server's TCP to acknowledge every byte. */
	s->deadline = loop_now_ms() + DRAIN_TIMEOUT_MS;
	cancel_timer(s);
	s->timer = loop_timer_add(s->loop, 1, on_drain, s);
}

static void on_drain(struct loop *loop, void *arg)
{
	struct slog *s = arg;
	int queued = 0;
	char why[400];

	(void)loop;
	s->timer = NULL;
	if (ioctl(s->fd, SIOCOUTQ, &queued) < 0) {
		snprintf(why, sizeof why, "unable to see what %s acknowledged: %s", s->dest,
			 strerror(errno));
		broken(s, why);
		return;
	}
	if (queued == 0) {
		s->sending = 0;
		s->outlen = s->outoff = 0;
		forwarder_done(s->f, 1, 0, NULL);
		return;
	}
	if (loop_now_ms() > s->deadline) {
		snprintf(why, sizeof why, "%s has not taken %d bytes for %d s", s->dest, queued,
			 DRAIN_TIMEOUT_MS / 1000);
		broken(s, why);
		return;
	}
	s->timer = loop_timer_add(s->loop, 2, on_drain, s);
}

static void handshake(struct slog *s)
{
	int rc = SSL_connect(s->ssl), e;
	char why[700], detail[400];
	long vr;

	if (rc == 1) {
		cancel_timer(s);
		s->state = UP;
		log_info("syslog: connected to %s (%s)", s->dest, SSL_get_version(s->ssl));
		if (s->sending)
			write_some(s);
		else
			set_events(s, EPOLLIN);
		return;
	}
	e = SSL_get_error(s->ssl, rc);
	if (e == SSL_ERROR_WANT_READ) {
		set_events(s, EPOLLIN);
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		set_events(s, EPOLLOUT);
		return;
	}
	vr = SSL_get_verify_result(s->ssl);
	if (vr != X509_V_OK)
		snprintf(why, sizeof why, "TLS with %s: the server's certificate: %s", s->dest,
			 X509_verify_cert_error_string(vr));
	else
		snprintf(why, sizeof why, "TLS with %s: %s", s->dest,
			 e == SSL_ERROR_SYSCALL && errno ? strerror(errno)
							 : tls_errors(detail, sizeof detail));
	next_address(s, why);
}

static void start_tls(struct slog *s)
{
	char why[400];

	s->ssl = SSL_new(s->ctx);
	if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1 ||
	    (!s->host_is_ip && SSL_set_tlsext_host_name(s->ssl, s->host) != 1) ||
	    (s->host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), s->host) != 1
			   : SSL_set1_host(s->ssl, s->host) != 1)) {
		snprintf(why, sizeof why, "unable to start TLS with %s", s->dest);
		next_address(s, why);
		return;
	}
	s->state = HANDSHAKE;
	handshake(s);
}

/* Servers send nothing but TLS records of their own (session tickets, a
 * close): read them, and notice the end of the connection. */
static void read_some(struct slog *s)
{
	char buf[4096], why[600], detail[400];

	for (;;) {
		int n = SSL_read(s->ssl, buf, sizeof buf), e;

		if (n > 0)
			continue;
		e = SSL_get_error(s->ssl, n);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return;
		if (e == SSL_ERROR_ZERO_RETURN ||
		    (e == SSL_ERROR_SYSCALL && errno == 0) ||
		    (e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
			snprintf(why, sizeof why, "%s closed the connection", s->dest);
			ERR_clear_error();
			broken(s, why);
			return;
		}
		snprintf(why, sizeof why, "the connection to %s: %s", s->dest,
			 e == SSL_ERROR_SYSCALL && errno ? strerror(errno)
							 : tls_errors(detail, sizeof detail));
		broken(s, why);
		return;
	}
}

static void on_event(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct slog *s = arg;
	char why[400];
	int soerr = 0;
	socklen_t len = sizeof soerr;

	(void)loop;
	switch (s->state) {
	case CONNECTING:
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		if (soerr) {
			snprintf(why, sizeof why, "unable to connect to %s: %s", s->dest,
				 strerror(soerr));
			next_address(s, why);
			return;
		}
		start_tls(s);
		return;
	case HANDSHAKE:
		handshake(s);
		return;
	case UP:
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			read_some(s);
		if (s->state == UP && (events & EPOLLOUT) && s->sending && s->outoff < s->outlen)
			write_some(s);
		return;
	case DOWN:
		return;
	}
}

static void syslog_send(struct forwarder *f)
{
	struct slog *s = f->ctx;
	const char *p = f->batch, *end = f->batch + f->blen;
	struct record_info info;
	char msg[256];

	s->f = f;
	s->outlen = s->outoff = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (record_parse_line(p, (size_t)(nl - p), &info, msg, sizeof msg) != RECORD_OK ||
		    syslog_frame(&s->out, &s->outlen, &s->outcap, s->facility, p, (size_t)(nl - p),
				 &info) < 0) {
			forwarder_done(f, 0, 0, "unable to frame a record for syslog");
			return;
		}
		p = nl + 1;
	}
	s->sending = 1;
	if (s->state == UP) {
		read_some(s); /* a close waiting to be noticed */
		if (s->state == UP)
			write_some(s);
	} else if (s->state == DOWN) {
		s->trying = s->addrs;
		try_connect(s);
	}
}

static void syslog_reset(struct forwarder *f)
{
	struct slog *s = f->ctx;

	close_conn(s, 1);
	s->sending = 0;
}

static void syslog_free(struct forwarder *f)
{
	struct slog *s = f->ctx;

	if (!s)
		return;
	close_conn(s, 1);
	SSL_CTX_free(s->ctx);
	freeaddrinfo(s->addrs);
	free(s->out);
	free(s);
	f->ctx = NULL;
}

const struct transport syslog_transport = {
	.name = "syslog",
	.send = syslog_send,
	.reset = syslog_reset,
	.free = syslog_free,
	.settle_ms = 1000,
};

/* "host:port", "[v6]:port": HOST gets the host, PORT the port. */
static int split_dest(const char *dest, char *host, size_t hsize, char *port, size_t psize)
{
	const char *colon;
	size_t hl;

	if (dest[0] == '[') {
		const char *close = strchr(dest, ']');

		if (!close || close[1] != ':')
			return -1;
		hl = (size_t)(close - dest - 1);
		colon = close + 1;
		if (hl == 0 || hl >= hsize)
			return -1;
		memcpy(host, dest + 1, hl);
	} else {
		colon = strrchr(dest, ':');
		if (!colon || strchr(dest, ':') != colon)
			return -1;
		hl = (size_t)(colon - dest);
		if (hl == 0 || hl >= hsize)
			return -1;
		memcpy(host, dest, hl);
	}
	host[hl] = '\0';
	if (strlen(colon + 1) == 0 || strlen(colon + 1) >= psize ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) || atoi(colon + 1) < 1 ||
	    atoi(colon + 1) > 65535)
		return -1;
	strcpy(port, colon + 1);
	return 0;
}

void *syslogtls_new(struct loop *loop, const struct syslog_options *o, char *err,
		    size_t errsize)
{
	struct slog *s = calloc(1, sizeof *s);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct addr a;
	char port[8];
	int rc;

	if (!s) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	s->loop = loop;
	s->fd = -1;
	s->facility = o->facility;
	snprintf(s->dest, sizeof s->dest, "%s", o->dest);
	if (split_dest(o->dest, s->host, sizeof s->host, port, sizeof port) < 0) {
		snprintf(err, errsize, "-y %s: not host:port or [address]:port", o->dest);
		free(s);
		return NULL;
	}
	s->host_is_ip = addr_parse(s->host, &a) == 0;
	/* A name is resolved once, here: the loop never waits on DNS. */
	rc = getaddrinfo(s->host, port, &hints, &s->addrs);
	if (rc != 0) {
		snprintf(err, errsize, "-y %s: unable to resolve %s: %s", o->dest, s->host,
			 gai_strerror(rc));
		free(s);
		return NULL;
	}
	s->ctx = tls_client_ctx(o->ca, o->cert, o->key, err, errsize);
	if (!s->ctx) {
		freeaddrinfo(s->addrs);
		free(s);
		return NULL;
	}
	return s;
}
