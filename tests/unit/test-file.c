/* test: lib */
/* test-file.c: lib/file.c, how the daemons read their map and write their
 * state. Reads return the exact bytes and refuse files over the limit with
 * EFBIG; a replacement is all-or-nothing (a new inode renamed into place,
 * with the mode asked for and no temporary file left behind). Each test works
 * in its own directory under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"

static char dir[64];

static int setup(void **ctx)
{
	(void)ctx;
	umask(022);
	strcpy(dir, "/tmp/p2p-test-file.XXXXXX");
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

static const char *in_dir(const char *name)
{
	static char path[4][PATH_MAX];
	static int next;
	char *p = path[next++ % 4];

	snprintf(p, PATH_MAX, "%s/%s", dir, name);
	return p;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* The names in the test directory, sorted, joined with spaces. */
static const char *listing(void)
{
	static char out[1024];
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);

	assert_true(n >= 0);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
			if (out[0])
				strcat(out, " ");
			strcat(out, names[i]->d_name);
		}
		free(names[i]);
	}
	free(names);
	return out;
}

static void test_read_empty(void **ctx)
{
	size_t len = 99;
	char *buf;

	(void)ctx;
	write_file(in_dir("empty"), "", 0, 0644);
	buf = file_read(in_dir("empty"), 100, &len);
	assert_non_null(buf);
	assert_int_equal(len, 0);
	assert_int_equal(buf[0], '\0');
	free(buf);
	/* Even with a limit of 0. */
	buf = file_read(in_dir("empty"), 0, &len);
	assert_non_null(buf);
	assert_int_equal(len, 0);
	free(buf);
}

static void test_read_small(void **ctx)
{
	static const char text[] = "{\"version\":1}\nsecond line";
	size_t len = 0;
	char *buf;

	(void)ctx;
	write_file(in_dir("small"), text, sizeof text - 1, 0644);
	buf = file_read(in_dir("small"), 1 << 20, &len);
	assert_non_null(buf);
	assert_int_equal(len, sizeof text - 1);
	assert_string_equal(buf, text);   /* NUL-terminated */
	free(buf);
	/* LEN may be NULL. */
	buf = file_read(in_dir("small"), 1 << 20, NULL);
	assert_non_null(buf);
	assert_string_equal(buf, text);
	free(buf);
}

static void test_read_large_binary(void **ctx)
{
	size_t size = (1u << 20) + 3, len = 0;
	unsigned char *data = malloc(size);
	unsigned seed = 7;
	char *buf;

	(void)ctx;
	assert_non_null(data);
	for (size_t i = 0; i < size; i++) {
		seed = seed * 1103515245u + 12345u;
		data[i] = (unsigned char)(seed >> 16);
	}
	data[10] = 0;   /* NUL bytes are data too */
	write_file(in_dir("large"), data, size, 0644);
	buf = file_read(in_dir("large"), 16u << 20, &len);
	assert_non_null(buf);
	assert_int_equal(len, size);
	assert_memory_equal(buf, data, size);
	assert_int_equal(buf[len], '\0');
	free(buf);
	free(data);
}

/* A file of SIZE bytes read with limit MAX: accepted exactly when SIZE <= MAX. */
static void check_limit(size_t size, size_t max)
{
	char *data = malloc(size + 1), *buf;
	size_t len = 0;

	assert_non_null(data);
	memset(data, 'a', size);
	write_file(in_dir("limit"), data, size, 0644);
	errno = 0;
	buf = file_read(in_dir("limit"), max, &len);
	if (size <= max) {
		if (!buf)
			fail_msg("%zu bytes refused with limit %zu: %s", size, max, strerror(errno));
		assert_int_equal(len, size);
	} else {
		if (buf)
			fail_msg("%zu bytes accepted with limit %zu", size, max);
		assert_int_equal(errno, EFBIG);
	}
	free(buf);
	free(data);
}

static void test_read_limit(void **ctx)
{
	static const size_t sizes[] = { 1, 100, 4095, 4096, 4097, 8191, 8192, 8193, 100000 };
	static const size_t maxes[] = { 0, 1, 99, 100, 4095, 4096, 4097, 8192, 99999, 100000 };

	(void)ctx;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		for (size_t j = 0; j < sizeof maxes / sizeof maxes[0]; j++)
			check_limit(sizes[i], maxes[j]);
}

