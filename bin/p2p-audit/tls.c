/* tls.c: the OpenSSL contexts of the collector (server, demanding client
 * certificates) and of the syslog sender (client), and OpenSSL's error
 * queue as one line of text. */
#include "audit.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

const char *tls_errors(char *buf, size_t size)
{
	unsigned long e;
	size_t used = 0;

	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		char one[256];

		ERR_error_string_n(e, one, sizeof one);
		if (used < size) {
			int n = snprintf(buf + used, size - used, "%s%s", used ? "; " : "", one);

			used += n > 0 ? (size_t)n : 0;
		}
	}
	if (!buf[0])
		snprintf(buf, size, "no detail from OpenSSL");
	return buf;
}

/* "WHAT PATH: OpenSSL's errors" */
static void fail(char *err, size_t errsize, const char *what, const char *path)
{
	char detail[512];

	snprintf(err, errsize, "%s%s%s: %s", what, path ? " " : "", path ? path : "",
		 tls_errors(detail, sizeof detail));
}

static int load_identity(SSL_CTX *ctx, const char *cert, const char *key, char *err,
			 size_t errsize)
{
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		fail(err, errsize, "unable to load the certificate", cert);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		fail(err, errsize, "unable to load the private key", key);
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		fail(err, errsize, "the private key does not match the certificate:", key);
		return -1;
	}
	return 0;
}

static SSL_CTX *new_ctx(const SSL_METHOD *method, const char *ca, char *err, size_t errsize)
{
	SSL_CTX *ctx = SSL_CTX_new(method);

	if (!ctx) {
		fail(err, errsize, "unable to make a TLS context", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		fail(err, errsize, "unable to load the CA certificates", ca);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *tls_server_ctx(const char *cert, const char *key, const char *ca, char *err,
			size_t errsize)
{
	SSL_CTX *ctx = new_ctx(TLS_server_method(), ca, err, errsize);
	STACK_OF(X509_NAME) *names;

	if (!ctx)
		return NULL;
	if (load_identity(ctx, cert, key, err, errsize) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	names = SSL_load_client_CA_file(ca);
	if (names)
		SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return ctx;
}

SSL_CTX *tls_client_ctx(const char *ca, const char *cert, const char *key, char *err,
			size_t errsize)
{
	SSL_CTX *ctx = new_ctx(TLS_client_method(), ca, err, errsize);

	if (!ctx)
		return NULL;
	if (cert && load_identity(ctx, cert, key, err, errsize) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}
