/* test: lib */
/* test-ipc.c: lib/ipc.c, the JSON-lines socket every daemon serves and
 * every tool talks to. A server with a toy handler runs in this process's
 * loop; clients are ipc_client structs whose sockets are read without
 * blocking while the loop is run step by step (pump, or run until the client
 * has something to read), so each test drives both ends in turn. One test
 * forks the server instead, to use the blocking ipc_client_call as the p2p
 * tool does and to check the daemon-style shutdown.
 *
 * Toy ops: echo (replies {"echo":DATA,"pid":PEER}), bye (replies, then
 * closes), noise (a line with another id first), fields (tries to override
 * id and ok), big (a reply of about 60000 bytes); anything else is
 * "unknown op 'X'" with "unknown":true. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipc.h"
#include "notify.h"

#define GUARD_MS 3000
#define BIG_REPLY 60000

static struct {
	struct loop *loop;
	struct ipc_server *srv;
	char dir[64];
	char path[128];
	int requests;
	int closes;        /* on_close calls */
	int closes_with_data;
} S;

static int data_marker;

static void on_request(struct ipc_conn *conn, const char *op, json_t *req, void *arg)
{
	(void)arg;
	S.requests++;
	ipc_conn_set_data(conn, &data_marker);
	if (strcmp(op, "echo") == 0) {
		ipc_reply_ok(conn, req, json_pack("{s:O?,s:i}", "echo", json_object_get(req, "data"),
						  "pid", (int)ipc_conn_pid(conn)));
	} else if (strcmp(op, "bye") == 0) {
		ipc_reply_ok(conn, req, NULL);
		ipc_conn_close(conn);
	} else if (strcmp(op, "noise") == 0) {
		json_t *other = json_pack("{s:i,s:s}", "id", 999, "event", "noise");

		ipc_send(conn, other);
		json_decref(other);
		ipc_reply_ok(conn, req, json_pack("{s:b}", "quiet", 1));
	} else if (strcmp(op, "fields") == 0) {
		ipc_reply_ok(conn, req, json_pack("{s:i,s:b,s:s}", "id", 4242, "ok", 0, "extra", "x"));
	} else if (strcmp(op, "big") == 0) {
		char *blob = malloc(BIG_REPLY + 1);

		memset(blob, 'b', BIG_REPLY);
		blob[BIG_REPLY] = '\0';
		ipc_reply_ok(conn, req, json_pack("{s:s}", "blob", blob));
		free(blob);
	} else {
		ipc_reply_error_with(conn, req, json_pack("{s:b,s:i}", "unknown", 1, "id", 4242),
				     "unknown op '%s'", op);
	}
}

static void on_close(struct ipc_conn *conn, void *arg)
{
	(void)arg;
	S.closes++;
	if (ipc_conn_data(conn) == &data_marker)
		S.closes_with_data++;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **ctx)
{
	(void)ctx;
	memset(&S, 0, sizeof S);
	signal(SIGPIPE, SIG_IGN);
	umask(022);
	strcpy(S.dir, "/tmp/p2p-test-ipc.XXXXXX");
	if (!mkdtemp(S.dir))
		return -1;
	snprintf(S.path, sizeof S.path, "%s/t.sock", S.dir);
	S.loop = loop_new();
	if (!S.loop)
		return -1;
	S.srv = ipc_server_new(S.loop, S.path, 0660, on_request, on_close, NULL);
	return S.srv ? 0 : -1;
}

static int teardown(void **ctx)
{
	(void)ctx;
	ipc_server_free(S.srv);
	loop_free(S.loop);
	return nftw(S.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- driving the loop ---- */

static int guard_fired;

static void on_guard(struct loop *loop, void *arg)
{
	(void)arg;
	guard_fired = 1;
	loop_stop(loop);
}

static void on_stop(struct loop *loop, void *arg)
{
	(void)arg;
	loop_stop(loop);
}

/* Run the loop for MS milliseconds. */
static void pump(uint64_t ms)
{
	assert_non_null(loop_timer_add(S.loop, ms, on_stop, NULL));
	assert_int_equal(loop_run(S.loop), 0);
}

static void on_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
	loop_stop(loop);
}

/* Run the loop until FD has something to read (or EOF). */
static void run_until_readable(int fd)
{
	struct loop_timer *guard;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, 0) == 1)
		return;
	guard_fired = 0;
	guard = loop_timer_add(S.loop, GUARD_MS, on_guard, NULL);
	assert_int_equal(loop_add_fd(S.loop, fd, EPOLLIN, on_readable, NULL), 0);
	assert_int_equal(loop_run(S.loop), 0);
	assert_int_equal(loop_del_fd(S.loop, fd), 0);
	if (guard_fired)
		fail_msg("no reply within %d ms", GUARD_MS);
	loop_timer_cancel(S.loop, guard);
}