static void test_read_errors(void **ctx)
{
	(void)ctx;
	errno = 0;
	assert_null(file_read(in_dir("missing"), 100, NULL));
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_null(file_read(dir, 100, NULL));
	assert_int_equal(errno, EISDIR);
}

static void check_file(const char *path, const char *content, mode_t mode)
{
	struct stat st;
	size_t len;
	char *buf = file_read(path, 1 << 20, &len);

	assert_non_null(buf);
	assert_int_equal(len, strlen(content));
	assert_string_equal(buf, content);
	free(buf);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, mode);
}

static void test_replace_creates(void **ctx)
{
	(void)ctx;
	assert_int_equal(file_replace(in_dir("state.json"), "{\"a\":1}\n", 8, 0640), 0);
	check_file(in_dir("state.json"), "{\"a\":1}\n", 0640);
	assert_string_equal(listing(), "state.json");
	/* An empty file is content too. */
	assert_int_equal(file_replace(in_dir("empty"), "", 0, 0600), 0);
	check_file(in_dir("empty"), "", 0600);
	assert_string_equal(listing(), "empty state.json");
}

static void test_replace_replaces_atomically(void **ctx)
{
	static const char old[] = "old content, longer than the new one\n";
	struct stat before, after;
	char buf[64];
	int fd;

	(void)ctx;
	write_file(in_dir("state.json"), old, sizeof old - 1, 0644);
	assert_int_equal(stat(in_dir("state.json"), &before), 0);
	fd = open(in_dir("state.json"), O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(file_replace(in_dir("state.json"), "new\n", 4, 0600), 0);
	check_file(in_dir("state.json"), "new\n", 0600);
	assert_string_equal(listing(), "state.json");
	/* A new inode took the name; the old one was never rewritten in place,
	 * so a reader (or a crash) sees the old bytes or the new, never a mix. */
	assert_int_equal(stat(in_dir("state.json"), &after), 0);
	assert_true(before.st_ino != after.st_ino);
	assert_int_equal(read(fd, buf, sizeof buf), (ssize_t)(sizeof old - 1));
	assert_memory_equal(buf, old, sizeof old - 1);
	close(fd);
	/* And again, over the file it wrote itself. */
	assert_int_equal(file_replace(in_dir("state.json"), "third\n", 6, 0644), 0);
	check_file(in_dir("state.json"), "third\n", 0644);
	assert_string_equal(listing(), "state.json");
}

static void test_replace_relative_path(void **ctx)
{
	char cwd[PATH_MAX];
	int rc;

	(void)ctx;
	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_int_equal(chdir(dir), 0);
	rc = file_replace("plain", "x", 1, 0600);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(rc, 0);
	check_file(in_dir("plain"), "x", 0600);
	assert_string_equal(listing(), "plain");
}

static void test_replace_missing_dir(void **ctx)
{
	(void)ctx;
	errno = 0;
	assert_int_equal(file_replace(in_dir("nope/state.json"), "x", 1, 0600), -1);
	assert_int_equal(errno, ENOENT);
	assert_string_equal(listing(), "");
}

static void test_replace_failure_leaves_no_temp(void **ctx)
{
	(void)ctx;
	/* rename() over a directory fails after the temporary file is written. */
	assert_int_equal(mkdir(in_dir("state.json"), 0755), 0);
	errno = 0;
	assert_int_equal(file_replace(in_dir("state.json"), "x", 1, 0600), -1);
	assert_int_equal(errno, EISDIR);
	assert_string_equal(listing(), "state.json");
}

static void test_mkdir(void **ctx)
{
	struct stat st;

	(void)ctx;
	assert_int_equal(file_mkdir(in_dir("run"), 0750), 0);
	assert_int_equal(stat(in_dir("run"), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0750);
	/* Idempotent: a second call succeeds and keeps the directory. */
	write_file(in_dir("run/keep"), "k", 1, 0644);
	assert_int_equal(file_mkdir(in_dir("run"), 0700), 0);
	check_file(in_dir("run/keep"), "k", 0644);
	/* Parents are not created. */
	errno = 0;
	assert_int_equal(file_mkdir(in_dir("a/b"), 0750), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(stat(in_dir("a"), &st), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_large_binary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_creates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_replaces_atomically, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_relative_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_missing_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_failure_leaves_no_temp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mkdir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
