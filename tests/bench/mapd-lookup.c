/* mapd-lookup: look-ups per second that p2p-mapd answers over one
 * connection, with WINDOW requests in flight (as p2p-dnsd keeps them).
 *
 *   mapd-lookup [-n count] [-t seconds] [-w window] [-x expected] SOCKET
 *
 * It first reads the whole map with "get" and takes every resource name
 * from it (a wildcard "*.S" is asked as "bench-x.S"), checking the pairs of
 * EXPECTED ("NAME ADDR" lines) against it. Then it sends COUNT look-ups
 * round-robin over those names, stopping early after SECONDS, and checks
 * that every reply comes in order with ok, the resource and its address.
 * Prints "lookups=N seconds=S rate=R names=K"; exit 0, or 1 on any wrong
 * reply, 111 on a system error. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"

#define USAGE "usage: mapd-lookup [-n count] [-t seconds] [-w window] [-x expected] SOCKET\n"
#define REPLY_TIMEOUT_MS 5000

struct query {
	char *name;       /* what is asked */
	char *resource;   /* what must answer */
	char *addr;
};

static struct query *queries;
static size_t nqueries, capqueries;

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("mapd-lookup: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void add_query(const char *name, const char *resource, const char *addr)
{
	struct query *q;

	if (nqueries == capqueries) {
		capqueries = capqueries ? capqueries * 2 : 1024;
		queries = realloc(queries, capqueries * sizeof *queries);
		if (!queries)
			die(111, "out of memory");
	}
	q = &queries[nqueries++];
	q->name = strdup(name);
	q->resource = strdup(resource);
	q->addr = strdup(addr);
	if (!q->name || !q->resource || !q->addr)
		die(111, "out of memory");
}

/* Every resource name of the map, from a "get" dump. */
static void read_map(struct ipc_client *c)
{
	json_t *req = json_pack("{s:i,s:s}", "id", 1, "op", "get"), *msg;
	json_int_t count = -1, seen = 0;

	if (ipc_client_send(c, req) < 0)
		die(111, "unable to send get: %s", strerror(errno));
	json_decref(req);
	for (;;) {
		const char *event;

		if (ipc_client_recv(c, &msg, REPLY_TIMEOUT_MS) < 0)
			die(111, "get: no reply: %s", strerror(errno));
		event = json_string_value(json_object_get(msg, "event"));
		if (count < 0) {
			if (!json_is_true(json_object_get(msg, "ok")))
				die(1, "get: refused: %s",
				    json_string_value(json_object_get(msg, "error")));
			count = json_integer_value(json_object_get(msg, "count"));
		} else if (event && strcmp(event, "end") == 0) {
			json_decref(msg);
			break;
		} else if (event && strcmp(event, "set") == 0) {
			json_t *v = json_object_get(msg, "value"), *n;
			const char *kind = json_string_value(json_object_get(msg, "kind"));
			const char *res = json_string_value(json_object_get(msg, "name"));
			const char *addr = json_string_value(json_object_get(v, "addr"));
			size_t i;

			seen++;
			if (!kind || strcmp(kind, "resource") != 0) {
				json_decref(msg);
				continue;
			}
			if (!res || !addr)
				die(1, "get: a resource without a name or an address");
			json_array_foreach(json_object_get(v, "names"), i, n) {
				const char *name = json_string_value(n);
				char asked[300];

				if (!name)
					die(1, "get: resource %s: a name that is not a string", res);
				if (strncmp(name, "*.", 2) == 0)
					snprintf(asked, sizeof asked, "bench-x.%s", name + 2);
				else
					snprintf(asked, sizeof asked, "%s", name);
				add_query(asked, res, addr);
			}
		}
		json_decref(msg);
	}
	if (seen != count)
		die(1, "get: announced %" PRId64 " entities, sent %" PRId64,
		    (int64_t)count, (int64_t)seen);
	if (nqueries == 0)
		die(1, "the map has no resource names to look up");
}

/* "NAME ADDR" lines the map generator wrote: the explicit addresses. */
static void check_expected(const char *path)
{
	FILE *f = fopen(path, "r");
	char name[300], addr[64];
	size_t checked = 0;

	if (!f)
		die(111, "unable to open %s: %s", path, strerror(errno));
	while (fscanf(f, "%299s %63s", name, addr) == 2) {
		size_t i;

		for (i = 0; i < nqueries; i++)
			if (strcmp(queries[i].name, name) == 0)
				break;
		if (i == nqueries)
			die(1, "%s: not in the map mapd serves", name);
		if (strcmp(queries[i].addr, addr) != 0)
			die(1, "%s: mapd gives %s, the map says %s", name, queries[i].addr, addr);
		checked++;
	}
	fclose(f);
	if (checked == 0)
		die(1, "%s: no NAME ADDR lines", path);
}

struct io {
	int fd;
	char *out;
	size_t outlen, outcap;
	char in[1 << 16];
	size_t inlen;
};

static void queue_lookup(struct io *io, uint64_t id)
{
	const struct query *q = &queries[id % nqueries];
	int n;

	if (io->outcap - io->outlen < 512) {
		io->outcap = io->outcap ? io->outcap * 2 : 1 << 16;
		io->out = realloc(io->out, io->outcap);
		if (!io->out)
			die(111, "out of memory");
	}
	/* Every other name with the trailing dot a resolver sends. */
	n = snprintf(io->out + io->outlen, io->outcap - io->outlen,
		     "{\"id\":%" PRIu64 ",\"op\":\"lookup\",\"name\":\"%s%s\"}\n", id, q->name,
		     id % 2 ? "." : "");
	io->outlen += (size_t)n;
}

static void flush_out(struct io *io)
{
	size_t off = 0;

	while (off < io->outlen) {
		ssize_t n = write(io->fd, io->out + off, io->outlen - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die(111, "unable to send: %s", strerror(errno));
		}
		off += (size_t)n;
	}
	io->outlen = 0;
}

static void check_reply(const char *line, size_t len, uint64_t id)
{
	json_error_t jerr;
	json_t *r = json_loadb(line, len, 0, &jerr);
	const struct query *q = &queries[id % nqueries];
	const char *addr, *res;

	if (!r)
		die(1, "reply to %" PRIu64 ": not JSON: %s", id, jerr.text);
	if (json_integer_value(json_object_get(r, "id")) != (json_int_t)id)
		die(1, "reply to %" PRIu64 " out of order: %.*s", id, (int)len, line);
	addr = json_string_value(json_object_get(r, "addr"));
	res = json_string_value(json_object_get(r, "resource"));
	if (!json_is_true(json_object_get(r, "ok")) || !addr || !res ||
	    strcmp(addr, q->addr) != 0 || strcmp(res, q->resource) != 0)
		die(1, "lookup %s: want %s (%s), got %.*s", q->name, q->addr, q->resource,
		    (int)len, line);
	json_decref(r);
}

/* Read what has come and check every whole reply; returns how many. */
static uint64_t read_replies(struct io *io, uint64_t next_id)
{
	struct pollfd pfd = { .fd = io->fd, .events = POLLIN };
	uint64_t done = 0;
	size_t start = 0;
	char *nl;
	ssize_t n;
	int pr;

	do
		pr = poll(&pfd, 1, REPLY_TIMEOUT_MS);
	while (pr < 0 && errno == EINTR);
	if (pr < 0)
		die(111, "poll: %s", strerror(errno));
	if (pr == 0)
		die(1, "no reply to look-up %" PRIu64 " in %d ms", next_id, REPLY_TIMEOUT_MS);
	n = read(io->fd, io->in + io->inlen, sizeof io->in - io->inlen);
	if (n < 0 && errno != EINTR)
		die(111, "unable to read: %s", strerror(errno));
	if (n == 0)
		die(1, "mapd closed the connection");
	if (n > 0)
		io->inlen += (size_t)n;
	while ((nl = memchr(io->in + start, '\n', io->inlen - start))) {
		check_reply(io->in + start, (size_t)(nl - (io->in + start)), next_id + done);
		done++;
		start = (size_t)(nl - io->in) + 1;
	}
	memmove(io->in, io->in + start, io->inlen - start);
	io->inlen -= start;
	if (io->inlen == sizeof io->in)
		die(1, "a reply line longer than %zu bytes", sizeof io->in);
	return done;
}

static unsigned long number(const char *arg, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || *arg < '1' || *arg > '9' || *end)
		die(100, "%s: %s is not a positive number\n%s", what, arg, USAGE);
	return v;
}