/* ---- client side ---- */

static struct ipc_client *client(void)
{
	struct ipc_client *c = calloc(1, sizeof *c);

	assert_non_null(c);
	if (ipc_client_connect(c, S.path) < 0)
		fail_msg("connect %s: %s", S.path, strerror(errno));
	return c;
}

static void client_free(struct ipc_client *c)
{
	ipc_client_close(c);
	free(c);
}

/* Send raw bytes, letting the server run whenever the socket is full. */
static void send_raw(struct ipc_client *c, const char *data, size_t len)
{
	uint64_t deadline = loop_now_ms() + GUARD_MS;

	while (len) {
		ssize_t n = send(c->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN) {
				if (loop_now_ms() > deadline)
					fail_msg("the server stopped reading");
				pump(1);
				continue;
			}
			fail_msg("send: %s", strerror(errno));
		}
		data += n;
		len -= (size_t)n;
	}
}

static void send_str(struct ipc_client *c, const char *text)
{
	send_raw(c, text, strlen(text));
}

/* The next line from the server: 0, or -1 with errno (ECONNRESET on EOF). */
static int next_msg(struct ipc_client *c, json_t **msg)
{
	for (;;) {
		if (ipc_client_recv(c, msg, 0) == 0)
			return 0;
		if (errno != ETIMEDOUT)
			return -1;
		run_until_readable(c->fd);
	}
}

static json_t *reply(struct ipc_client *c)
{
	json_t *msg = NULL;

	if (next_msg(c, &msg) < 0)
		fail_msg("no reply: %s", strerror(errno));
	return msg;
}

static void expect_eof(struct ipc_client *c)
{
	json_t *msg = NULL;

	if (next_msg(c, &msg) == 0)
		fail_msg("a line instead of EOF: %s", json_dumps(msg, JSON_COMPACT));
	assert_int_equal(errno, ECONNRESET);
}

/* Nothing more arrives while the server runs a little longer. */
static void expect_nothing(struct ipc_client *c)
{
	json_t *msg = NULL;

	pump(30);
	if (ipc_client_recv(c, &msg, 0) == 0)
		fail_msg("unexpected line: %s", json_dumps(msg, JSON_COMPACT));
	assert_int_equal(errno, ETIMEDOUT);
}

static json_int_t id_of(json_t *msg)
{
	json_t *id = json_object_get(msg, "id");

	if (!json_is_integer(id))
		fail_msg("no integer id in %s", json_dumps(msg, JSON_COMPACT));
	return json_integer_value(id);
}

static const char *error_of(json_t *msg)
{
	if (!json_is_false(json_object_get(msg, "ok")))
		fail_msg("not an error: %s", json_dumps(msg, JSON_COMPACT));
	return json_string_value(json_object_get(msg, "error"));
}

static void assert_null_id(json_t *msg)
{
	json_t *id = json_object_get(msg, "id");

	if (!id || !json_is_null(id))
		fail_msg("id is not null in %s", json_dumps(msg, JSON_COMPACT));
}

static void assert_prefix(const char *s, const char *prefix)
{
	if (!s || strncmp(s, prefix, strlen(prefix)) != 0)
		fail_msg("\"%s\" does not start with \"%s\"", s ? s : "(null)", prefix);
}

/* ---- the tests ---- */

static void test_request_reply(void **ctx)
{
	struct ipc_client *c = client();
	json_t *m;

	(void)ctx;
	send_str(c, "{\"id\":1,\"op\":\"echo\",\"data\":\"hi\"}\n");
	m = reply(c);
	assert_int_equal(id_of(m), 1);
	assert_true(json_is_true(json_object_get(m, "ok")));
	assert_string_equal(json_string_value(json_object_get(m, "echo")), "hi");
	/* The peer's pid, from SO_PEERCRED: this process. */
	assert_int_equal(json_integer_value(json_object_get(m, "pid")), getpid());
	assert_int_equal(json_object_size(m), 4);
	json_decref(m);
	/* Any integer id comes back as it was, null too; no id, no id. */
	send_str(c, "{\"id\":9007199254740993,\"op\":\"echo\"}\n");
	m = reply(c);
	assert_true(id_of(m) == 9007199254740993LL);
	json_decref(m);
	send_str(c, "{\"id\":-7,\"op\":\"echo\"}\n");
	m = reply(c);
	assert_int_equal(id_of(m), -7);
	json_decref(m);
	send_str(c, "{\"id\":null,\"op\":\"echo\"}\n");
	m = reply(c);
	assert_null_id(m);
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	/* The server's own encoder is used on the way back: non-ASCII survives. */
	send_str(c, "{\"op\":\"echo\",\"id\":2,\"data\":\"caf\xc3\xa9\"}\r\n");
	m = reply(c);
	assert_int_equal(id_of(m), 2);
	assert_string_equal(json_string_value(json_object_get(m, "echo")), "caf\xc3\xa9");
	json_decref(m);
	assert_int_equal(ipc_server_nconns(S.srv), 1);
	client_free(c);
}

