/* store.c: one hash chain on disk, appended to with group commit.
 *
 * Records are made into lines as they arrive (store_add) and wait in a
 * buffer; store_commit writes them all with one write() and makes them
 * durable with one fdatasync(), after which the caller acknowledges them.
 * A write that fails is cut back off the file and tried again later; a
 * failed fdatasync leaves the file's state unknown, so the caller exits and
 * recovery at the next start decides what is there.
 *
 * Recovery: a crash can leave only an unfinished last line (each commit is
 * one write, and nothing after the last fdatasync was acknowledged), which
 * is cut off; the last complete record must then verify, and the chain
 * goes on from it. */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static void say(char *err, size_t errsize, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
}

/* The number of the line that starts at OFFSET, for messages. */
static uint64_t line_number_at(int fd, uint64_t offset)
{
	char buf[65536];
	uint64_t pos = 0, lines = 1;

	while (pos < offset) {
		size_t want = offset - pos < sizeof buf ? (size_t)(offset - pos) : sizeof buf;
		ssize_t n = pread(fd, buf, want, (off_t)pos);

		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
		pos += (uint64_t)n;
	}
	return lines;
}

static int pread_all(int fd, char *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

enum torn_line { TORN_CUT, TORN_NOTE, TORN_REFUSE };

/* The last record of the file FD (called NAME): 1 found (in LAST), 0 the
 * file has none, or a STORE_ error. An unfinished last line is cut off
 * (TORN_CUT), noted in s->torn and left (TORN_NOTE, for -n), or an error
 * (TORN_REFUSE). SIZE gets the size without it. */
static int recover_tail(struct store *s, int fd, const char *name, enum torn_line cut,
			struct record_info *last, uint64_t *size, char *err, size_t errsize)
{
	size_t window = 2 * AUDIT_LINE_MAX + 1, torn, start, linelen;
	struct stat st;
	char *buf, msg[256];
	int rc, prc;

	if (fstat(fd, &st) < 0) {
		say(err, errsize, "unable to stat %s/%s: %s", s->dir, name, strerror(errno));
		return STORE_SYSTEM;
	}
	*size = (uint64_t)st.st_size;
	if (*size == 0)
		return 0;
	if ((uint64_t)window > *size)
		window = (size_t)*size;
	buf = malloc(window);
	if (!buf) {
		say(err, errsize, "out of memory");
		return STORE_SYSTEM;
	}
	if (pread_all(fd, buf, window, (off_t)(*size - window)) < 0) {
		say(err, errsize, "unable to read %s/%s: %s", s->dir, name, strerror(errno));
		free(buf);
		return STORE_SYSTEM;
	}
	rc = chain_tail(buf, window, window == *size, &torn, &start, &linelen);
	if (rc < 0) {
		say(err, errsize, "%s/%s: the last line is longer than %d bytes: not a p2p-audit file, "
		    "or damaged (see p2p-audit -V)", s->dir, name, AUDIT_LINE_MAX);
		free(buf);
		return STORE_CORRUPT;
	}
	if (torn) {
		if (cut == TORN_REFUSE) {
			say(err, errsize, "%s/%s: ends with an unfinished line of %zu bytes", s->dir, name,
			    torn);
			free(buf);
			return STORE_CORRUPT;
		}
		if (cut == TORN_CUT && (ftruncate(fd, (off_t)(*size - torn)) < 0 || fdatasync(fd) < 0)) {
			say(err, errsize, "unable to cut the unfinished last line off %s/%s: %s", s->dir,
			    name, strerror(errno));
			free(buf);
			return STORE_SYSTEM;
		}
		s->torn = torn;
		*size -= torn;
	}
	if (rc == 0) {
		free(buf);
		return 0;
	}
	prc = record_parse_line(buf + start, linelen, last, msg, sizeof msg);
	if (prc != RECORD_OK) {
		uint64_t at = *size - window + start;

		say(err, errsize, "%s/%s:%llu: the last record does not verify: %s (see p2p-audit -V; "
		    "move the directory's files aside to start a new chain)", s->dir, name,
		    (unsigned long long)line_number_at(fd, at), msg);
		free(buf);
		return STORE_CORRUPT;
	}
	free(buf);
	return 1;
}

/* The seq of the first record of audit.log. */
static int read_first(struct store *s, char *err, size_t errsize)
{
	struct lines r;
	struct record_info info;
	const char *line;
	size_t len;
	char msg[256];
	int rc;

	if (lines_open_fd(&r, s->fd) < 0) {
		say(err, errsize, "out of memory");
		return STORE_SYSTEM;
	}
	if (lseek(s->fd, 0, SEEK_SET) < 0) {
		lines_close(&r);
		say(err, errsize, "unable to seek %s/%s: %s", s->dir, AUDIT_CURRENT, strerror(errno));
		return STORE_SYSTEM;
	}
	rc = lines_next(&r, &line, &len);
	if (rc != LINES_LINE || record_parse_line(line, len, &info, msg, sizeof msg) != RECORD_OK) {
		if (rc != LINES_LINE)
			snprintf(msg, sizeof msg, "%s", rc == LINES_ERROR ? strerror(errno) : "no line");
		lines_close(&r);
		say(err, errsize, "%s/%s:1: the first record does not verify: %s (see p2p-audit -V)",
		    s->dir, AUDIT_CURRENT, msg);
		return STORE_CORRUPT;
	}
	lines_close(&r);
	s->first = info.seq;
	return STORE_OK;
}

/* Where the chain goes on when audit.log is empty: the newest rotated file. */
static int recover_from_rotated(struct store *s, char *err, size_t errsize)
{
	struct chain_file *files;
	size_t n;
	struct record_info last;
	uint64_t size;
	int fd, rc;

	if (chain_list(s->dir, &files, &n) < 0) {
		say(err, errsize, "unable to list %s: %s", s->dir, strerror(errno));
		return STORE_SYSTEM;
	}
	for (size_t i = n; i-- > 0;) {
		if (files[i].first == 0)
			continue;
		fd = openat(s->dirfd, files[i].name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			say(err, errsize, "unable to open %s/%s: %s", s->dir, files[i].name,
			    strerror(errno));
			free(files);
			return STORE_SYSTEM;
		}
		rc = recover_tail(s, fd, files[i].name, TORN_REFUSE, &last, &size, err, errsize);
		close(fd);
		if (rc < 0) {
			free(files);
			return rc;
		}
		if (rc == 1) {
			s->seq = last.seq;
			memcpy(s->hash, last.hash, sizeof s->hash);
		}
		break;
	}
	free(files);
	return STORE_OK;
}

/* Open audit.log, creating it (after a rotation) and making its name
 * durable: -1 when it cannot be opened, -2 when the directory cannot be
 * synced (errno). */
static int open_current(struct store *s, int excl)
{
	int flags = O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | (excl ? O_EXCL : 0);

	s->fd = openat(s->dirfd, AUDIT_CURRENT, flags, 0640);
	if (s->fd < 0)
		return -1;
	if (fsync(s->dirfd) < 0) {
		int saved = errno;

		close(s->fd);
		s->fd = -1;
		errno = saved;
		return -2;
	}
	return 0;
}

int store_open(struct store *s, const char *dir, uint64_t rotate_size, unsigned keep,
	       int readonly, char *err, size_t errsize)
{
	struct record_info last;
	int rc;

	memset(s, 0, sizeof *s);
	s->fd = s->dirfd = -1;
	s->rotate_size = rotate_size;
	s->keep = keep;
	memcpy(s->hash, audit_genesis, sizeof s->hash);
	if (snprintf(s->dir, sizeof s->dir, "%s", dir) >= (int)sizeof s->dir) {
		say(err, errsize, "%s: path too long", dir);
		return STORE_SYSTEM;
	}
	if (!readonly && mkdir(dir, 0750) < 0 && errno != EEXIST) {
		say(err, errsize, "unable to create %s: %s", dir, strerror(errno));
		return STORE_SYSTEM;
	}
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		if (readonly && errno == ENOENT)
			return STORE_OK; /* nothing yet: a new chain */
		say(err, errsize, "unable to open %s: %s", dir, strerror(errno));
		return STORE_SYSTEM;
	}
	if (readonly)
		s->fd = openat(s->dirfd, AUDIT_CURRENT, O_RDONLY | O_CLOEXEC);
	else if (open_current(s, 0) < 0)
		s->fd = -1;
	if (s->fd < 0 && !(readonly && errno == ENOENT)) {
		say(err, errsize, "unable to open %s/%s: %s", dir, AUDIT_CURRENT, strerror(errno));
		store_close(s);
		return STORE_SYSTEM;
	}
	rc = s->fd < 0 ? 0
		       : recover_tail(s, s->fd, AUDIT_CURRENT, readonly ? TORN_NOTE : TORN_CUT, &last,
				      &s->size, err, errsize);
	if (rc == 1) {
		s->seq = last.seq;
		memcpy(s->hash, last.hash, sizeof s->hash);
		rc = read_first(s, err, errsize);
	} else if (rc == 0) {
		rc = recover_from_rotated(s, err, errsize);
	}
	if (rc < 0) {
		store_close(s);
		return rc;
	}
	s->pseq = s->seq;
	memcpy(s->phash, s->hash, sizeof s->phash);
	return STORE_OK;
}

