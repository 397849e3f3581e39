/* test: p2p-tlsterm */
/* test-tlsterm-certs.c: bin/p2p-tlsterm/certs.c, the certificate
 * directory. Certificates are made here with OpenSSL (a throw-away CA, EC
 * P-256 and RSA 2048 leaves) into a scratch directory, and the store is
 * asked what a client would get: the certificate for an exact name, a
 * wildcard for one label only, both key types for a name even when the
 * ECDSA and RSA certificates name different sets, the later of two of one
 * type, nothing for an unknown name; a file that fails to load, or that
 * OpenSSL refuses, keeps the certificate loaded before from it; names come
 * from the certificate, not the file name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlsterm.h"

static char dir[64];
static EVP_PKEY *ca_key;
static X509 *ca;

static int configure(SSL_CTX *ctx)
{
	SSL_CTX_set_security_level(ctx, 2);   /* RSA keys of 2048 bits or more */
	return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 ? 0 : -1;
}

static EVP_PKEY *new_key(int rsa)
{
	return rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
}

/* A certificate for SANS (comma-separated DNS names) valid DAYS days. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *sans, int days, int serial)
{
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	char list[512] = "";
	const char *p = sans;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : X509_get_subject_name(x));
	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		snprintf(list + strlen(list), sizeof list - strlen(list), "%sDNS:%.*s", list[0] ? "," : "", (int)n, p);
		p = comma ? comma + 1 : NULL;
	}
	if (list[0]) {
		X509V3_set_ctx(&v3, ca ? ca : x, x, NULL, NULL, 0);
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, list);
		assert_non_null(ext);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(x, ca_key ? ca_key : key, EVP_sha256()) > 0);
	return x;
}

/* DIR/FILE.crt (leaf then CA) and DIR/FILE.key. */
static void write_pair(const char *file, X509 *x, EVP_PKEY *key)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s.crt", dir, file);
	assert_non_null(f = fopen(path, "w"));
	PEM_write_X509(f, x);
	PEM_write_X509(f, ca);
	fclose(f);
	snprintf(path, sizeof path, "%s/%s.key", dir, file);
	assert_non_null(f = fopen(path, "w"));
	PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
}

/* Which key types the context for NAME serves: 1 EC, 2 RSA, 3 both. */
static int types_of(const struct certstore *s, const char *name)
{
	SSL_CTX *ctx = certs_find(s, name);
	SSL *ssl;
	int t = 0;

	if (!ctx)
		return 0;
	ssl = SSL_new(ctx);
	assert_non_null(ssl);
	if (SSL_set_current_cert(ssl, SSL_CERT_SET_FIRST) == 1) {
		do {
			EVP_PKEY *k = X509_get0_pubkey(SSL_get_certificate(ssl));

			if (k)
				t |= EVP_PKEY_get_base_id(k) == EVP_PKEY_EC ? 1 : 2;
		} while (SSL_set_current_cert(ssl, SSL_CERT_SET_NEXT) == 1);
	}
	SSL_free(ssl);
	return t;
}

/* The serial number of the certificate of key type EC (or RSA) for NAME. */
static long serial_of(const struct certstore *s, const char *name, int rsa)
{
	SSL_CTX *ctx = certs_find(s, name);
	SSL *ssl;
	long serial = -1;

	if (!ctx)
		return -1;
	ssl = SSL_new(ctx);
	if (SSL_set_current_cert(ssl, SSL_CERT_SET_FIRST) == 1) {
		do {
			X509 *x = SSL_get_certificate(ssl);

			if (x && (EVP_PKEY_get_base_id(X509_get0_pubkey(x)) == EVP_PKEY_RSA) == rsa)
				serial = ASN1_INTEGER_get(X509_get0_serialNumber(x));
		} while (SSL_set_current_cert(ssl, SSL_CERT_SET_NEXT) == 1);
	}
	SSL_free(ssl);
	return serial;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/test-tlsterm-certs.XXXXXX");
	assert_non_null(mkdtemp(dir));
	ca_key = new_key(0);
	ca = make_cert(ca_key, "test CA", NULL, 30, 1);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		return -1;
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	return 0;
}

