/* test: p2p-audit */
/* test-audit-store.c: the chain on disk. Group commit writes what was
 * added and nothing is lost across a reopen; recovery cuts an unfinished
 * last line (a crash during a write) and refuses a last record that does
 * not verify; rotation continues the chain across files, and recovers when
 * a crash came between the rename and the new file; the verifier names the
 * line of every kind of tampering; the forwarder's reader follows the
 * chain across rotations; the collector keeps a host's chain exact (no
 * duplicates, no gaps). Each test works in its own directory under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "file.h"
#include "log.h"

static char dir[64];

static int setup(void **ctx)
{
	(void)ctx;
	strcpy(dir, "/tmp/p2p-test-audit.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **ctx)
{
	(void)ctx;
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *path_of(const char *name)
{
	static char buf[4][PATH_MAX];
	static int next;
	char *p = buf[next++ % 4];

	snprintf(p, PATH_MAX, "%s/%s", dir, name);
	return p;
}

static void open_store(struct store *s, uint64_t rotate, unsigned keep)
{
	char err[1024] = "";

	if (store_open(s, path_of("trail"), rotate, keep, 0, err, sizeof err) != STORE_OK)
		fail_msg("store_open: %s", err);
}

static json_t *record(int n)
{
	char err[256], text[512];
	json_t *rec;

	snprintf(text, sizeof text, "{\"type\":\"request\",\"resource\":\"vault\",\"decision\":\"allow\","
		 "\"method\":\"GET\",\"path\":\"/item/%d\",\"request_id\":\"r-%d\",\"status\":200}", n, n);
	rec = record_check_text(text, strlen(text), err, sizeof err);
	assert_non_null(rec);
	return rec;
}

/* Add records FROM..TO (their request ids) and commit them. */
static void add_commit(struct store *s, int from, int to)
{
	char err[512] = "";

	for (int n = from; n <= to; n++) {
		json_t *rec = record(n);
		uint64_t seq;

		assert_int_equal(store_add(s, rec, "ny", "2026-11-22T10:11:12.000000Z", &seq), 0);
		assert_int_equal(seq, s->pseq);
		json_decref(rec);
	}
	if (store_commit(s, UINT64_MAX, err, sizeof err) != STORE_OK)
		fail_msg("store_commit: %s", err);
}

static char *slurp(const char *path, size_t *len)
{
	char *text = file_read(path, 64u << 20, len);

	assert_non_null(text);
	return text;
}

static void spit(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0640);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static int count_lines(const char *path)
{
	size_t len;
	char *text = slurp(path, &len);
	int n = 0;

	for (size_t i = 0; i < len; i++)
		n += text[i] == '\n';
	free(text);
	return n;
}

/* Verify PATH; the problems in OUT. Returns verify_paths's answer. */
static int verify(const char *path, char *out, size_t size, struct verify *v)
{
	FILE *f = fmemopen(out, size, "w");
	char *paths[1] = { (char *)path };
	int rc;

	memset(out, 0, size);
	verify_init(v, f);
	rc = verify_paths(v, paths, 1);
	fclose(f);
	return rc;
}

static void test_commit_and_reopen(void **ctx)
{
	struct store s;
	char hash[65];
	struct verify v;
	char out[4096];

	(void)ctx;
	open_store(&s, 0, 0);
	assert_int_equal(s.seq, 0);
	assert_string_equal(s.hash, audit_genesis);
	add_commit(&s, 1, 3);
	assert_int_equal(s.seq, 3);
	assert_int_equal(s.commits, 1);
	assert_int_equal(store_pending(&s), 0);
	assert_int_equal(count_lines(path_of("trail/audit.log")), 3);
	memcpy(hash, s.hash, sizeof hash);
	store_close(&s);
	/* Added and not committed: not in the file, and gone at reopen. */
	open_store(&s, 0, 0);
	assert_int_equal(s.seq, 3);
	assert_string_equal(s.hash, hash);
	assert_int_equal(s.first, 1);
	{
		json_t *rec = record(4);
		uint64_t seq;

		assert_int_equal(store_add(&s, rec, "ny", "2026-11-22T10:11:12.000000Z", &seq), 0);
		assert_int_equal(seq, 4);
		json_decref(rec);
	}
	assert_int_equal(count_lines(path_of("trail/audit.log")), 3);
	store_close(&s);
	open_store(&s, 0, 0);
	assert_int_equal(s.seq, 3);
	add_commit(&s, 4, 5);
	store_close(&s);
	assert_int_equal(verify(path_of("trail"), out, sizeof out, &v), 0);
	assert_int_equal(v.records, 5);
	assert_int_equal(v.seq, 5);
}

