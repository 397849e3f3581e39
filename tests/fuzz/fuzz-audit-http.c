/* fuzz: p2p-audit */
/* fuzz-audit-http.c: what a client of the collector sends, after TLS: the
 * bytes as an HTTP request head (http_parse_head), and as the body of a
 * POST (collector_take, adding to a host's store in a scratch directory,
 * then forgotten). A head is complete, incomplete or refused with a status
 * and a message; a body is taken or refused with a status, and never adds
 * a record that does not continue the host's chain. */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static struct store st;
static int opened;

static int remove_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* The scratch directory goes when the fuzzer exits. */
static void remove_dir(void)
{
	nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	json_object_seed(1);
	log_init("fuzz-audit-http");
	log_set_verbosity(-1);
	snprintf(dir, sizeof dir, "/tmp/p2p-fuzz-audit.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	atexit(remove_dir);
	return 0;
}

static int may(void *arg, const char *host)
{
	(void)arg;
	return strcmp(host, "ldn") != 0; /* one host the peer may not send for */
}

static struct store *get(void *arg, const char *host, char *err, size_t errsize)
{
	(void)arg;
	(void)host;
	if (!opened) {
		if (store_open(&st, dir, 0, 0, 0, err, errsize) != STORE_OK)
			return NULL;
		opened = 1;
	}
	return &st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request req;
	struct collector_result res;
	char err[200];
	int status = 0, rc;
	uint64_t before;

	memset(err, 0, sizeof err);
	rc = http_parse_head((const char *)data, size, &req, &status, err, sizeof err);
	if (rc == HTTP_BAD && (status < 400 || status > 599 || !err[0])) {
		fprintf(stderr, "refused with status %d, message \"%s\"\n", status, err);
		abort();
	}
	if (rc == HTTP_DONE && (req.head_len > size || req.head_len > HTTP_HEAD_MAX ||
				memcmp(data + req.head_len - 4, "\r\n\r\n", 4) != 0)) {
		fprintf(stderr, "a head of %zu bytes\n", req.head_len);
		abort();
	}

	before = opened ? st.pseq : 0;
	collector_take((const char *)data, size, may, get, NULL, &res);
	if (res.status != 200 && !res.error[0]) {
		fprintf(stderr, "status %d without a message\n", res.status);
		abort();
	}
	if (res.store && res.store->pseq < before) {
		fprintf(stderr, "the chain went back\n");
		abort();
	}
	if (opened)
		store_discard(&st);
	return 0;
}
