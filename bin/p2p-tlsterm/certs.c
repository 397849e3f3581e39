/* certs.c: the certificate directory. Every DIR/NAME.crt (the leaf, then
 * its chain, in PEM) is read with its key DIR/NAME.key; the names come from
 * the certificate itself (its DNS subjectAltNames, else its CN), never from
 * the file name, so one file may cover several names and wildcards.
 * Certificates with the same names share one SSL_CTX holding one of each
 * key type: OpenSSL then picks ECDSA or RSA by what the client supports.
 * A new store is built at each reload and swapped in whole; connections
 * that started with the old contexts keep them (OpenSSL counts
 * references), so nothing is dropped. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tlsterm.h"

#define CERTS_MAX 1024

struct cert_entry {
	char *file;
	X509 *leaf;
	STACK_OF(X509) *chain;
	EVP_PKEY *key;
	char *names;          /* sorted, space-separated, lower case */
	const char *type;
	time_t not_after;
};

struct cert_group {
	char **names;
	size_t nnames;
	SSL_CTX *ctx;
};

struct certstore {
	struct cert_entry *e;
	size_t ne;
	struct cert_group *g;
	size_t ng;
};

static void entry_clear(struct cert_entry *e)
{
	free(e->file);
	X509_free(e->leaf);
	sk_X509_pop_free(e->chain, X509_free);
	EVP_PKEY_free(e->key);
	free(e->names);
	memset(e, 0, sizeof *e);
}

void certs_free(struct certstore *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->ne; i++)
		entry_clear(&s->e[i]);
	for (size_t i = 0; i < s->ng; i++) {
		for (size_t k = 0; k < s->g[i].nnames; k++)
			free(s->g[i].names[k]);
		free(s->g[i].names);
		SSL_CTX_free(s->g[i].ctx);
	}
	free(s->e);
	free(s->g);
	free(s);
}

static const char *ssl_error_text(void)
{
	static char text[256];
	unsigned long e = ERR_get_error();

	if (!e)
		return "no detail";
	ERR_error_string_n(e, text, sizeof text);
	ERR_clear_error();
	return text;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *lower_dup(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++)
		s[i] = (char)tolower((unsigned char)p[i]);
	s[n] = '\0';
	if (n && s[n - 1] == '.')
		s[n - 1] = '\0';
	return s;
}

/* The DNS names of LEAF, sorted and joined by spaces; NULL when it has none. */
static char *cert_names(X509 *leaf)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	char *list[64], *joined;
	size_t n = 0, total = 1;

	if (gens) {
		for (int i = 0; i < sk_GENERAL_NAME_num(gens) && n < 64; i++) {
			GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

			if (g->type == GEN_DNS)
				list[n++] = lower_dup((const char *)ASN1_STRING_get0_data(g->d.dNSName),
						      (size_t)ASN1_STRING_length(g->d.dNSName));
		}
		GENERAL_NAMES_free(gens);
	} else {
		char cn[256];
		int len = X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn,
						    sizeof cn);
		if (len > 0)
			list[n++] = lower_dup(cn, (size_t)len);
	}
	for (size_t i = 0; i < n; i++) {
		if (!list[i]) {
			for (size_t k = 0; k < n; k++)
				free(list[k]);
			return NULL;
		}
		total += strlen(list[i]) + 1;
	}
	if (n == 0 || !(joined = malloc(total))) {
		for (size_t k = 0; k < n; k++)
			free(list[k]);
		return NULL;
	}
	qsort(list, n, sizeof list[0], cmp_str);
	joined[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(joined, " ");
		strcat(joined, list[i]);
		free(list[i]);
	}
	return joined;
}

/* Whether OpenSSL takes E's certificate, key and chain in a context set up
 * as the served ones are (CONFIGURE): one it refuses (a key too weak for
 * the security level, a digest it no longer trusts) is a bad file, not a
 * name left without a certificate. 1, or 0 with OpenSSL's reason queued. */
static int entry_accepted(const struct cert_entry *e, int (*configure)(SSL_CTX *ctx))
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int ok = ctx && configure(ctx) == 0 &&
		 SSL_CTX_use_cert_and_key(ctx, e->leaf, e->key, e->chain, 1) == 1;

	SSL_CTX_free(ctx);
	return ok;
}