int main(int argc, char **argv)
{
	unsigned long count = 200000, seconds = 10, window = 64;
	const char *expected = NULL;
	struct ipc_client *c = malloc(sizeof *c);
	struct io io = { .fd = -1 };
	uint64_t sent = 0, done = 0;
	double start, elapsed, limit;
	int opt;

	while ((opt = getopt(argc, argv, "n:t:w:x:")) != -1) {
		switch (opt) {
		case 'n': count = number(optarg, "-n"); break;
		case 't': seconds = number(optarg, "-t"); break;
		case 'w': window = number(optarg, "-w"); break;
		case 'x': expected = optarg; break;
		default: fputs(USAGE, stderr); return 100;
		}
	}
	if (optind != argc - 1) {
		fputs(USAGE, stderr);
		return 100;
	}
	if (!c)
		die(111, "out of memory");
	if (ipc_client_connect(c, argv[optind]) < 0)
		die(111, "unable to connect to %s: %s", argv[optind], strerror(errno));
	read_map(c);
	if (expected)
		check_expected(expected);
	if (c->len != 0)
		die(1, "get: lines after its end");
	io.fd = c->fd;

	start = now_s();
	limit = start + (double)seconds;
	while (done < count) {
		while (sent < count && sent - done < window)
			queue_lookup(&io, sent++);
		flush_out(&io);
		done += read_replies(&io, done);
		if (done > sent)
			die(1, "more replies than requests");
		if (now_s() > limit && sent == done)
			break; /* out of time: stop with nothing in flight */
		if (now_s() > limit)
			count = sent; /* drain what is in flight, send no more */
	}
	elapsed = now_s() - start;
	printf("lookups=%" PRIu64 " seconds=%.3f rate=%.0f names=%zu window=%lu\n", done, elapsed,
	       (double)done / elapsed, nqueries, window);
	ipc_client_close(c);
	free(c);
	free(io.out);
	for (size_t i = 0; i < nqueries; i++) {
		free(queries[i].name);
		free(queries[i].resource);
		free(queries[i].addr);
	}
	free(queries);
	return 0;
}