static void test_torn_line_cut(void **ctx)
{
	struct store s;
	size_t len;
	char *text, out[4096];
	struct verify v;
	int fd;

	(void)ctx;
	open_store(&s, 0, 0);
	add_commit(&s, 1, 3);
	store_close(&s);
	text = slurp(path_of("trail/audit.log"), &len);
	/* A crash in the middle of the fourth line's write. */
	fd = open(path_of("trail/audit.log"), O_WRONLY | O_APPEND);
	assert_int_equal(write(fd, text, 100), 100);
	close(fd);
	assert_int_equal(verify(path_of("trail"), out, sizeof out, &v), 1);
	assert_non_null(strstr(out, "audit.log:4: an unfinished last line of 100 bytes"));
	open_store(&s, 0, 0);
	assert_int_equal(s.torn, 100);
	assert_int_equal(s.seq, 3);
	assert_int_equal(s.size, len);
	add_commit(&s, 4, 4);
	store_close(&s);
	assert_int_equal(verify(path_of("trail"), out, sizeof out, &v), 0);
	assert_int_equal(v.records, 4);
	free(text);
}

static void test_bad_last_record_refused(void **ctx)
{
	struct store s;
	size_t len;
	char *text, err[1024], *p;

	(void)ctx;
	open_store(&s, 0, 0);
	add_commit(&s, 1, 3);
	store_close(&s);
	text = slurp(path_of("trail/audit.log"), &len);
	p = strstr(text, "/item/3");
	p[6] = '9';
	spit(path_of("trail/audit.log"), text, len);
	assert_int_equal(store_open(&s, path_of("trail"), 0, 0, 0, err, sizeof err), STORE_CORRUPT);
	assert_non_null(strstr(err, "/trail/audit.log:3: the last record does not verify"));
	/* Read-only (-n) says the same without touching anything. */
	assert_int_equal(store_open(&s, path_of("trail"), 0, 0, 1, err, sizeof err), STORE_CORRUPT);
	free(text);
}

static void test_rotation_continues_chain(void **ctx)
{
	struct store s;
	struct chain_file *files;
	size_t n;
	char out[4096], hash[65];
	struct verify v;

	(void)ctx;
	open_store(&s, 4096, 0);
	for (int i = 0; i < 40; i++)
		add_commit(&s, 5 * i + 1, 5 * i + 5);
	assert_int_equal(s.seq, 200);
	assert_true(s.rotations >= 3);
	assert_int_equal(chain_list(path_of("trail"), &files, &n), 0);
	assert_int_equal(n, s.rotations + 1);
	assert_string_equal(files[0].name, "audit-00000000000000000001.log");
	assert_string_equal(files[n - 1].name, AUDIT_CURRENT);
	for (size_t i = 1; i + 1 < n; i++)
		assert_true(files[i].first > files[i - 1].first);
	free(files);
	memcpy(hash, s.hash, sizeof hash);
	store_close(&s);
	assert_int_equal(verify(path_of("trail"), out, sizeof out, &v), 0);
	assert_int_equal(v.records, 200);
	assert_int_equal(v.first, 1);
	assert_string_equal(v.hash, hash);
	open_store(&s, 4096, 0);
	assert_int_equal(s.seq, 200);
	store_close(&s);
}

