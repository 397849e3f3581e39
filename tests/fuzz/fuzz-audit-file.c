/* fuzz: p2p-audit */
/* fuzz-audit-file.c: bytes as the content of an audit.log, read the two
 * ways p2p-audit reads its files: by the verifier (-V: lines.c and
 * verify.c through a real file) and by recovery at start (store_open,
 * read-only: the tail, the last record, the first record). Neither may
 * crash or read out of bounds; the verifier must find no problem in a file
 * exactly when every line is a record chained to the one before; and
 * chain_tail's answer must describe the bytes it was given. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], path[128];

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
	log_init("fuzz-audit-file");
	log_set_verbosity(-1);
	snprintf(dir, sizeof dir, "/tmp/p2p-fuzz-audit.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	atexit(remove_dir);
	snprintf(path, sizeof path, "%s/%s", dir, AUDIT_CURRENT);
	return 0;
}

static void check_tail(const char *buf, size_t len, int whole)
{
	size_t torn, start, linelen;
	int rc = chain_tail(buf, len, whole, &torn, &start, &linelen);

	if (torn > len || (rc == 1 && (start + linelen + 1 + torn != len ||
				       buf[start + linelen] != '\n' ||
				       memchr(buf + start, '\n', linelen) ||
				       (start > 0 && buf[start - 1] != '\n')))) {
		fprintf(stderr, "chain_tail: rc %d torn %zu start %zu len %zu of %zu\n", rc, torn,
			start, linelen, len);
		abort();
	}
	if (rc == 0 && len && (torn != len || memchr(buf, '\n', len))) {
		fprintf(stderr, "chain_tail: no line, yet a newline\n");
		abort();
	}
}

/* Every line a record, each chained to the one before? */
static int chain_holds(const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;
	struct record_info info;
	char msg[256], prev[AUDIT_HEX + 1];
	uint64_t seq = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (!nl || nl - p + 1 > AUDIT_LINE_MAX ||
		    record_parse_line(p, (size_t)(nl - p), &info, msg, sizeof msg) != RECORD_OK)
			return 0;
		if (seq && (info.seq != seq + 1 || strcmp(info.prev, prev) != 0))
			return 0;
		if (info.seq == 1 && strcmp(info.prev, audit_genesis) != 0)
			return 0;
		seq = info.seq;
		memcpy(prev, info.hash, sizeof prev);
		p = nl + 1;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	char *paths[1] = { path }, err[1024];
	struct verify v;
	struct store s;
	int fd, rc;

	check_tail(buf, size, 1);
	if (size > 10)
		check_tail(buf + 10, size - 10, 0);

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
	verify_init(&v, NULL);
	rc = verify_paths(&v, paths, 1);
	if (rc < 0) {
		fprintf(stderr, "verify: %s\n", strerror(errno));
		abort();
	}
	if ((rc == 0) != chain_holds(buf, size)) {
		fprintf(stderr, "verify says %d, the chain %s\n", rc,
			chain_holds(buf, size) ? "holds" : "does not hold");
		abort();
	}
	rc = store_open(&s, dir, 0, 0, 1, err, sizeof err);
	if (rc == STORE_OK)
		store_close(&s);
	else if (rc != STORE_CORRUPT || !err[0]) {
		fprintf(stderr, "store_open: %d %s\n", rc, err);
		abort();
	}
	return 0;
}