static void test_names_and_types(void **state)
{
	EVP_PKEY *k1 = new_key(0), *k2 = new_key(1), *k3 = new_key(0), *k4 = new_key(0);
	X509 *ec = make_cert(k1, "apps", "apps.corp.test,*.apps.corp.test", 30, 10);
	X509 *rsa = make_cert(k2, "apps", "apps.corp.test", 30, 11);     /* another set of names */
	X509 *vault = make_cert(k3, "vault", "Vault.Corp.Test", 30, 12);
	X509 *later = make_cert(k4, "apps", "apps.corp.test,*.apps.corp.test", 60, 13);
	struct certstore *s;
	struct cert_info ci;

	(void)state;
	write_pair("apps-ec", ec, k1);
	write_pair("apps-rsa", rsa, k2);
	write_pair("anything", vault, k3);
	assert_non_null(s = certs_load(dir, NULL, configure));
	assert_int_equal(certs_count(s), 3);
	assert_int_equal(types_of(s, "apps.corp.test"), 3);          /* both, from two name sets */
	assert_int_equal(types_of(s, "APPS.corp.test."), 3);         /* any case, a trailing dot */
	assert_int_equal(types_of(s, "x.apps.corp.test"), 1);        /* the wildcard: EC only */
	assert_int_equal(types_of(s, "a.b.apps.corp.test"), 0);      /* one label only */
	assert_int_equal(types_of(s, "vault.corp.test"), 1);         /* names from the certificate */
	assert_int_equal(types_of(s, "anything"), 0);                /* not from the file name */
	assert_int_equal(types_of(s, "nope.corp.test"), 0);
	assert_int_equal(types_of(s, ""), 0);
	assert_int_equal(certs_info(s, 0, &ci), 0);
	assert_true(ci.not_after > time(NULL) + 29 * 86400);
	assert_int_equal(certs_info(s, 3, &ci), -1);

	/* a second EC certificate for the same names: the later one serves */
	write_pair("apps-ec-2", later, k4);
	{
		struct certstore *s2 = certs_load(dir, s, configure);

		assert_non_null(s2);
		assert_int_equal(serial_of(s2, "apps.corp.test", 0), 13);
		assert_int_equal(serial_of(s2, "x.apps.corp.test", 0), 13);
		assert_int_equal(serial_of(s2, "apps.corp.test", 1), 11);
		certs_free(s2);
	}
	certs_free(s);
	X509_free(ec);
	X509_free(rsa);
	X509_free(vault);
	X509_free(later);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
	EVP_PKEY_free(k4);
}

static void test_replacement(void **state)
{
	EVP_PKEY *k1 = new_key(0), *k2 = new_key(0);
	X509 *old = make_cert(k1, "wiki", "wiki.corp.test", 30, 20);
	X509 *new = make_cert(k2, "wiki", "wiki.corp.test", 30, 21);
	struct certstore *s, *s2, *s3;
	EVP_PKEY *weak_key;
	X509 *weak;
	char path[256];

	(void)state;
	write_pair("wiki", old, k1);
	assert_non_null(s = certs_load(dir, NULL, configure));
	assert_int_equal(serial_of(s, "wiki.corp.test", 0), 20);
	/* half-way through a replacement: the new certificate, the old key */
	write_pair("wiki", new, k1);
	assert_non_null(s2 = certs_load(dir, s, configure));
	assert_int_equal(serial_of(s2, "wiki.corp.test", 0), 20);   /* the old pair is kept */
	/* done: the new pair */
	write_pair("wiki", new, k2);
	assert_non_null(s3 = certs_load(dir, s2, configure));
	assert_int_equal(serial_of(s3, "wiki.corp.test", 0), 21);
	/* the old store's context still works (connections that started on it) */
	assert_int_equal(serial_of(s, "wiki.corp.test", 0), 20);
	certs_free(s);
	certs_free(s2);
	/* a pair that matches but that OpenSSL refuses (RSA 1024 at security
	 * level 2) is a bad file: the pair before is kept, the name served */
	weak_key = EVP_RSA_gen(1024);
	assert_non_null(weak_key);
	weak = make_cert(weak_key, "wiki", "wiki.corp.test", 30, 22);
	write_pair("wiki", weak, weak_key);
	assert_non_null(s2 = certs_load(dir, s3, configure));
	assert_int_equal(serial_of(s2, "wiki.corp.test", 0), 21);
	assert_int_equal(serial_of(s2, "wiki.corp.test", 1), -1);
	certs_free(s3);
	s3 = s2;
	write_pair("wiki", new, k2);
	/* removed: gone at the next load */
	snprintf(path, sizeof path, "%s/wiki.crt", dir);
	assert_int_equal(unlink(path), 0);
	assert_non_null(s = certs_load(dir, s3, configure));
	assert_int_equal(types_of(s, "wiki.corp.test"), 0);
	certs_free(s);
	certs_free(s3);
	assert_null(certs_load("/nonexistent/dir", NULL, configure));
	X509_free(old);
	X509_free(new);
	X509_free(weak);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(weak_key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_and_types),
		cmocka_unit_test(test_replacement),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