static void test_crash_between_rename_and_new_file(void **ctx)
{
	struct store s;
	char out[4096], name[64];
	struct verify v;

	(void)ctx;
	open_store(&s, 0, 0);
	add_commit(&s, 1, 10);
	snprintf(name, sizeof name, "trail/" AUDIT_ROTATED_FMT, 1ULL);
	store_close(&s);
	assert_int_equal(rename(path_of("trail/audit.log"), path_of(name)), 0);
	open_store(&s, 0, 0);
	assert_int_equal(s.seq, 10);
	add_commit(&s, 11, 12);
	assert_int_equal(s.first, 11);
	store_close(&s);
	assert_int_equal(verify(path_of("trail"), out, sizeof out, &v), 0);
	assert_int_equal(v.records, 12);
}

static void test_keep_removes_old_files(void **ctx)
{
	struct store s;
	struct chain_file *files;
	size_t n;

	(void)ctx;
	open_store(&s, 4096, 2);
	for (int i = 0; i < 60; i++)
		add_commit(&s, 5 * i + 1, 5 * i + 5);
	assert_int_equal(chain_list(path_of("trail"), &files, &n), 0);
	assert_int_equal(n, 3); /* two rotated, and audit.log */
	free(files);
	store_close(&s);
}

static void test_keep_spares_unforwarded(void **ctx)
{
	struct store s;
	struct chain_file *files;
	size_t n;
	char err[256];

	(void)ctx;
	open_store(&s, 4096, 1);
	for (int i = 0; i < 40; i++) {
		for (int k = 0; k < 5; k++) {
			json_t *rec = record(k);
			uint64_t seq;

			assert_int_equal(store_add(&s, rec, "ny", "2026-11-22T10:11:12.000000Z", &seq), 0);
			json_decref(rec);
		}
		/* Nothing forwarded: nothing may go. */
		assert_int_equal(store_commit(&s, 0, err, sizeof err), STORE_OK);
	}
	assert_int_equal(chain_list(path_of("trail"), &files, &n), 0);
	assert_int_equal(n, s.rotations + 1);
	free(files);
	store_close(&s);
}

/* Lines of the file, to edit. */
struct file_lines {
	char *text;
	char *line[64];
	size_t len[64];
	int n;
};

static void split(const char *path, struct file_lines *f)
{
	size_t len;
	char *p;

	f->text = slurp(path, &len);
	f->n = 0;
	for (p = f->text; p < f->text + len && f->n < 64;) {
		char *nl = strchr(p, '\n');

		f->line[f->n] = p;
		f->len[f->n] = (size_t)(nl - p) + 1;
		f->n++;
		p = nl + 1;
	}
}

static void join(const char *path, struct file_lines *f, int skip)
{
	FILE *out = fopen(path, "w");

	for (int i = 0; i < f->n; i++)
		if (i != skip)
			fwrite(f->line[i], 1, f->len[i], out);
	fclose(out);
}

static void make_ten(void)
{
	struct store s;

	open_store(&s, 0, 0);
	add_commit(&s, 1, 10);
	store_close(&s);
}

static void test_verify_names_changed_line(void **ctx)
{
	struct file_lines f;
	char out[4096];
	struct verify v;

	(void)ctx;
	make_ten();
	split(path_of("trail/audit.log"), &f);
	*strstr(f.line[4], "/item/5") = 'X';
	join(path_of("trail/audit.log"), &f, -1);
	assert_int_equal(verify(path_of("trail"), out, sizeof out, &v), 1);
	assert_non_null(strstr(out, "trail/audit.log:5: seq 5: the hash does not match the line"));
	assert_int_equal(v.problems, 1); /* the next line still links to the stated hash */
	free(f.text);
}