static void test_garbage_gets_error_with_null_id(void **ctx)
{
	static const char *const lines[] = {
		"hello\n", "{\"id\":3,\"op\":\"echo\"\n", "[1,2]\n", "\"op\"\n", "42\n",
		"{\"id\":3,\"op\":\"echo\"} trailing\n", "{\"id\":3,\"op\":\"echo\"}{}\n",
		"   \n",
	};
	struct ipc_client *c = client();

	(void)ctx;
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		json_t *m;

		send_str(c, lines[i]);
		m = reply(c);
		assert_null_id(m);
		assert_prefix(error_of(m), "bad request: ");
		json_decref(m);
	}
	/* The connection is still good. */
	send_str(c, "{\"id\":4,\"op\":\"echo\"}\n");
	json_t *m = reply(c);
	assert_int_equal(id_of(m), 4);
	json_decref(m);
	assert_int_equal(S.requests, 1);
	client_free(c);
}

static void test_bad_request_keeps_its_id(void **ctx)
{
	struct ipc_client *c = client();
	json_t *m;

	(void)ctx;
	send_str(c, "{\"id\":5}\n");
	m = reply(c);
	assert_int_equal(id_of(m), 5);
	assert_string_equal(error_of(m), "bad request: .op: missing");
	json_decref(m);
	send_str(c, "{\"id\":6,\"op\":7}\n");
	m = reply(c);
	assert_int_equal(id_of(m), 6);
	assert_string_equal(error_of(m), "bad request: .op: not a string");
	json_decref(m);
	/* An id that is not an integer is not echoed. */
	send_str(c, "{\"id\":\"7\",\"op\":\"echo\"}\n");
	m = reply(c);
	assert_null_id(m);
	assert_string_equal(error_of(m), "bad request: .id: not an integer");
	json_decref(m);
	send_str(c, "{\"id\":1.5,\"op\":\"echo\"}\n");
	m = reply(c);
	assert_null_id(m);
	json_decref(m);
	/* A duplicate member is refused (which "op" would it be?). */
	send_str(c, "{\"id\":8,\"op\":\"echo\",\"op\":\"bye\"}\n");
	m = reply(c);
	assert_int_equal(id_of(m), 8);
	assert_prefix(error_of(m), "bad request: ");
	json_decref(m);
	assert_int_equal(S.requests, 0);
	client_free(c);
}

static void test_handler_errors_and_fields(void **ctx)
{
	struct ipc_client *c = client();
	json_t *m;

	(void)ctx;
	send_str(c, "{\"id\":10,\"op\":\"frobnicate\"}\n");
	m = reply(c);
	/* Extra members are added, but never replace id, ok or error. */
	assert_int_equal(id_of(m), 10);
	assert_string_equal(error_of(m), "unknown op 'frobnicate'");
	assert_true(json_is_true(json_object_get(m, "unknown")));
	json_decref(m);
	send_str(c, "{\"id\":11,\"op\":\"fields\"}\n");
	m = reply(c);
	assert_int_equal(id_of(m), 11);
	assert_true(json_is_true(json_object_get(m, "ok")));
	assert_string_equal(json_string_value(json_object_get(m, "extra")), "x");
	json_decref(m);
	client_free(c);
}

/* A request line of exactly LEN bytes before its newline. */
static char *padded_request(int id, size_t len)
{
	char head[64], *line = malloc(len + 2);
	int n = snprintf(head, sizeof head, "{\"id\":%d,\"op\":\"echo\",\"pad\":\"", id);

	assert_non_null(line);
	assert_true(len >= (size_t)n + 2);
	memcpy(line, head, (size_t)n);
	memset(line + n, 'p', len - (size_t)n - 2);
	memcpy(line + len - 2, "\"}\n", 4);
	return line;
}

static void test_line_too_long(void **ctx)
{
	struct ipc_client *c = client();
	size_t len = 70000;
	char *line;
	json_t *m;

	(void)ctx;
	/* A valid request, but too long: refused without its id. */
	line = padded_request(20, len);
	send_raw(c, line, len + 1);
	send_str(c, "{\"id\":21,\"op\":\"echo\"}\n");
	m = reply(c);
	assert_null_id(m);
	assert_string_equal(error_of(m), "line too long (limit 65536 bytes)");
	json_decref(m);
	/* The rest of the long line was skipped; the next line is served. */
	m = reply(c);
	assert_int_equal(id_of(m), 21);
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	free(line);

	/* Several times the limit still gets one error, not one per chunk. */
	len = 3 * IPC_LINE_MAX + 17;
	line = malloc(len + 1);
	memset(line, 'x', len);
	line[len] = '\n';
	send_raw(c, line, len + 1);
	free(line);
	send_str(c, "{\"id\":22,\"op\":\"echo\"}\n");
	m = reply(c);
	assert_string_equal(error_of(m), "line too long (limit 65536 bytes)");
	json_decref(m);
	m = reply(c);
	assert_int_equal(id_of(m), 22);
	json_decref(m);
	expect_nothing(c);
	assert_int_equal(S.requests, 2);
	client_free(c);
}