/* Read DIR/NAME.crt and its key into E; 0, or -1 having logged why. */
static int entry_load(struct cert_entry *e, const char *dir, const char *file,
		      int (*configure)(SSL_CTX *ctx))
{
	char crt[4096], key[4096];
	BIO *bio;
	X509 *x;
	struct tm tm;
	int base;

	snprintf(crt, sizeof crt, "%s/%s", dir, file);
	snprintf(key, sizeof key, "%s/%.*s.key", dir, (int)(strlen(file) - 4), file);
	memset(e, 0, sizeof *e);
	if (!(e->file = strdup(file)) || !(e->chain = sk_X509_new_null()))
		goto oom;
	if (!(bio = BIO_new_file(crt, "r"))) {
		log_error("unable to read %s: %s", crt, strerror(errno));
		goto fail;
	}
	e->leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	while (e->leaf && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
		if (!sk_X509_push(e->chain, x)) {
			X509_free(x);
			BIO_free(bio);
			goto oom;
		}
	BIO_free(bio);
	ERR_clear_error();
	if (!e->leaf) {
		log_error("%s: no certificate in it (PEM)", crt);
		goto fail;
	}
	if (!(bio = BIO_new_file(key, "r"))) {
		log_error("unable to read %s: %s", key, strerror(errno));
		goto fail;
	}
	e->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!e->key) {
		log_error("%s: no private key in it (PEM, unencrypted): %s", key, ssl_error_text());
		goto fail;
	}
	if (X509_check_private_key(e->leaf, e->key) != 1) {
		ERR_clear_error();
		log_error("%s: the key does not match the certificate of %s", key, crt);
		goto fail;
	}
	if (!(e->names = cert_names(e->leaf))) {
		log_error("%s: no DNS name in the certificate", crt);
		goto fail;
	}
	if (!entry_accepted(e, configure)) {
		log_error("%s: OpenSSL refuses the certificate: %s", crt, ssl_error_text());
		goto fail;
	}
	base = EVP_PKEY_get_base_id(e->key);
	e->type = base == EVP_PKEY_RSA ? "rsa" : base == EVP_PKEY_EC ? "ecdsa" :
		  base == EVP_PKEY_ED25519 ? "ed25519" : "other";
	if (ASN1_TIME_to_tm(X509_get0_notAfter(e->leaf), &tm) == 1)
		e->not_after = timegm(&tm);
	return 0;
oom:
	log_error("%s/%s: out of memory", dir, file);
fail:
	entry_clear(e);
	return -1;
}

static int entry_copy(struct cert_entry *to, const struct cert_entry *from)
{
	memset(to, 0, sizeof *to);
	if (!(to->file = strdup(from->file)) || !(to->names = strdup(from->names)) ||
	    !(to->chain = X509_chain_up_ref(from->chain))) {
		entry_clear(to);
		return -1;
	}
	X509_up_ref(from->leaf);
	to->leaf = from->leaf;
	EVP_PKEY_up_ref(from->key);
	to->key = from->key;
	to->type = from->type;
	to->not_after = from->not_after;
	return 0;
}

/* By expiry, the latest last: it is the one kept for its key type. */
static int cmp_entry(const void *a, const void *b)
{
	const struct cert_entry *x = a, *y = b;

	if (x->not_after != y->not_after)
		return (x->not_after > y->not_after) - (x->not_after < y->not_after);
	return strcmp(x->file, y->file);
}

