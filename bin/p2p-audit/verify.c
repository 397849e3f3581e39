/* verify.c: p2p-audit -V. Every line must be a valid record whose hash
 * matches its bytes, whose seq follows the previous one's, and whose prev
 * is the previous one's hash. An edited line fails its own hash (or, if the
 * editor also fixed the hash, the next line's prev); a removed, repeated or
 * moved line breaks the seq and prev links; a file cut short ends with an
 * unfinished line or, cut at a line, is found against the copy forwarded
 * elsewhere (the last seq and hash are printed for that). */
#include "audit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void verify_init(struct verify *v, FILE *errs)
{
	memset(v, 0, sizeof *v);
	v->errs = errs;
	memcpy(v->hash, audit_genesis, sizeof v->hash);
}

static void problem(struct verify *v, const char *file, uint64_t lineno, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void problem(struct verify *v, const char *file, uint64_t lineno, const char *fmt, ...)
{
	va_list ap;

	v->problems++;
	if (!v->errs)
		return;
	fprintf(v->errs, "%s:%llu: ", file, (unsigned long long)lineno);
	va_start(ap, fmt);
	vfprintf(v->errs, fmt, ap);
	va_end(ap);
	fputc('\n', v->errs);
}

void verify_line(struct verify *v, const char *file, uint64_t lineno, const char *line,
		 size_t len)
{
	struct record_info info;
	char msg[256];
	int rc = record_parse_line(line, len, &info, msg, sizeof msg);

	if (rc == RECORD_BAD) {
		problem(v, file, lineno, "not a valid record: %s", msg);
		v->resync = 1; /* its hash is unknown: the next line starts over */
		return;
	}
	if (rc == RECORD_HASH)
		problem(v, file, lineno, "%s", msg);
	if (!v->started) {
		v->first = info.seq;
		if (info.seq == 1 && strcmp(info.prev, audit_genesis) != 0)
			problem(v, file, lineno, "seq 1: prev is not 64 zeros (the start of a chain)");
	} else if (!v->resync) {
		if (info.seq != v->seq + 1)
			problem(v, file, lineno, "seq %llu where seq %llu was expected: records are "
				"missing, repeated or out of order", (unsigned long long)info.seq,
				(unsigned long long)(v->seq + 1));
		else if (strcmp(info.prev, v->hash) != 0)
			problem(v, file, lineno, "seq %llu: prev is not the hash of seq %llu: a record "
				"was changed, removed or inserted", (unsigned long long)info.seq,
				(unsigned long long)v->seq);
	}
	v->started = 1;
	v->resync = 0;
	v->records++;
	v->seq = info.seq;
	memcpy(v->hash, info.hash, sizeof v->hash);
	memcpy(v->host, info.host, sizeof v->host);
}

void verify_file_end(struct verify *v, const char *file, uint64_t lineno, size_t partial)
{
	if (partial)
		problem(v, file, lineno + 1, "an unfinished last line of %zu bytes (cut short; "
			"p2p-audit cuts it off at its next start)", partial);
}

struct entry {
	char *path;
	uint64_t first;             /* UINT64_MAX: unknown (empty or unreadable) */
	uint64_t named;             /* the seq in a rotated file's name, or 0 */
	size_t order;
};

static int by_first(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static uint64_t first_seq(const char *path)
{
	struct lines r;
	struct record_info info;
	const char *line;
	size_t len;
	char msg[256];
	uint64_t seq = UINT64_MAX;

	if (lines_open(&r, path) < 0)
		return seq;
	if (lines_next(&r, &line, &len) == LINES_LINE &&
	    record_parse_line(line, len, &info, msg, sizeof msg) != RECORD_BAD)
		seq = info.seq;
	lines_close(&r);
	return seq;
}

static int add_entry(struct entry **list, size_t *n, size_t *cap, const char *path,
		     uint64_t named)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 16;
		struct entry *more = realloc(*list, c * sizeof **list);

		if (!more)
			return -1;
		*list = more;
		*cap = c;
	}
	(*list)[*n].path = strdup(path);
	if (!(*list)[*n].path)
		return -1;
	(*list)[*n].named = named;
	(*list)[*n].first = first_seq(path);
	if ((*list)[*n].first == UINT64_MAX && named)
		(*list)[*n].first = named;
	(*list)[*n].order = *n;
	(*n)++;
	return 0;
}

static int add_path(struct entry **list, size_t *n, size_t *cap, const char *path)
{
	struct stat st;
	struct chain_file *files;
	size_t count;
	uint64_t named = 0;
	const char *base = strrchr(path, '/');

	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		chain_rotated_name(base ? base + 1 : path, &named);
		return add_entry(list, n, cap, path, named);
	}
	if (chain_list(path, &files, &count) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		char full[PATH_MAX];

		snprintf(full, sizeof full, "%s/%s", path, files[i].name);
		if (add_entry(list, n, cap, full, files[i].first) < 0) {
			free(files);
			return -1;
		}
	}
	free(files);
	return 0;
}

static int verify_file(struct verify *v, const struct entry *e)
{
	struct lines r;
	const char *line;
	size_t len;
	int rc, started = 0;

	if (lines_open(&r, e->path) < 0)
		return -1;
	while ((rc = lines_next(&r, &line, &len)) == LINES_LINE) {
		uint64_t before = v->records;

		verify_line(v, e->path, r.lineno, line, len);
		if (!started && e->named && v->records != before && v->seq != e->named)
			problem(v, e->path, r.lineno, "the file's name says it starts at seq %llu, "
				"it starts at seq %llu", (unsigned long long)e->named,
				(unsigned long long)v->seq);
		started = 1;
	}
	if (rc == LINES_LONG)
		problem(v, e->path, r.lineno + 1, "a line longer than %d bytes: not a p2p-audit file",
			AUDIT_LINE_MAX);
	else if (rc == LINES_END)
		verify_file_end(v, e->path, r.lineno, lines_partial(&r));
	lines_close(&r);
	return rc == LINES_ERROR ? -1 : 0;
}

int verify_paths(struct verify *v, char **paths, int n)
{
	struct entry *list = NULL;
	size_t count = 0, cap = 0;
	int rc = 0;

	for (int i = 0; i < n && rc == 0; i++)
		if (add_path(&list, &count, &cap, paths[i]) < 0) {
			if (v->errs)
				fprintf(v->errs, "%s: %s\n", paths[i], strerror(errno));
			rc = -1;
		}
	if (rc == 0 && count)
		qsort(list, count, sizeof *list, by_first);
	for (size_t i = 0; i < count && rc == 0; i++)
		if (verify_file(v, &list[i]) < 0) {
			if (v->errs)
				fprintf(v->errs, "%s: %s\n", list[i].path, strerror(errno));
			rc = -1;
		}
	for (size_t i = 0; i < count; i++)
		free(list[i].path);
	free(list);
	if (rc < 0)
		return -1;
	return v->problems ? 1 : 0;
}