static void test_longest_line_served(void **ctx)
{
	struct ipc_client *c = client();
	char *line = padded_request(30, IPC_LINE_MAX - 1);   /* + newline = the limit */
	json_t *m;

	(void)ctx;
	assert_int_equal(strlen(line), IPC_LINE_MAX);
	/* All but the newline first: a full line, not yet an over-long one. */
	send_raw(c, line, IPC_LINE_MAX - 1);
	pump(20);
	send_str(c, "\n");
	free(line);
	m = reply(c);
	assert_int_equal(id_of(m), 30);
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	client_free(c);
}

static void test_blank_lines_ignored(void **ctx)
{
	struct ipc_client *c = client();
	json_t *m;

	(void)ctx;
	send_str(c, "\n\r\n\n{\"id\":1,\"op\":\"echo\"}\n\n\n{\"id\":2,\"op\":\"echo\"}\n\n");
	m = reply(c);
	assert_int_equal(id_of(m), 1);
	json_decref(m);
	m = reply(c);
	assert_int_equal(id_of(m), 2);
	json_decref(m);
	expect_nothing(c);
	client_free(c);
}

static void test_pipelined_in_order(void **ctx)
{
	enum { N = 200 };
	struct ipc_client *c = client();
	char *all = malloc(N * 64), *p = all;

	(void)ctx;
	for (int i = 1; i <= N; i++)
		p += sprintf(p, "{\"id\":%d,\"op\":\"%s\"}\n", i, i % 7 ? "echo" : "nope");
	send_raw(c, all, (size_t)(p - all));   /* one write */
	free(all);
	for (int i = 1; i <= N; i++) {
		json_t *m = reply(c);

		assert_int_equal(id_of(m), i);
		json_decref(m);
	}
	expect_nothing(c);
	client_free(c);
}

static void test_big_replies_queued_and_flushed(void **ctx)
{
	enum { N = 30 };   /* 1.8 MB of replies, far more than a socket buffer */
	struct ipc_client *c = client();
	char req[64];

	(void)ctx;
	for (int i = 1; i <= N; i++) {
		snprintf(req, sizeof req, "{\"id\":%d,\"op\":\"big\"}\n", i);
		send_str(c, req);
	}
	for (int i = 1; i <= N; i++) {
		json_t *m = reply(c);
		const char *blob = json_string_value(json_object_get(m, "blob"));

		assert_int_equal(id_of(m), i);
		assert_non_null(blob);
		assert_int_equal(strlen(blob), BIG_REPLY);
		assert_int_equal(strspn(blob, "b"), BIG_REPLY);
		json_decref(m);
	}
	client_free(c);
}

static void test_last_line_without_newline(void **ctx)
{
	struct ipc_client *c = client();
	json_t *m;

	(void)ctx;
	send_str(c, "{\"id\":1,\"op\":\"echo\"}\n{\"id\":2,\"op\":\"echo\",\"data\":\"end\"}");
	pump(20);
	assert_int_equal(S.requests, 1);   /* the second line is not complete yet */
	assert_int_equal(shutdown(c->fd, SHUT_WR), 0);
	m = reply(c);
	assert_int_equal(id_of(m), 1);
	json_decref(m);
	m = reply(c);
	assert_int_equal(id_of(m), 2);
	assert_string_equal(json_string_value(json_object_get(m, "echo")), "end");
	json_decref(m);
	/* Then the server closes its end. */
	expect_eof(c);
	assert_int_equal(ipc_server_nconns(S.srv), 0);
	assert_int_equal(S.closes, 1);
	client_free(c);
}

static void test_client_gone_mid_line(void **ctx)
{
	struct ipc_client *c = client(), *d;
	char many[64 * 100], *p = many;
	json_t *m;

	(void)ctx;
	send_str(c, "{\"id\":1,\"op\":\"ec");
	pump(10);
	assert_int_equal(ipc_server_nconns(S.srv), 1);
	client_free(c);
	pump(20);
	assert_int_equal(ipc_server_nconns(S.srv), 0);
	assert_int_equal(S.closes, 1);
	assert_int_equal(S.requests, 0);

	/* Gone with replies unread: writing to it must not kill the server. */
	c = client();
	for (int i = 0; i < 100; i++)
		p += sprintf(p, "{\"id\":%d,\"op\":\"big\"}\n", i);
	send_raw(c, many, (size_t)(p - many));
	client_free(c);
	pump(50);
	assert_int_equal(ipc_server_nconns(S.srv), 0);
	assert_int_equal(S.closes, 2);

	/* A silent client that just leaves. */
	c = client();
	pump(10);
	client_free(c);
	pump(20);
	assert_int_equal(ipc_server_nconns(S.srv), 0);
	assert_int_equal(S.closes, 3);

	/* Later clients are served as usual. */
	d = client();
	send_str(d, "{\"id\":5,\"op\":\"echo\"}\n");
	m = reply(d);
	assert_int_equal(id_of(m), 5);
	json_decref(m);
	client_free(d);
}