static void test_verify_names_rehashed_line(void **ctx)
{
	struct file_lines f;
	char out[4096], hash[65];
	struct verify v;
	char *line;

	(void)ctx;
	make_ten();
	split(path_of("trail/audit.log"), &f);
	/* Changed, and the hash made right again: the next line's prev says. */
	line = f.line[4];
	*strstr(line, "/item/5") = 'X';
	assert_int_equal(record_line_hash(line, f.len[4] - 1, hash), 0);
	memcpy(line + f.len[4] - 1 - 2 - 64, hash, 64);
	join(path_of("trail/audit.log"), &f, -1);
	assert_int_equal(verify(path_of("trail"), out, sizeof out, &v), 1);
	assert_non_null(strstr(out, "trail/audit.log:6: seq 6: prev is not the hash of seq 5"));
	free(f.text);
}

static void join_order(const char *path, struct file_lines *f, const int *order, int n)
{
	FILE *out = fopen(path, "w");

	for (int i = 0; i < n; i++)
		fwrite(f->line[order[i]], 1, f->len[order[i]], out);
	fclose(out);
}

static void test_verify_names_removed_and_moved_lines(void **ctx)
{
	static const int removed[] = { 0, 1, 2, 3, 4, 5, 7, 8, 9 };
	static const int swapped[] = { 0, 1, 3, 2, 4, 5, 6, 7, 8, 9 };
	static const int first_gone[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	struct file_lines f;
	char out[4096];
	struct verify v;

	(void)ctx;
	make_ten();
	split(path_of("trail/audit.log"), &f);
	join_order(path_of("trail/audit.log"), &f, removed, 9); /* seq 7 removed */
	assert_int_equal(verify(path_of("trail"), out, sizeof out, &v), 1);
	assert_non_null(strstr(out, "trail/audit.log:7: seq 8 where seq 7 was expected"));
	join_order(path_of("trail/audit.log"), &f, swapped, 10);
	assert_int_equal(verify(path_of("trail"), out, sizeof out, &v), 1);
	assert_non_null(strstr(out, "trail/audit.log:3: seq 4 where seq 3 was expected"));
	/* The first line removed: what is left verifies as a chain that
	 * starts after the beginning (p2p-audit -V says so); against the
	 * copy a collector holds, the loss shows. */
	join_order(path_of("trail/audit.log"), &f, first_gone, 9);
	assert_int_equal(verify(path_of("trail"), out, sizeof out, &v), 0);
	assert_int_equal(v.first, 2);
	free(f.text);
}

static void test_verify_orders_files(void **ctx)
{
	struct store s;
	struct chain_file *files;
	size_t n;
	char out[4096];
	struct verify v;
	FILE *f;
	char *paths[8], *tmp;
	int np = 0;

	(void)ctx;
	open_store(&s, 4096, 0);
	for (int i = 0; i < 20; i++)
		add_commit(&s, 5 * i + 1, 5 * i + 5);
	store_close(&s);
	assert_int_equal(chain_list(path_of("trail"), &files, &n), 0);
	assert_true(n >= 3 && n <= 8);
	/* Given in reverse order, as files: put back in chain order. */
	for (size_t i = n; i-- > 0;) {
		paths[np] = malloc(PATH_MAX);
		snprintf(paths[np], PATH_MAX, "%s/trail/%s", dir, files[i].name);
		np++;
	}
	f = fmemopen(out, sizeof out, "w");
	verify_init(&v, f);
	assert_int_equal(verify_paths(&v, paths, np), 0);
	fclose(f);
	assert_int_equal(v.records, 100);
	/* One file missing from the middle: a gap. */
	f = fmemopen(out, sizeof out, "w");
	verify_init(&v, f);
	tmp = paths[1];
	paths[1] = paths[np - 1];
	assert_int_equal(verify_paths(&v, paths, np - 1), 1);
	fclose(f);
	assert_non_null(strstr(out, "was expected: records are missing"));
	paths[1] = tmp;
	for (int i = 0; i < np; i++)
		free(paths[i]);
	free(files);
}

static void test_reader_follows_rotation(void **ctx)
{
	struct store s;
	struct reader r = { 0 };
	const char *line;
	size_t len;
	struct record_info info;
	char err[512];
	uint64_t skipped, want = 37;

	(void)ctx;
	open_store(&s, 4096, 0);
	for (int i = 0; i < 10; i++)
		add_commit(&s, 5 * i + 1, 5 * i + 5);
	assert_int_equal(reader_seek(&r, s.dir, 37, &skipped, err, sizeof err), 0);
	assert_int_equal(skipped, 0);
	while (reader_next(&r, s.seq, &line, &len, &info, err, sizeof err) == 1)
		assert_int_equal(info.seq, want++);
	assert_int_equal(want, 51);
	/* More records, and rotations, while the reader has a file open. */
	for (int i = 10; i < 30; i++)
		add_commit(&s, 5 * i + 1, 5 * i + 5);
	while (reader_next(&r, s.seq, &line, &len, &info, err, sizeof err) == 1)
		assert_int_equal(info.seq, want++);
	assert_int_equal(want, 151);
	/* Nothing beyond what is committed. */
	assert_int_equal(reader_next(&r, s.seq, &line, &len, &info, err, sizeof err), 0);
	reader_close(&r);
	/* From a seq whose file was removed: the first one there, counted. */
	assert_int_equal(unlink(path_of("trail/audit-00000000000000000001.log")), 0);
	assert_int_equal(reader_seek(&r, s.dir, 1, &skipped, err, sizeof err), 0);
	assert_true(skipped > 0);
	assert_int_equal(reader_next(&r, s.seq, &line, &len, &info, err, sizeof err), 1);
	assert_int_equal(info.seq, 1 + skipped);
	reader_close(&r);
	store_close(&s);
}

/* ---- the collector ---- */

struct fake {
	struct store store;
	int opened;
	const char *allowed;
};

static int fake_may(void *arg, const char *host)
{
	struct fake *f = arg;

	return strcmp(host, f->allowed) == 0;
}

static struct store *fake_get(void *arg, const char *host, char *err, size_t errsize)
{
	struct fake *f = arg;

	if (!f->opened) {
		char path[PATH_MAX];

		snprintf(path, sizeof path, "%s/collected-%s", dir, host);
		if (store_open(&f->store, path, 0, 0, 0, err, errsize) != STORE_OK)
			return NULL;
		f->opened = 1;
	}
	return &f->store;
}

static char *lines_between(const char *path, int from, int to, size_t *len)
{
	struct file_lines f;
	char *out = malloc(1 << 20);

	split(path, &f);
	*len = 0;
	for (int i = from - 1; i < to; i++) {
		memcpy(out + *len, f.line[i], f.len[i]);
		*len += f.len[i];
	}
	free(f.text);
	return out;
}

static void take(struct fake *f, const char *body, size_t len, struct collector_result *res)
{
	char err[512];

	collector_take(body, len, fake_may, fake_get, f, res);
	if (res->stored)
		assert_int_equal(store_commit(&f->store, UINT64_MAX, err, sizeof err), STORE_OK);
}

static void test_collector_exact_copy(void **ctx)
{
	struct fake f = { .allowed = "ny" };
	struct collector_result res;
	size_t len, olen, clen;
	char *body, *orig, *copy, out[4096];
	struct verify v;

	(void)ctx;
	make_ten();
	body = lines_between(path_of("trail/audit.log"), 1, 6, &len);
	take(&f, body, len, &res);
	assert_int_equal(res.status, 200);
	assert_int_equal(res.stored, 6);
	assert_int_equal(res.next, 7);
	free(body);
	/* Sent again with more (a sender that lost its offset): duplicates. */
	body = lines_between(path_of("trail/audit.log"), 4, 10, &len);
	take(&f, body, len, &res);
	assert_int_equal(res.status, 200);
	assert_int_equal(res.stored, 4);
	assert_int_equal(res.duplicates, 3);
	assert_int_equal(res.next, 11);
	free(body);
	/* The copy is the original, byte for byte, and verifies. */
	orig = slurp(path_of("trail/audit.log"), &olen);
	copy = slurp(path_of("collected-ny/audit.log"), &clen);
	assert_int_equal(olen, clen);
	assert_memory_equal(orig, copy, olen);
	assert_int_equal(verify(path_of("collected-ny"), out, sizeof out, &v), 0);
	free(orig);
	free(copy);
	store_close(&f.store);
}

static void test_collector_refuses(void **ctx)
{
	struct fake f = { .allowed = "ny" };
	struct collector_result res;
	size_t len;
	char *body;

	(void)ctx;
	make_ten();
	body = lines_between(path_of("trail/audit.log"), 1, 3, &len);
	take(&f, body, len, &res);
	assert_int_equal(res.stored, 3);
	free(body);
	/* A gap: records 6.. when 4 is next. */
	body = lines_between(path_of("trail/audit.log"), 6, 8, &len);
	take(&f, body, len, &res);
	assert_int_equal(res.status, 409);
	assert_int_equal(res.next, 4);
	assert_int_equal(res.stored, 0);
	free(body);
	/* A changed line. */
	body = lines_between(path_of("trail/audit.log"), 4, 5, &len);
	*strstr(body, "/item/5") = 'Y';
	take(&f, body, len, &res);
	assert_int_equal(res.status, 400);
	assert_int_equal(res.stored, 1); /* seq 4, before the bad line */
	assert_non_null(strstr(res.error, "line 2: seq 5: the hash does not match"));
	free(body);
	/* No newline at the end. */
	body = lines_between(path_of("trail/audit.log"), 5, 5, &len);
	take(&f, body, len - 1, &res);
	assert_int_equal(res.status, 400);
	free(body);
	/* Another host's records. */
	f.allowed = "ldn";
	body = lines_between(path_of("trail/audit.log"), 5, 5, &len);
	take(&f, body, len, &res);
	assert_int_equal(res.status, 403);
	assert_int_equal(res.stored, 0);
	free(body);
	store_close(&f.store);
}

static void test_collector_conflict(void **ctx)
{
	struct fake f = { .allowed = "ny" };
	struct collector_result res;
	size_t len;
	char *body, *other;
	struct store s;

	(void)ctx;
	make_ten();
	body = lines_between(path_of("trail/audit.log"), 1, 5, &len);
	take(&f, body, len, &res);
	free(body);
	/* A different chain for the same host (its files were lost and it
	 * began again): seq 5 with another hash, then seq 6 linked to it. */
	assert_int_equal(rename(path_of("trail"), path_of("old-trail")), 0);
	open_store(&s, 0, 0);
	add_commit(&s, 101, 110);
	store_close(&s);
	other = lines_between(path_of("trail/audit.log"), 5, 5, &len);
	take(&f, other, len, &res);
	assert_int_equal(res.status, 422);
	free(other);
	other = lines_between(path_of("trail/audit.log"), 6, 6, &len);
	take(&f, other, len, &res);
	assert_int_equal(res.status, 422);
	assert_non_null(strstr(res.error, "does not chain"));
	free(other);
	store_close(&f.store);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_commit_and_reopen),
		T(test_torn_line_cut),
		T(test_bad_last_record_refused),
		T(test_rotation_continues_chain),
		T(test_crash_between_rename_and_new_file),
		T(test_keep_removes_old_files),
		T(test_keep_spares_unforwarded),
		T(test_verify_names_changed_line),
		T(test_verify_names_rehashed_line),
		T(test_verify_names_removed_and_moved_lines),
		T(test_verify_orders_files),
		T(test_reader_follows_rotation),
		T(test_collector_exact_copy),
		T(test_collector_refuses),
		T(test_collector_conflict),
	};

	json_object_seed(1);
	log_init("test-audit-store");
	log_set_verbosity(-1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
