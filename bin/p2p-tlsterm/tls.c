/* tls.c: OpenSSL for both sides, non-blocking.
 *
 * Server side: every connection starts on a context without a certificate
 * whose SNI callback moves it to the context of the certificate that
 * covers the name (certs.c); a client without SNI gets the certificate of
 * the resource whose address it dialled; a name no certificate covers is
 * refused with the unrecognized_name alert. TLS 1.3 and 1.2 only, with
 * ECDHE and AEAD suites only; ALPN offers h2 and http/1.1.
 *
 * Client side (to https upstreams): the system's authorities (or -K's
 * file), the upstream's host name checked, unless told not to. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tlsterm.h"

static const char suites12[] =
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const char suites13[] =
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
static const unsigned char alpn_h2[] = "\x02h2\x08http/1.1";
static const unsigned char alpn_h1[] = "\x08http/1.1";

static struct {
	SSL_CTX *base, *client;
	struct certstore *certs;
	const char *dir;
	int h2;
	unsigned long reloads;
	int default_name_idx;
} t = { .default_name_idx = -1 };

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	const unsigned char *ours = t.h2 ? alpn_h2 : alpn_h1;
	unsigned int ourlen = t.h2 ? sizeof alpn_h2 - 1 : sizeof alpn_h1 - 1;
	unsigned char *sel;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, outlen, ours, ourlen, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static int servername(SSL *ssl, int *alert, void *arg)
{
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	const char *dflt = SSL_get_ex_data(ssl, t.default_name_idx);
	SSL_CTX *ctx;

	(void)arg;
	ctx = certs_find(t.certs, name ? name : dflt ? dflt : "");
	if (!ctx) {
		log_debug("TLS: no certificate for %s%s", name ? name : "(no SNI) ",
			  name ? "" : dflt ? dflt : "an unknown address");
		*alert = name ? SSL_AD_UNRECOGNIZED_NAME : SSL_AD_HANDSHAKE_FAILURE;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	if (SSL_set_SSL_CTX(ssl, ctx) != ctx) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

/* The settings every server context has: the SNI callback moves a
 * connection to another context, and OpenSSL then reads some of them
 * (ALPN) from that one. */
static int configure(SSL_CTX *ctx)
{
	static const unsigned char sid[] = "p2p-tlsterm";

	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, suites12) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, suites13) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1 ||
	    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1) != 1)
		return -1;
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
				 SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* an idle connection keeps no TLS buffer either */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			      SSL_MODE_RELEASE_BUFFERS);
	/* one read(2) takes a whole record (or several) instead of its header
	 * and then its body; io_drained() looks at what OpenSSL holds back */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_tlsext_servername_callback(ctx, servername);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	return 0;
}

static void drain_errors(char *err, size_t errsize)
{
	unsigned long e;
	size_t used = 0;

	if (err && errsize)
		err[0] = '\0';
	while ((e = ERR_get_error())) {
		if (err && used + 2 < errsize) {
			if (used)
				err[used++] = ';', err[used++] = ' ';
			ERR_error_string_n(e, err + used, errsize - used);
			used = strlen(err);
		}
	}
}