static void test_conn_close_after_reply(void **ctx)
{
	struct ipc_client *c = client();
	json_t *m;

	(void)ctx;
	/* What follows "bye" on the same connection is not served. */
	send_str(c, "{\"id\":1,\"op\":\"bye\"}\n{\"id\":2,\"op\":\"echo\"}\n");
	m = reply(c);
	assert_int_equal(id_of(m), 1);
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	expect_eof(c);
	assert_int_equal(S.requests, 1);
	assert_int_equal(S.closes, 1);
	/* The data set by the handler is still there for on_close. */
	assert_int_equal(S.closes_with_data, 1);
	client_free(c);
}

static void test_conn_close_with_output_pending(void **ctx)
{
	enum { N = 10 };   /* 600 kB of replies: still queued when "bye" comes */
	struct ipc_client *c = client();
	char all[N * 32 + 64], *p = all;
	json_t *m;

	(void)ctx;
	for (int i = 1; i <= N; i++)
		p += sprintf(p, "{\"id\":%d,\"op\":\"big\"}\n", i);
	p += sprintf(p, "{\"id\":%d,\"op\":\"bye\"}\n{\"id\":%d,\"op\":\"echo\"}\n", N + 1, N + 2);
	send_raw(c, all, (size_t)(p - all));
	/* Everything queued before the close is delivered, then EOF. */
	for (int i = 1; i <= N + 1; i++) {
		m = reply(c);
		assert_int_equal(id_of(m), i);
		json_decref(m);
	}
	expect_eof(c);
	assert_int_equal(S.requests, N + 1);
	assert_int_equal(S.closes, 1);
	client_free(c);
}

static void send_hello(struct ipc_conn *conn, void *arg)
{
	json_t *msg = json_pack("{s:s,s:i}", "event", "hello", "n", *(int *)arg);

	assert_int_equal(ipc_send(conn, msg), 0);
	json_decref(msg);
}

static void test_foreach_reaches_every_conn(void **ctx)
{
	struct ipc_client *c[3];
	int n = 7;

	(void)ctx;
	for (int i = 0; i < 3; i++)
		c[i] = client();
	pump(20);
	assert_int_equal(ipc_server_nconns(S.srv), 3);
	ipc_server_foreach(S.srv, send_hello, &n);
	for (int i = 0; i < 3; i++) {
		json_t *m = reply(c[i]);

		assert_string_equal(json_string_value(json_object_get(m, "event")), "hello");
		assert_int_equal(json_integer_value(json_object_get(m, "n")), 7);
		json_decref(m);
		client_free(c[i]);
	}
	pump(20);
	assert_int_equal(ipc_server_nconns(S.srv), 0);
}

static void test_server_free_closes_and_unlinks(void **ctx)
{
	struct ipc_client *c = client(), *d = client();
	struct stat st;

	(void)ctx;
	pump(20);
	assert_int_equal(ipc_server_nconns(S.srv), 2);
	ipc_server_free(S.srv);
	S.srv = NULL;
	assert_int_equal(S.closes, 2);
	errno = 0;
	assert_int_equal(lstat(S.path, &st), -1);
	assert_int_equal(errno, ENOENT);
	expect_eof(c);
	expect_eof(d);
	client_free(c);
	client_free(d);
}