void store_close(struct store *s)
{
	if (s->fd >= 0)
		close(s->fd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	s->fd = s->dirfd = -1;
	free(s->buf);
	s->buf = NULL;
	s->len = s->cap = 0;
}

static int reserve(struct store *s, size_t len)
{
	if (s->len + len > s->cap) {
		size_t cap = s->cap ? s->cap : 65536;
		char *p;

		while (cap < s->len + len)
			cap *= 2;
		p = realloc(s->buf, cap);
		if (!p)
			return -1;
		s->buf = p;
		s->cap = cap;
	}
	return 0;
}

static int append(struct store *s, const char *data, size_t len)
{
	if (reserve(s, len) < 0)
		return -1;
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	return 0;
}

int store_add_body(struct store *s, const char *body, size_t bodylen, const char *host,
		   const char *time, uint64_t *seq)
{
	char hash[AUDIT_HEX + 1];
	size_t len;

	if (s->len >= STORE_PENDING_MAX) {
		errno = ENOBUFS;
		return -1;
	}
	/* The line is made in place, after the lines waiting. */
	if (reserve(s, AUDIT_LINE_MAX + 1) < 0)
		return -1;
	len = record_line(body, bodylen, s->pseq + 1, time, host, s->phash, hash, s->buf + s->len);
	if (!len)
		return -1;
	s->len += len;
	if (s->len == len)
		s->pfirst = s->pseq + 1;
	s->pseq++;
	memcpy(s->phash, hash, sizeof s->phash);
	*seq = s->pseq;
	return 0;
}

int store_add(struct store *s, json_t *checked, const char *host, const char *time,
	      uint64_t *seq)
{
	size_t bodylen;
	char *body = record_body(checked, &bodylen);
	int rc;

	if (!body)
		return -1;
	rc = store_add_body(s, body, bodylen, host, time, seq);
	free(body);
	return rc;
}

int store_add_line(struct store *s, const char *line, size_t len,
		   const struct record_info *info)
{
	if (s->len >= STORE_PENDING_MAX) {
		errno = ENOBUFS;
		return -1;
	}
	if (s->pseq && (info->seq != s->pseq + 1 || strcmp(info->prev, s->phash) != 0)) {
		errno = EINVAL;
		return -1;
	}
	if (reserve(s, len + 1) < 0)
		return -1;
	if (s->len == 0)
		s->pfirst = info->seq;
	append(s, line, len);
	append(s, "\n", 1);
	s->pseq = info->seq;
	memcpy(s->phash, info->hash, sizeof s->phash);
	return 0;
}

/* Keep at most s->keep rotated files, never one holding records above
 * SAFE_SEQ (not yet forwarded). */
static void prune(struct store *s, uint64_t safe_seq)
{
	struct chain_file *files;
	size_t n, rotated = 0;

	if (!s->keep)
		return;
	if (chain_list(s->dir, &files, &n) < 0) {
		log_warning("unable to list %s to remove old files: %s", s->dir, strerror(errno));
		return;
	}
	for (size_t i = 0; i < n; i++)
		rotated += files[i].first != 0;
	for (size_t i = 0; i < n && rotated > s->keep && files[i].first; i++) {
		/* The next file starts where this one ends: a rotated file's
		 * name says where, audit.log's first record (or, empty, the
		 * next seq). */
		uint64_t next = i + 1 < n && files[i + 1].first ? files[i + 1].first
				: s->first ? s->first : s->seq + 1;
		uint64_t last = next - 1;

		if (last > safe_seq)
			break;
		if (unlinkat(s->dirfd, files[i].name, 0) < 0) {
			log_warning("unable to remove %s/%s: %s", s->dir, files[i].name, strerror(errno));
			break;
		}
		log_info("removed %s/%s (records %llu to %llu): more than %u rotated files", s->dir,
			 files[i].name, (unsigned long long)files[i].first, (unsigned long long)last,
			 s->keep);
		rotated--;
	}
	free(files);
}

/* audit.log becomes audit-FIRST.log and a new audit.log is started. A
 * rename that fails leaves everything as it was (the file grows on); a new
 * file that cannot be made is tried again at the next commit. */
static int rotate(struct store *s, uint64_t safe_seq, char *err, size_t errsize)
{
	char name[AUDIT_ROTATED_LEN + 1];
	int rc;

	snprintf(name, sizeof name, AUDIT_ROTATED_FMT, (unsigned long long)s->first);
	if (renameat(s->dirfd, AUDIT_CURRENT, s->dirfd, name) < 0) {
		log_error("unable to rotate %s/%s to %s: %s", s->dir, AUDIT_CURRENT, name,
			  strerror(errno));
		return STORE_OK;
	}
	close(s->fd);
	s->fd = -1;
	s->size = 0;
	s->first = 0;
	s->rotations++;
	rc = open_current(s, 1);
	if (rc == -2) {
		say(err, errsize, "unable to make the rotation of %s durable: %s", s->dir,
		    strerror(errno));
		return STORE_SYNC;
	}
	if (rc < 0) {
		log_error("unable to start a new %s/%s after rotating: %s (trying again at the next "
			  "write)", s->dir, AUDIT_CURRENT, strerror(errno));
	}
	log_info("rotated %s/%s to %s", s->dir, AUDIT_CURRENT, name);
	prune(s, safe_seq);
	return STORE_OK;
}

int store_commit(struct store *s, uint64_t safe_seq, char *err, size_t errsize)
{
	size_t off = 0;
	int rc;

	if (s->len == 0)
		return STORE_OK;
	if (s->fd < 0 && (rc = open_current(s, 0)) < 0) {
		say(err, errsize, "unable to %s %s/%s: %s", rc == -2 ? "sync the directory of" : "open",
		    s->dir, AUDIT_CURRENT, strerror(errno));
		return rc == -2 ? STORE_SYNC : STORE_SYSTEM;
	}
	while (off < s->len) {
		ssize_t n = write(s->fd, s->buf + off, s->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int saved = n < 0 ? errno : EIO;

			/* Cut a partial write back, so the file ends at a line. */
			if (off && ftruncate(s->fd, (off_t)s->size) < 0) {
				say(err, errsize, "unable to cut a failed write off %s/%s: %s", s->dir,
				    AUDIT_CURRENT, strerror(errno));
				return STORE_SYNC;
			}
			say(err, errsize, "unable to write to %s/%s: %s", s->dir, AUDIT_CURRENT,
			    strerror(saved));
			return STORE_SYSTEM;
		}
		off += (size_t)n;
	}
	if (fdatasync(s->fd) < 0) {
		int saved = errno;

		/* What this group wrote may stay in the page cache, marked clean
		 * (Linux does that after a failed writeback): cut it off, so that
		 * the next start does not carry on from records that never
		 * reached the disk (none of them was acknowledged). */
		if (ftruncate(s->fd, (off_t)s->size) < 0 || fsync(s->fd) < 0)
			log_error("unable to cut the records that did not reach the disk off %s/%s: %s",
				  s->dir, AUDIT_CURRENT, strerror(errno));
		say(err, errsize, "unable to sync %s/%s: %s", s->dir, AUDIT_CURRENT, strerror(saved));
		return STORE_SYNC;
	}
	if (s->first == 0)
		s->first = s->pfirst;
	s->size += s->len;
	s->len = 0;
	s->seq = s->pseq;
	memcpy(s->hash, s->phash, sizeof s->hash);
	s->commits++;
	if (s->rotate_size && s->size >= s->rotate_size)
		return rotate(s, safe_seq, err, errsize);
	return STORE_OK;
}

void store_discard(struct store *s)
{
	s->len = 0;
	s->pseq = s->seq;
	memcpy(s->phash, s->hash, sizeof s->phash);
}