int tls_init(const char *certdir, int h2, const char *upstream_ca, int upstream_insecure)
{
	t.dir = certdir;
	t.h2 = h2;
	t.default_name_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (!(t.base = SSL_CTX_new(TLS_server_method())) || configure(t.base) < 0) {
		log_error("unable to set up TLS: %s", ERR_reason_error_string(ERR_get_error()));
		return -1;
	}
	/* to upstreams, the versions and suites offered to clients: a request
	 * is not carried on weaker TLS inside the site than outside */
	if (!(t.client = SSL_CTX_new(TLS_client_method())) ||
	    SSL_CTX_set_min_proto_version(t.client, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(t.client, suites12) != 1 ||
	    SSL_CTX_set_ciphersuites(t.client, suites13) != 1 ||
	    SSL_CTX_set_alpn_protos(t.client, alpn_h1, sizeof alpn_h1 - 1) != 0) {
		log_error("unable to set up TLS to upstreams: %s", ERR_reason_error_string(ERR_get_error()));
		return -1;
	}
	SSL_CTX_set_options(t.client, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION |
				      SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(t.client, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(t.client, 1);
	if (upstream_ca ? SSL_CTX_load_verify_locations(t.client, upstream_ca, NULL) != 1
			: SSL_CTX_set_default_verify_paths(t.client) != 1) {
		char err[256];

		drain_errors(err, sizeof err);
		log_error("unable to load the authorities for upstreams%s%s: %s",
			  upstream_ca ? " from " : "", upstream_ca ? upstream_ca : "", err);
		return -1;
	}
	SSL_CTX_set_verify(t.client, upstream_insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	return tls_reload();
}

int tls_reload(void)
{
	struct certstore *s = certs_load(t.dir, t.certs, configure);

	if (!s)
		return -1;
	certs_free(t.certs);
	t.certs = s;
	t.reloads++;
	log_info("%zu certificates loaded from %s", certs_count(s), t.dir);
	return 0;
}

void tls_shutdown(void)
{
	certs_free(t.certs);
	SSL_CTX_free(t.base);
	SSL_CTX_free(t.client);
	memset(&t, 0, sizeof t);
}

const struct certstore *tls_certs(void)
{
	return t.certs;
}

unsigned long tls_reloads(void)
{
	return t.reloads;
}

SSL *tls_server_new(int fd, const char *default_name)
{
	SSL *ssl = SSL_new(t.base);

	if (!ssl)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1 ||
	    SSL_set_ex_data(ssl, t.default_name_idx, (void *)default_name) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return ssl;
}

SSL *tls_client_new(int fd, const char *host, int verify)
{
	SSL *ssl = SSL_new(t.client);
	unsigned char bin[16];
	int is_ip = inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1;

	if (!ssl)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1 || (!is_ip && SSL_set_tlsext_host_name(ssl, host) != 1)) {
		SSL_free(ssl);
		return NULL;
	}
	if (verify) {
		X509_VERIFY_PARAM *param = SSL_get0_param(ssl);

		if ((is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host) : SSL_set1_host(ssl, host)) != 1) {
			SSL_free(ssl);
			return NULL;
		}
	}
	SSL_set_connect_state(ssl);
	return ssl;
}

/* What an SSL call's failure asks for: IO_AGAIN with *NEED set, 0 for a
 * clean end, IO_ERROR. */
static int ssl_outcome(SSL *ssl, int r, uint32_t *need)
{
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
		*need = EPOLLIN;
		return IO_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		*need = EPOLLOUT;
		return IO_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		return IO_ERROR;
	}
}

/* SSL_get_error looks at this thread's error queue before anything else,
 * so errors left there by another call would be taken for the next one's:
 * cleared before each, but looked at first, as the queue is nearly always
 * empty (every failure here clears it) and clearing costs four times as
 * much as looking (ERR_clear_error went through all its slots twice a
 * request). */
static void clear_stale_errors(void)
{
	if (ERR_peek_error())
		ERR_clear_error();
}

int io_handshake(struct io *io, char *err, size_t errsize)
{
	int r;

	if (io->handshake_done || !io->ssl)
		return 1;
	clear_stale_errors();
	r = SSL_do_handshake(io->ssl);
	if (r == 1) {
		io->handshake_done = 1;
		io->read_need = EPOLLIN;
		io->write_need = EPOLLOUT;
		return 1;
	}
	r = ssl_outcome(io->ssl, r, &io->read_need);
	if (r == IO_AGAIN)
		return IO_AGAIN;
	drain_errors(err, errsize);
	if (err && !err[0])
		snprintf(err, errsize, "%s", errno ? strerror(errno) : "the peer closed the connection");
	return IO_ERROR;
}

ssize_t io_read(struct io *io, void *p, size_t n)
{
	ssize_t r;

	if (!io->ssl) {
		r = read(io->fd, p, n);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				io->read_need = EPOLLIN;
				return IO_AGAIN;
			}
			return IO_ERROR;
		}
		return r;
	}
	clear_stale_errors();
	r = SSL_read(io->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
	if (r > 0)
		return r;
	r = ssl_outcome(io->ssl, (int)r, &io->read_need);
	ERR_clear_error();
	return r;
}

ssize_t io_write(struct io *io, const void *p, size_t n)
{
	ssize_t r;

	if (!io->ssl) {
		r = send(io->fd, p, n, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				io->write_need = EPOLLOUT;
				return IO_AGAIN;
			}
			return IO_ERROR;
		}
		return r;
	}
	clear_stale_errors();
	r = SSL_write(io->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
	if (r > 0)
		return r;
	r = ssl_outcome(io->ssl, (int)r, &io->write_need);
	ERR_clear_error();
	return r == 0 ? IO_ERROR : r;
}

int io_drained(const struct io *io, ssize_t got, size_t asked)
{
	if (io->ssl)
		return !SSL_has_pending(io->ssl) && (size_t)got < asked;
	return (size_t)got < asked;
}

const char *io_sni(const struct io *io)
{
	return io->ssl ? SSL_get_servername(io->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

int io_alpn_h2(const struct io *io)
{
	const unsigned char *p;
	unsigned int n;

	if (!io->ssl)
		return 0;
	SSL_get0_alpn_selected(io->ssl, &p, &n);
	return n == 2 && !memcmp(p, "h2", 2);
}

int io_update(struct loop *loop, struct io *io, int want_read, int want_write)
{
	uint32_t ev = (want_read ? io->read_need : 0) | (want_write ? io->write_need : 0);

	if (io->fd < 0 || ev == io->registered)
		return 0;
	io->registered = ev;
	return loop_mod_fd(loop, io->fd, ev);
}

void io_close(struct loop *loop, struct io *io)
{
	if (io->ssl) {
		if (io->handshake_done)
			SSL_shutdown(io->ssl);
		SSL_free(io->ssl);
		io->ssl = NULL;
	}
	if (io->fd >= 0) {
		/* accepted or dialled here and never duplicated (no fork):
		 * closing it takes it out of epoll */
		loop_close_fd(loop, io->fd);
		io->fd = -1;
	}
}