static void test_socket_mode(void **ctx)
{
	struct stat st;
	char path[160];
	struct ipc_server *other;

	(void)ctx;
	assert_int_equal(lstat(S.path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	/* The mode asked for, whatever the umask. */
	umask(077);
	snprintf(path, sizeof path, "%s/o.sock", S.dir);
	other = ipc_server_new(S.loop, path, 0666, on_request, NULL, NULL);
	umask(022);
	assert_non_null(other);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0666);
	ipc_server_free(other);
}

static void test_chown_to_self(void **ctx)
{
	struct stat st;

	(void)ctx;
	/* Without root only our own ids; the call must still work. */
	assert_int_equal(ipc_server_chown(S.srv, geteuid(), getegid()), 0);
	assert_int_equal(lstat(S.path, &st), 0);
	assert_int_equal(st.st_uid, geteuid());
	assert_int_equal(st.st_gid, getegid());
	assert_int_equal(st.st_mode & 07777, 0660);
}

static void test_stale_socket_replaced(void **ctx)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ipc_client *c;
	struct stat st;
	json_t *m;
	int fd;

	(void)ctx;
	/* A daemon that died left its socket file: bound, nobody listening. */
	ipc_server_free(S.srv);
	S.srv = NULL;
	strcpy(sa.sun_path, S.path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	close(fd);
	assert_int_equal(lstat(S.path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));

	S.srv = ipc_server_new(S.loop, S.path, 0660, on_request, on_close, NULL);
	assert_non_null(S.srv);
	c = client();
	send_str(c, "{\"id\":1,\"op\":\"echo\"}\n");
	m = reply(c);
	assert_int_equal(id_of(m), 1);
	json_decref(m);
	client_free(c);
}

static void test_live_socket_refused(void **ctx)
{
	struct ipc_client *c;
	json_t *m;

	(void)ctx;
	errno = 0;
	assert_null(ipc_server_new(S.loop, S.path, 0660, on_request, NULL, NULL));
	assert_int_equal(errno, EADDRINUSE);
	/* The running server keeps its socket and keeps serving. */
	c = client();
	send_str(c, "{\"id\":1,\"op\":\"echo\"}\n");
	m = reply(c);
	assert_int_equal(id_of(m), 1);
	json_decref(m);
	client_free(c);
}

static void test_regular_file_refused_and_kept(void **ctx)
{
	char path[160], buf[32];
	struct ipc_server *other;
	int fd;

	(void)ctx;
	snprintf(path, sizeof path, "%s/precious", S.dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "precious\n", 9), 9);
	close(fd);
	errno = 0;
	other = ipc_server_new(S.loop, path, 0660, on_request, NULL, NULL);
	assert_null(other);
	assert_int_equal(errno, EEXIST);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof buf), 9);
	assert_memory_equal(buf, "precious\n", 9);
	close(fd);
	/* A directory is not replaced either. */
	snprintf(path, sizeof path, "%s/adir", S.dir);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_null(ipc_server_new(S.loop, path, 0660, on_request, NULL, NULL));
	assert_int_equal(access(path, F_OK), 0);
}

