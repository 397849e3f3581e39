/* reader.c: the forwarder's view of a chain: its records in order from a
 * given seq, read from the files the writer made, following rotations.
 * A rotated file keeps its inode, so the reader finishes the file it has
 * open and then opens the one that starts with the next seq: a rotated
 * audit-SEQ.log if the writer has rotated again since, else audit.log. */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void reader_close(struct reader *r)
{
	if (r->open)
		lines_close(&r->lines);
	r->open = 0;
}

static int open_file(struct reader *r, const char *name)
{
	char path[PATH_MAX + 64];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", r->dir, name);
	reader_close(r);
	if (lines_open(&r->lines, path) < 0)
		return -1;
	if (fstat(r->lines.fd, &st) < 0) {
		lines_close(&r->lines);
		return -1;
	}
	r->open = 1;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	return 0;
}

/* Is NAME in the directory a file other than the one open? */
static int other_file(struct reader *r, const char *name)
{
	char path[PATH_MAX + 64];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", r->dir, name);
	if (stat(path, &st) < 0)
		return 0;
	return !r->open || st.st_dev != r->dev || st.st_ino != r->ino;
}

static int first_of(const char *dir, const char *name, uint64_t *first)
{
	char path[PATH_MAX + 64], msg[256];
	struct lines l;
	struct record_info info;
	const char *line;
	size_t len;
	int found = 0;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (lines_open(&l, path) < 0)
		return 0;
	if (lines_next(&l, &line, &len) == LINES_LINE &&
	    record_parse_line(line, len, &info, msg, sizeof msg) == RECORD_OK) {
		*first = info.seq;
		found = 1;
	}
	lines_close(&l);
	return found;
}

int reader_seek(struct reader *r, const char *dir, uint64_t seq, uint64_t *skipped, char *err,
		size_t errsize)
{
	struct chain_file *files;
	size_t n, pick = SIZE_MAX, earliest_at = SIZE_MAX;
	uint64_t earliest = 0;

	reader_close(r);
	*skipped = 0;
	snprintf(r->dir, sizeof r->dir, "%s", dir);
	r->next = seq;
	if (chain_list(dir, &files, &n) < 0) {
		snprintf(err, errsize, "unable to list %s: %s", dir, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t first = files[i].first;

		if (!first && !first_of(dir, files[i].name, &first))
			continue; /* an empty audit.log */
		if (earliest_at == SIZE_MAX) {
			earliest_at = i;
			earliest = first;
		}
		if (first <= seq)
			pick = i;
	}
	if (pick == SIZE_MAX && earliest_at != SIZE_MAX) {
		/* Every file starts after SEQ: older ones were removed. */
		pick = earliest_at;
		*skipped = earliest - seq;
		r->next = earliest;
	}
	if (pick == SIZE_MAX) {
		free(files);
		return 0; /* nothing written yet */
	}
	if (open_file(r, files[pick].name) < 0) {
		snprintf(err, errsize, "unable to open %s/%s: %s", dir, files[pick].name,
			 strerror(errno));
		free(files);
		return -1;
	}
	free(files);
	/* Skip to r->next: remember where each line starts, and go back to
	 * the start of the one that is r->next. */
	for (;;) {
		uint64_t at = r->lines.offset;
		const char *line;
		size_t len;
		struct record_info info;
		char msg[256];
		int rc = lines_next(&r->lines, &line, &len);

		if (rc == LINES_END)
			return 0; /* r->next comes later */
		if (rc != LINES_LINE) {
			snprintf(err, errsize, "unable to read %s: %s", dir, strerror(errno));
			return -1;
		}
		if (record_parse_line(line, len, &info, msg, sizeof msg) != RECORD_OK) {
			snprintf(err, errsize, "%s: line %llu: %s", dir,
				 (unsigned long long)r->lines.lineno, msg);
			return -1;
		}
		if (info.seq < r->next)
			continue;
		if (info.seq > r->next) {
			*skipped += info.seq - r->next;
			r->next = info.seq;
		}
		if (lseek(r->lines.fd, (off_t)at, SEEK_SET) < 0) {
			snprintf(err, errsize, "unable to seek in %s: %s", dir, strerror(errno));
			return -1;
		}
		r->lines.start = r->lines.end = 0;
		r->lines.offset = at;
		return 0;
	}
}

/* At the end of the open file: move to the file holding r->next, if the
 * writer has started one. 1 moved, 0 not (yet), -1 error. */
static int next_file(struct reader *r, char *err, size_t errsize)
{
	char name[AUDIT_ROTATED_LEN + 1];

	snprintf(name, sizeof name, AUDIT_ROTATED_FMT, (unsigned long long)r->next);
	if (!other_file(r, name)) {
		snprintf(name, sizeof name, "%s", AUDIT_CURRENT);
		if (!other_file(r, name))
			return 0;
	}
	if (open_file(r, name) < 0) {
		snprintf(err, errsize, "unable to open %s/%s: %s", r->dir, name, strerror(errno));
		return -1;
	}
	return 1;
}

int reader_next(struct reader *r, uint64_t upto, const char **line, size_t *len,
		struct record_info *info, char *err, size_t errsize)
{
	char msg[256];

	while (r->next <= upto) {
		int rc;

		if (!r->open) {
			rc = next_file(r, err, errsize);
			if (rc <= 0)
				return rc;
		}
		rc = lines_next(&r->lines, line, len);
		if (rc == LINES_END) {
			rc = next_file(r, err, errsize);
			if (rc <= 0)
				return rc;
			continue;
		}
		if (rc != LINES_LINE) {
			snprintf(err, errsize, "unable to read %s: %s", r->dir, strerror(errno));
			return -1;
		}
		if (record_parse_line(*line, *len, info, msg, sizeof msg) != RECORD_OK) {
			snprintf(err, errsize, "%s: a record after seq %llu: %s", r->dir,
				 (unsigned long long)(r->next - 1), msg);
			return -1;
		}
		if (info->seq != r->next) {
			snprintf(err, errsize, "%s: seq %llu where seq %llu was expected", r->dir,
				 (unsigned long long)info->seq, (unsigned long long)r->next);
			return -1;
		}
		r->next++;
		return 1;
	}
	return 0;
}