/* Whether entry E's names (space-separated) hold NAME exactly. */
static int entry_has(const struct cert_entry *e, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = e->names; (p = strstr(p, name)); p += n)
		if ((p == e->names || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return 1;
	return 0;
}

/* A context per name, holding the certificate of each key type that names
 * it (the latest to expire, entries being sorted by expiry), so that a name
 * with an ECDSA and an RSA certificate is served to both kinds of client
 * even when the two certificates name different sets. Names covered by the
 * same certificates share one context. */
static int build_groups(struct certstore *s, int (*configure)(SSL_CTX *ctx))
{
	size_t cap = 0;
	char **keys;

	qsort(s->e, s->ne, sizeof s->e[0], cmp_entry);
	for (size_t i = 0; i < s->ne; i++)
		cap += 1 + (size_t)(strchr(s->e[i].names, ' ') ? 64 : 0);
	if (!(s->g = calloc(cap + 1, sizeof *s->g)) || !(keys = calloc(cap + 1, sizeof *keys)))
		return -1;
	for (size_t i = 0; i < s->ne; i++) {
		char *copy = strdup(s->e[i].names), *save = NULL, *name;

		if (!copy)
			goto fail;
		for (name = strtok_r(copy, " ", &save); name; name = strtok_r(NULL, " ", &save)) {
			char key[CERTS_MAX * 5 + 1];
			size_t kl = 0, k;
			struct cert_group *g;

			for (k = 0; k < s->ng; k++)
				if (!strcmp(s->g[k].names[0], name))
					break;
			if (k < s->ng || s->ng >= cap)
				continue;   /* this name is done */
			for (size_t j = 0; j < s->ne; j++)
				if (entry_has(&s->e[j], name))
					kl += (size_t)snprintf(key + kl, sizeof key - kl, "%zu,", j);
			g = &s->g[s->ng];
			if (!(g->names = calloc(1, sizeof *g->names)) || !(g->names[0] = strdup(name))) {
				free(copy);
				goto fail;
			}
			g->nnames = 1;
			keys[s->ng] = strdup(key);
			s->ng++;
			for (k = 0; k + 1 < s->ng; k++)
				if (keys[k] && keys[s->ng - 1] && !strcmp(keys[k], keys[s->ng - 1]) && s->g[k].ctx)
					break;
			if (k + 1 < s->ng) {
				SSL_CTX_up_ref(s->g[k].ctx);
				g->ctx = s->g[k].ctx;
				continue;
			}
			if (!(g->ctx = SSL_CTX_new(TLS_server_method())) || configure(g->ctx) < 0) {
				free(copy);
				goto fail;
			}
			for (size_t j = 0; j < s->ne; j++)
				if (entry_has(&s->e[j], name) &&
				    SSL_CTX_use_cert_and_key(g->ctx, s->e[j].leaf, s->e[j].key, s->e[j].chain, 1) != 1)
					log_error("%s: OpenSSL refuses the certificate: %s", s->e[j].file, ssl_error_text());
		}
		free(copy);
	}
	for (size_t k = 0; k < s->ng; k++)
		free(keys[k]);
	free(keys);
	return 0;
fail:
	for (size_t k = 0; k < s->ng; k++)
		free(keys[k]);
	free(keys);
	return -1;
}

static const struct cert_entry *old_entry(const struct certstore *old, const char *file)
{
	for (size_t i = 0; old && i < old->ne; i++)
		if (!strcmp(old->e[i].file, file))
			return &old->e[i];
	return NULL;
}

struct certstore *certs_load(const char *dir, struct certstore *old,
			     int (*configure)(SSL_CTX *ctx))
{
	struct certstore *s = calloc(1, sizeof *s);
	DIR *d;
	struct dirent *de;

	if (!s || !(s->e = calloc(CERTS_MAX, sizeof *s->e))) {
		free(s);
		log_error("out of memory reading %s", dir);
		return NULL;
	}
	if (!(d = opendir(dir))) {
		log_error("unable to read the certificate directory %s: %s", dir, strerror(errno));
		certs_free(s);
		return NULL;
	}
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		const struct cert_entry *prev;

		if (n < 5 || strcmp(de->d_name + n - 4, ".crt") || de->d_name[0] == '.')
			continue;
		if (s->ne == CERTS_MAX) {
			log_error("%s: more than %d certificates: the rest are ignored", dir, CERTS_MAX);
			break;
		}
		if (entry_load(&s->e[s->ne], dir, de->d_name, configure) == 0) {
			s->ne++;
		} else if ((prev = old_entry(old, de->d_name)) && entry_copy(&s->e[s->ne], prev) == 0) {
			log_warning("%s/%s: keeping the certificate loaded before", dir, de->d_name);
			s->ne++;
		}
	}
	closedir(d);
	if (build_groups(s, configure) < 0) {
		log_error("unable to set up the certificates of %s: %s", dir, ssl_error_text());
		certs_free(s);
		return NULL;
	}
	return s;
}

static SSL_CTX *find_exact(const struct certstore *s, const char *name)
{
	for (size_t i = 0; i < s->ng; i++)
		if (!strcmp(s->g[i].names[0], name))
			return s->g[i].ctx;
	return NULL;
}

SSL_CTX *certs_find(const struct certstore *s, const char *name)
{
	char low[256], wild[258];
	const char *dot;
	size_t n = strlen(name);
	SSL_CTX *ctx;

	if (!s || n == 0 || n >= sizeof low)
		return NULL;
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	if (low[n - 1] == '.')
		low[n - 1] = '\0';
	if ((ctx = find_exact(s, low)))
		return ctx;
	/* a wildcard covers one label (RFC 6125 6.4.3) */
	if (!(dot = strchr(low, '.')) || dot == low)
		return NULL;
	snprintf(wild, sizeof wild, "*%s", dot);
	return find_exact(s, wild);
}

size_t certs_count(const struct certstore *s)
{
	return s ? s->ne : 0;
}

int certs_info(const struct certstore *s, size_t i, struct cert_info *out)
{
	if (!s || i >= s->ne)
		return -1;
	out->file = s->e[i].file;
	out->names = s->e[i].names;
	out->type = s->e[i].type;
	out->not_after = s->e[i].not_after;
	return 0;
}