static void test_bad_paths_refused(void **ctx)
{
	char path[200];

	(void)ctx;
	memset(path, 'a', sizeof path - 1);
	path[0] = '/';
	path[sizeof path - 1] = '\0';
	errno = 0;
	assert_null(ipc_server_new(S.loop, path, 0660, on_request, NULL, NULL));
	assert_int_equal(errno, ENAMETOOLONG);
	snprintf(path, sizeof path, "%s/missing/t.sock", S.dir);
	errno = 0;
	assert_null(ipc_server_new(S.loop, path, 0660, on_request, NULL, NULL));
	assert_int_equal(errno, ENOENT);
	/* The client side refuses the same way. */
	struct ipc_client *c = calloc(1, sizeof *c);
	errno = 0;
	assert_int_equal(ipc_client_connect(c, path), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(c->fd, -1);
	free(c);
}

static json_t *parse(const char *line, char *err, size_t errsize)
{
	memset(err, 0, errsize);
	return ipc_parse_request(line, strlen(line), err, errsize);
}

static void refused(const char *line, const char *want)
{
	char err[256];
	json_t *req = parse(line, err, sizeof err);

	if (req)
		fail_msg("accepted: %s", line);
	assert_prefix(err, want);
}

static void test_parse_request(void **ctx)
{
	char err[256], small[16];
	json_t *req;

	(void)ctx;
	req = parse("{\"id\":1,\"op\":\"lookup\",\"name\":\"x\"}", err, sizeof err);
	assert_non_null(req);
	assert_string_equal(json_string_value(json_object_get(req, "op")), "lookup");
	assert_int_equal(json_integer_value(json_object_get(req, "id")), 1);
	json_decref(req);
	/* id may be missing or null. */
	req = parse("{\"op\":\"status\"}", err, sizeof err);
	assert_non_null(req);
	json_decref(req);
	req = parse("{\"op\":\"status\",\"id\":null}", err, sizeof err);
	assert_non_null(req);
	json_decref(req);
	/* Only LEN bytes are read. */
	req = ipc_parse_request("{\"op\":\"a\"}garbage", 10, err, sizeof err);
	assert_non_null(req);
	json_decref(req);

	refused("", "bad request: column ");
	refused("nope", "bad request: column ");
	refused("{\"op\":\"a\"", "bad request: column ");
	refused("{\"op\":\"a\"} {}", "bad request: column ");
	refused("{\"op\":\"a\",\"op\":\"b\"}", "bad request: ");
	refused("[]", "bad request: not a JSON object");
	refused("[{\"op\":\"a\"}]", "bad request: not a JSON object");
	refused("\"op\"", "bad request: column ");
	refused("null", "bad request: column ");
	refused("{\"id\":1}", "bad request: .op: missing");
	refused("{\"id\":1,\"op\":null}", "bad request: .op: not a string");
	refused("{\"id\":1,\"op\":[\"a\"]}", "bad request: .op: not a string");
	refused("{\"id\":\"1\",\"op\":\"a\"}", "bad request: .id: not an integer");
	refused("{\"id\":1.0,\"op\":\"a\"}", "bad request: .id: not an integer");
	refused("{\"id\":true,\"op\":\"a\"}", "bad request: .id: not an integer");
	refused("{\"id\":{},\"op\":\"a\"}", "bad request: .id: not an integer");
	/* An embedded NUL ends nothing: it is a bad byte. */
	req = ipc_parse_request("{\"op\":\"a\"}\0{}", 13, err, sizeof err);
	assert_null(req);
	/* A small error buffer is truncated, still terminated. */
	memset(small, 'z', sizeof small);
	assert_null(ipc_parse_request("[]", 2, small, sizeof small));
	assert_int_equal(strlen(small), sizeof small - 1);
	assert_memory_equal(small, "bad request: no", sizeof small - 1);
}

static void test_socket_path_forms(void **ctx)
{
	char out[64];

	(void)ctx;
	assert_int_equal(ipc_socket_path(out, sizeof out, "/run/p2p", "mapd"), 0);
	assert_string_equal(out, "/run/p2p/mapd.sock");
	assert_int_equal(ipc_socket_path(out, sizeof out, "/run/p2p", "mapd.sock"), 0);
	assert_string_equal(out, "/run/p2p/mapd.sock");
	assert_int_equal(ipc_socket_path(out, sizeof out, "/tmp/r", "dnsd"), 0);
	assert_string_equal(out, "/tmp/r/dnsd.sock");
	/* A name with a '/' is a path, taken as it is. */
	assert_int_equal(ipc_socket_path(out, sizeof out, "/run/p2p", "/srv/x.sock"), 0);
	assert_string_equal(out, "/srv/x.sock");
	assert_int_equal(ipc_socket_path(out, sizeof out, "/run/p2p", "./mapd"), 0);
	assert_string_equal(out, "./mapd");
	/* Exactly fitting, and one byte short. */
	assert_int_equal(ipc_socket_path(out, strlen("/run/p2p/mapd.sock") + 1, "/run/p2p", "mapd"), 0);
	assert_string_equal(out, "/run/p2p/mapd.sock");
	errno = 0;
	assert_int_equal(ipc_socket_path(out, strlen("/run/p2p/mapd.sock"), "/run/p2p", "mapd"), -1);
	assert_int_equal(errno, ENAMETOOLONG);
}

/* The client's reader, against a socketpair playing the server. */
static void test_client_recv(void **ctx)
{
	struct ipc_client *c = calloc(1, sizeof *c);
	char *big;
	json_t *m = NULL;
	int sv[2];

	(void)ctx;
	assert_non_null(c);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	c->fd = sv[0];
	/* Two lines in one write, the second split across writes. */
	assert_int_equal(write(sv[1], "{\"id\":1}\n{\"id\":", 15), 15);
	assert_int_equal(ipc_client_recv(c, &m, 1000), 0);
	assert_int_equal(id_of(m), 1);
	json_decref(m);
	errno = 0;
	assert_int_equal(ipc_client_recv(c, &m, 20), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_int_equal(write(sv[1], "2}\n", 3), 3);
	assert_int_equal(ipc_client_recv(c, &m, 1000), 0);
	assert_int_equal(id_of(m), 2);
	json_decref(m);
	/* A line that is not an object is EPROTO; the next one still reads. */
	assert_int_equal(write(sv[1], "[1]\nnot json\n{\"id\":3}\n", 22), 22);
	errno = 0;
	assert_int_equal(ipc_client_recv(c, &m, 1000), -1);
	assert_int_equal(errno, EPROTO);
	assert_null(m);
	errno = 0;
	assert_int_equal(ipc_client_recv(c, &m, 1000), -1);
	assert_int_equal(errno, EPROTO);
	assert_int_equal(ipc_client_recv(c, &m, 1000), 0);
	assert_int_equal(id_of(m), 3);
	json_decref(m);
	/* A line longer than the buffer. */
	big = malloc(IPC_LINE_MAX);
	memset(big, ' ', IPC_LINE_MAX);
	assert_int_equal(write(sv[1], big, IPC_LINE_MAX), IPC_LINE_MAX);
	free(big);
	errno = 0;
	assert_int_equal(ipc_client_recv(c, &m, 1000), -1);
	assert_int_equal(errno, EPROTO);
	/* EOF. */
	c->len = 0;
	close(sv[1]);
	errno = 0;
	assert_int_equal(ipc_client_recv(c, &m, 1000), -1);
	assert_int_equal(errno, ECONNRESET);
	ipc_client_close(c);
	assert_int_equal(c->fd, -1);
	ipc_client_close(c);   /* twice is harmless */
	free(c);
}

/* ---- a forked server, for the blocking client calls ---- */

static void on_term(struct loop *loop, int signo, void *arg)
{
	(void)signo;
	(void)arg;
	loop_stop(loop);
}

/* The child: serve PATH until SIGTERM, like a daemon; readiness on FD. */
static void serve_child(const char *path, int ready_fd)
{
	struct loop *loop = loop_new();
	struct ipc_server *srv;
	int rc;

	if (!loop || loop_add_signal(loop, SIGTERM, on_term, NULL) < 0)
		_exit(111);
	srv = ipc_server_new(loop, path, 0660, on_request, NULL, NULL);
	if (!srv || notify_ready(ready_fd) < 0)
		_exit(111);
	rc = loop_run(loop);
	ipc_server_free(srv);
	loop_free(loop);
	exit(rc == 0 ? 0 : 111);  /* exit, not _exit: the sanitizers check leaks */
}

static void test_client_call_against_forked_server(void **ctx)
{
	char path[160], nl;
	struct ipc_client *c = calloc(1, sizeof *c);
	struct pollfd pfd;
	json_t *req, *rep = NULL;
	int p[2], status;
	pid_t pid;

	(void)ctx;
	/* The in-process server is not used here. */
	snprintf(path, sizeof path, "%s/forked.sock", S.dir);
	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		serve_child(path, p[1]);
	}
	close(p[1]);
	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, GUARD_MS), 1);
	assert_int_equal(read(p[0], &nl, 1), 1);
	assert_int_equal(nl, '\n');
	close(p[0]);

	assert_int_equal(ipc_client_connect(c, path), 0);
	req = json_pack("{s:i,s:s,s:s}", "id", 1, "op", "echo", "data", "x");
	assert_int_equal(ipc_client_call(c, req, &rep, 2000), 0);
	json_decref(req);
	assert_int_equal(id_of(rep), 1);
	assert_string_equal(json_string_value(json_object_get(rep, "echo")), "x");
	assert_int_equal(json_integer_value(json_object_get(rep, "pid")), getpid());
	json_decref(rep);
	/* A line for another id on the way is skipped. */
	req = json_pack("{s:i,s:s}", "id", 2, "op", "noise");
	assert_int_equal(ipc_client_call(c, req, &rep, 2000), 0);
	json_decref(req);
	assert_int_equal(id_of(rep), 2);
	assert_true(json_is_true(json_object_get(rep, "quiet")));
	json_decref(rep);
	/* An unserialisable message is refused before anything is sent. */
	errno = 0;
	assert_int_equal(ipc_client_send(c, NULL), -1);
	assert_int_equal(errno, EINVAL);
	/* "bye": the reply, then EOF. */
	req = json_pack("{s:i,s:s}", "id", 3, "op", "bye");
	assert_int_equal(ipc_client_call(c, req, &rep, 2000), 0);
	json_decref(req);
	json_decref(rep);
	errno = 0;
	assert_int_equal(ipc_client_recv(c, &rep, 2000), -1);
	assert_int_equal(errno, ECONNRESET);
	ipc_client_close(c);
	free(c);

	/* SIGTERM: a clean exit 0 (no leak under the sanitizers), socket gone. */
	assert_int_equal(kill(pid, SIGTERM), 0);
	for (int waited = 0; waitpid(pid, &status, WNOHANG) == 0; waited += 10) {
		if (waited > GUARD_MS) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("the server did not exit on SIGTERM");
		}
		usleep(10000);
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(access(path, F_OK), -1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* First: its child inherits this process's heap, and the leak
		 * check at the child's exit would blame it for a failed test's
		 * leftovers. */
		T(test_client_call_against_forked_server),
		T(test_request_reply),
		T(test_garbage_gets_error_with_null_id),
		T(test_bad_request_keeps_its_id),
		T(test_handler_errors_and_fields),
		T(test_line_too_long),
		T(test_longest_line_served),
		T(test_blank_lines_ignored),
		T(test_pipelined_in_order),
		T(test_big_replies_queued_and_flushed),
		T(test_last_line_without_newline),
		T(test_client_gone_mid_line),
		T(test_conn_close_after_reply),
		T(test_conn_close_with_output_pending),
		T(test_foreach_reaches_every_conn),
		T(test_server_free_closes_and_unlinks),
		T(test_socket_mode),
		T(test_chown_to_self),
		T(test_stale_socket_replaced),
		T(test_live_socket_refused),
		T(test_regular_file_refused_and_kept),
		T(test_bad_paths_refused),
		T(test_parse_request),
		T(test_socket_path_forms),
		T(test_client_recv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
