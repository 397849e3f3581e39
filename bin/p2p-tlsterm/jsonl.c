/* jsonl.c: requests to another daemon's JSON-lines socket (p2p-ipc.7) from
 * the event loop, without blocking it: one connection, many requests in
 * flight, replies matched by id. When the daemon goes away every request
 * in flight fails at once (the proxy answers 503, never a silent allow),
 * and the next request connects again. */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "decimal.h"
#include "ipc.h"
#include "jsonbyte.h"
#include "log.h"
#include "tlsterm.h"

#define JSONL_OUT_MAX (16u << 20)

struct call {
	json_int_t id;
	int ack_only;          /* FN only wants to hear of failures */
	int lasting;           /* a watch: FN hears every line with this id */
	size_t len;            /* of its line */
	uint64_t timeout_ms;   /* for a reply, from when it is sent (again) */
	uint64_t deadline;
	jsonl_fn *fn;
	void *ctx;
	struct call *next;
};

/* Calls kept for the next requests instead of freed: one is made and
 * ended for every record, and calloc/free showed in the profile. */
#define SPARE_CALLS_MAX 256

struct jsonl {
	struct loop *loop;
	char path[108];
	int fd;
	json_int_t next_id;
	struct call *calls, **tail;
	size_t ncalls;
	char *out;
	size_t outlen, outcap;
	char in[IPC_LINE_MAX + 1];
	size_t inlen;
	int warned;
	struct loop_timer *flush_timer;
	int batching;           /* jsonl_set_batching */
	size_t calls_bytes;     /* of the lines of the calls in the list */
	int want_out;
	struct call *spare;     /* ended calls, for the next (call_new) */
	size_t nspare;
};

static struct call *call_new(struct jsonl *j)
{
	struct call *c = j->spare;

	if (!c)
		return calloc(1, sizeof *c);
	j->spare = c->next;
	j->nspare--;
	memset(c, 0, sizeof *c);
	return c;
}

static void call_end(struct jsonl *j, struct call *c)
{
	if (!c)
		return;
	if (j->nspare >= SPARE_CALLS_MAX) {
		free(c);
		return;
	}
	c->next = j->spare;
	j->spare = c;
	j->nspare++;
}

static void on_event(struct loop *loop, int fd, uint32_t events, void *arg);
static void flush(struct jsonl *j);

/* Requests made in one turn of the loop go out in one write; when
 * batching, those made while others are unanswered go when the answers
 * come (on_event), or at 64 KiB. */
static void on_flush_timer(struct loop *loop, void *arg)
{
	struct jsonl *j = arg;

	(void)loop;
	j->flush_timer = NULL;
	if (j->fd >= 0)
		flush(j);
}

static void flush_soon(struct jsonl *j)
{
	if (j->outlen >= 65536) {
		flush(j);
	} else if (j->batching && j->calls_bytes > j->outlen) {
		return; /* something sent is unanswered: wait for its answer */
	} else if (!j->flush_timer) {
		j->flush_timer = loop_timer_add(j->loop, 0, on_flush_timer, j);
		if (!j->flush_timer)
			flush(j);
	}
}

struct jsonl *jsonl_new(struct loop *loop, const char *path)
{
	struct jsonl *j = calloc(1, sizeof *j);

	if (!j)
		return NULL;
	j->loop = loop;
	j->fd = -1;
	j->tail = &j->calls;
	snprintf(j->path, sizeof j->path, "%s", path);
	return j;
}

/* The connection is closed and every call in flight fails with WHY. With
 * KEEP, on a batching connection (audit records), the calls
 * not a byte of which was sent stay queued for the next connection: the
 * daemon never saw them, so sending them again cannot make a copy. */
static void drop(struct jsonl *j, const char *why, int keep)
{
	struct call *c = j->calls;
	size_t total = 0, off = 0, unsent_from, kept_bytes = 0;

	if (j->fd >= 0) {
		loop_del_fd(j->loop, j->fd);
		close(j->fd);
		j->fd = -1;
	}
	/* what is in out is the end of the calls' lines, in order */
	for (struct call *p = j->calls; p; p = p->next)
		total += p->len;
	unsent_from = total >= j->outlen ? total - j->outlen : 0;
	keep = keep && j->batching;
	j->calls = NULL;
	j->tail = &j->calls;
	j->ncalls = 0;
	j->calls_bytes = 0;
	j->inlen = 0;
	while (c) {
		struct call *next = c->next;
		size_t start = off;

		off += c->len;
		if (keep && !c->lasting && start >= unsent_from) {
			c->next = NULL;
			*j->tail = c;
			j->tail = &c->next;
			j->ncalls++;
			j->calls_bytes += c->len;
			kept_bytes += c->len;
		} else {
			if (c->fn)
				c->fn(c->ctx, NULL, why);
			call_end(j, c);
		}
		c = next;
	}
	if (kept_bytes && kept_bytes <= j->outlen)
		memmove(j->out, j->out + (j->outlen - kept_bytes), kept_bytes);
	j->outlen = kept_bytes <= j->outlen ? kept_bytes : 0;
}

void jsonl_set_batching(struct jsonl *j, int on)
{
	j->batching = on;
}

void jsonl_free(struct jsonl *j)
{
	if (!j)
		return;
	if (j->flush_timer)
		loop_timer_cancel(j->loop, j->flush_timer);
	drop(j, "shutting down", 0);
	while (j->spare) {
		struct call *c = j->spare;

		j->spare = c->next;
		free(c);
	}
	free(j->out);
	free(j);
}

int jsonl_connected(const struct jsonl *j)
{
	return j->fd >= 0;
}

size_t jsonl_pending(const struct jsonl *j)
{
	return j->ncalls;
}

int jsonl_has_room(const struct jsonl *j)
{
	return j->outlen <= JSONL_OUT_MAX / 2;
}

int jsonl_ready(struct jsonl *j)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (j->fd >= 0)
		return 0;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", j->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		if (!j->warned++)
			log_warning("unable to connect to %s: %s", j->path, strerror(errno));
		close(fd);
		return -1;
	}
	if (loop_add_fd(j->loop, fd, EPOLLIN, on_event, j) < 0) {
		close(fd);
		return -1;
	}
	if (j->warned)
		log_info("connected to %s again", j->path);
	j->warned = 0;
	j->fd = fd;
	j->want_out = 0;
	/* calls kept from the connection before: their time runs from now */
	for (struct call *c = j->calls; c; c = c->next)
		c->deadline = loop_now_ms() + c->timeout_ms;
	if (j->outlen)
		flush_soon(j);
	return 0;
}

static void flush(struct jsonl *j)
{
	while (j->outlen) {
		ssize_t n = send(j->fd, j->out, j->outlen, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			log_warning("%s: %s", j->path, strerror(errno));
			drop(j, "the daemon went away", 1);
			return;
		}
		memmove(j->out, j->out + n, j->outlen - (size_t)n);
		j->outlen -= (size_t)n;
	}
	if (j->fd >= 0 && !!j->outlen != j->want_out) {
		j->want_out = !!j->outlen;
		loop_mod_fd(j->loop, j->fd, EPOLLIN | (j->outlen ? EPOLLOUT : 0));
	}
}

enum call_kind { CALL_REPLY, CALL_ACK_ONLY, CALL_WATCH };

static int enqueue(struct jsonl *j, const char *members, size_t len, uint64_t timeout_ms, jsonl_fn *fn,
		   void *ctx, enum call_kind kind)
{
	char head[40], *h;
	int hl;
	struct call *c;

	if (jsonl_ready(j) < 0 || !(c = call_new(j)))
		return -1;
	c->id = ++j->next_id;
	memcpy(head, "{\"id\":", 6);
	h = decimal_i64(head + 6, c->id);
	if (len)
		*h++ = ',';
	hl = (int)(h - head);
	if (len + (size_t)hl + 2 >= IPC_LINE_MAX || j->outlen + len + (size_t)hl + 2 > JSONL_OUT_MAX) {
		call_end(j, c);
		return -1;
	}
	if (j->outlen + len + (size_t)hl + 2 > j->outcap) {
		size_t cap = (j->outlen + len + (size_t)hl + 2) * 2;
		char *p = realloc(j->out, cap);

		if (!p) {
			call_end(j, c);
			return -1;
		}
		j->out = p;
		j->outcap = cap;
	}
	memcpy(j->out + j->outlen, head, (size_t)hl);
	memcpy(j->out + j->outlen + hl, members, len);
	memcpy(j->out + j->outlen + hl + len, "}\n", 2);
	j->outlen += (size_t)hl + len + 2;
	c->len = (size_t)hl + len + 2;
	j->calls_bytes += c->len;
	c->timeout_ms = timeout_ms;
	c->deadline = loop_now_ms() + timeout_ms;
	c->fn = fn;
	c->ctx = ctx;
	c->ack_only = kind == CALL_ACK_ONLY;
	c->lasting = kind == CALL_WATCH;
	*j->tail = c;
	j->tail = &c->next;
	j->ncalls++;
	flush_soon(j);
	return 0;
}

int jsonl_call_raw(struct jsonl *j, const char *members, size_t len, uint64_t timeout_ms,
		   jsonl_fn *fn, void *ctx)
{
	return enqueue(j, members, len, timeout_ms, fn, ctx, CALL_REPLY);
}

int jsonl_send(struct jsonl *j, const char *members, size_t len, uint64_t timeout_ms, jsonl_fn *fn)
{
	return enqueue(j, members, len, timeout_ms, fn, NULL, CALL_ACK_ONLY);
}

int jsonl_watch(struct jsonl *j, const char *members, size_t len, uint64_t timeout_ms, jsonl_fn *fn,
		void *ctx)
{
	return enqueue(j, members, len, timeout_ms, fn, ctx, CALL_WATCH);
}

int jsonl_call(struct jsonl *j, json_t *req, uint64_t timeout_ms, jsonl_fn *fn, void *ctx)
{
	char *line = json_dumps(req, JSON_COMPACT);
	size_t n = line ? strlen(line) : 0;
	int r;

	json_decref(req);
	if (n < 2) {
		free(line);
		return -1;
	}
	/* the members between the braces */
	r = enqueue(j, line + 1, n - 2, timeout_ms, fn, ctx, CALL_REPLY);
	free(line);
	return r;
}

/* ---- writing JSON ---- */

/* Room for N more bytes and the NUL after them: where they go, or NULL
 * (the writer failed: it stays failed). */
static char *jw_room(struct jw *w, size_t n)
{
	if (w->failed)
		return NULL;
	if (w->len + n + 1 > w->cap) {
		size_t cap = (w->len + n + 1) * 2 + 1024;
		char *q = realloc(w->p, cap);

		if (!q) {
			w->failed = 1;
			return NULL;
		}
		w->p = q;
		w->cap = cap;
	}
	return w->p + w->len;
}

static void jw_put(struct jw *w, const char *p, size_t n)
{
	char *o = jw_room(w, n);

	if (!o)
		return;
	memcpy(o, p, n);
	w->len += n;
	w->p[w->len] = '\0';
}

/* ,"KEY": (the comma when a member came before), with one look at the room */
static void jw_key(struct jw *w, const char *key)
{
	size_t n = strlen(key);
	int comma = w->len && w->p[w->len - 1] != '{' && w->p[w->len - 1] != '[';
	char *o = jw_room(w, n + 4);

	if (!o)
		return;
	if (comma)
		*o++ = ',';
	*o++ = '"';
	memcpy(o, key, n);
	o += n;
	*o++ = '"';
	*o++ = ':';
	*o = '\0';
	w->len = (size_t)(o - w->p);
}

/* A string, escaped, after the JSON text LIT of LITLEN bytes (a key, or
 * nothing); bytes that are not UTF-8 are written as U+FFFD so that the
 * line stays valid JSON. */
static void jw_value(struct jw *w, const char *lit, size_t litlen, const char *v, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run;
	char *o;

	/* the usual value is plain all through: quoted and copied at once,
	 * with what goes before it, after one look at the room */
	i = json_plain_len(v, n, JSON_PLAIN);
	if (!(o = jw_room(w, litlen + i + 2)))
		return;
	if (litlen)
		memcpy(o, lit, litlen);
	o += litlen;
	*o++ = '"';
	memcpy(o, v, i);
	if (i == n) {
		o[i] = '"';
		o[i + 1] = '\0';
		w->len += litlen + i + 2;
		return;
	}
	w->len += litlen + i + 1;
	while (i < n) {
		unsigned char c = (unsigned char)v[i];

		run = i + json_plain_len(v + i, n - i, JSON_PLAIN);
		if (run > i) {
			jw_put(w, v + i, run - i);
			i = run;
			continue;
		}
		if (c < 0x80) {
			char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };

			if (c == '"' || c == '\\') {
				e[1] = (char)c;
				jw_put(w, e, 2);
			} else {
				jw_put(w, e, 6);
			}
			i++;
			continue;
		}
		{
			size_t len = utf8_char_len((const unsigned char *)v + i, n - i);

			if (len)
				jw_put(w, v + i, len);
			else
				jw_put(w, "\\ufffd", 6);
			i += len ? len : 1;
		}
	}
	jw_put(w, "\"", 1);
}

void jw_strn(struct jw *w, const char *key, const char *value, size_t len)
{
	jw_key(w, key);
	jw_value(w, NULL, 0, value, len);
}

void jw_str(struct jw *w, const char *key, const char *value, size_t max)
{
	if (!value || !*value)
		return;
	jw_strn(w, key, value, strnlen(value, max));
}

void jw_member(struct jw *w, const char *lit, size_t litlen, const char *value, size_t n)
{
	jw_value(w, lit, litlen, value, n);
}

void jw_member_int(struct jw *w, const char *lit, size_t litlen, long long value)
{
	char *o = jw_room(w, litlen + 21);

	if (!o)
		return;
	memcpy(o, lit, litlen);
	o = decimal_i64(o + litlen, value);
	*o = '\0';
	w->len = (size_t)(o - w->p);
}

void jw_int(struct jw *w, const char *key, long long value)
{
	char num[24];

	jw_key(w, key);
	jw_put(w, num, (size_t)(decimal_i64(num, value) - num));
}

void jw_raw(struct jw *w, const char *key, const char *json, size_t len)
{
	if (key)
		jw_key(w, key);
	jw_put(w, json, len);
}

void jw_free(struct jw *w)
{
	free(w->p);
	memset(w, 0, sizeof *w);
}

void jw_reset(struct jw *w)
{
	if (w->cap > JW_KEEP_MAX) {
		jw_free(w);
		return;
	}
	w->len = 0;
	w->failed = 0;
	if (w->p)
		w->p[0] = '\0';
}

void jsonl_cancel(struct jsonl *j, void *ctx)
{
	for (struct call *c = j->calls; c; c = c->next)
		if (c->ctx == ctx)
			c->fn = NULL;
}

/* Take the call ID out of the list. */
static struct call *take(struct jsonl *j, json_int_t id)
{
	for (struct call **pp = &j->calls; *pp; pp = &(*pp)->next) {
		struct call *c = *pp;

		if (c->id != id)
			continue;
		*pp = c->next;
		if (!*pp)
			j->tail = pp;
		j->ncalls--;
		j->calls_bytes -= c->len;
		return c;
	}
	return NULL;
}

/* {"id":N,"ok":true... of a call that only wants failures: taken without
 * a JSON parser (p2p-audit acknowledges every record). 1 if it was. */
static int quick_ack(struct jsonl *j, const char *line, size_t len)
{
	const char *p = line + 6, *end = line + len;
	json_int_t id = 0;
	int digits = 0;
	struct call *c;

	if (len < 20 || memcmp(line, "{\"id\":", 6))
		return 0;
	/* our ids: 1, 2, 3... (enqueue); anything else goes to jansson */
	for (; p < end && *p >= '0' && *p <= '9' && digits < 18; p++, digits++)
		id = id * 10 + (*p - '0');
	if (!digits || end - p < 11 || memcmp(p, ",\"ok\":true", 10))
		return 0;
	for (c = j->calls; c && c->id != id; c = c->next)
		;
	if (!c || !c->ack_only)
		return 0;
	call_end(j, take(j, id));
	return 1;
}

static void on_line(struct jsonl *j, const char *line, size_t len)
{
	json_error_t err;
	json_t *reply;
	struct call *c;

	if (quick_ack(j, line, len))
		return;
	reply = json_loadb(line, len, 0, &err);

	if (!reply || !json_is_integer(json_object_get(reply, "id"))) {
		log_warning("%s: a reply that is not JSON with an id: ignored", j->path);
		json_decref(reply);
		return;
	}
	for (c = j->calls; c && c->id != json_integer_value(json_object_get(reply, "id")); c = c->next)
		;
	if (c && c->lasting && !json_is_false(json_object_get(reply, "ok"))) {
		/* answered: from now on it waits for events, with no deadline,
		 * and none of its line is waiting for an answer */
		c->deadline = UINT64_MAX;
		j->calls_bytes -= c->len;
		c->len = 0;
		if (c->fn)
			c->fn(c->ctx, reply, NULL);
		json_decref(reply);
		return;
	}
	c = take(j, json_integer_value(json_object_get(reply, "id")));
	if (c && c->fn)
		c->fn(c->ctx, reply, NULL);
	call_end(j, c);
	json_decref(reply);
}

static void on_event(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct jsonl *j = arg;
	ssize_t n;

	(void)loop;
	(void)fd;
	if (events & EPOLLOUT)
		flush(j);
	if (j->fd < 0 || !(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	n = read(j->fd, j->in + j->inlen, sizeof j->in - 1 - j->inlen);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		log_warning("%s: %s", j->path, n == 0 ? "the daemon closed the connection" : strerror(errno));
		drop(j, "the daemon went away", 1);
		return;
	}
	j->inlen += (size_t)n;
	/* the lines read, then what is left of the last moved to the front
	 * once (p2p-audit's acknowledgements come a few hundred at a time) */
	for (size_t at = 0;;) {
		char *nl = memchr(j->in + at, '\n', j->inlen - at);

		if (!nl) {
			memmove(j->in, j->in + at, j->inlen - at);
			j->inlen -= at;
			break;
		}
		on_line(j, j->in + at, (size_t)(nl - (j->in + at)));
		if (j->fd < 0)
			return;
		at = (size_t)(nl + 1 - j->in);
	}
	if (j->inlen == sizeof j->in - 1) {
		log_warning("%s: a reply line over %d bytes", j->path, IPC_LINE_MAX);
		drop(j, "a reply too long", 0);
		return;
	}
	if (j->batching && j->outlen && j->calls_bytes == j->outlen)
		flush(j); /* all answered: what waited goes now, together */
}

void jsonl_sweep(struct jsonl *j, uint64_t now)
{
	if (j->fd < 0) {
		/* calls kept for the next connection (audit records) do not
		 * wait for the next request to make one */
		if (j->ncalls)
			jsonl_ready(j);
		return;
	}
	for (struct call *c = j->calls; c; c = c->next)
		if (c->deadline <= now) {
			log_warning("%s: no reply within the time allowed: reconnecting", j->path);
			drop(j, "no reply in time", 1);   /* what was never sent is kept */
			return;
		}
}

size_t jsonl_finish(struct jsonl *j, unsigned timeout_ms)
{
	uint64_t end = loop_now_ms() + timeout_ms, now;

	if (!j->ncalls || jsonl_ready(j) < 0)
		return j->ncalls;
	while (j->ncalls && j->fd >= 0 && (now = loop_now_ms()) < end) {
		struct pollfd p = { .fd = j->fd, .events = POLLIN | (j->outlen ? POLLOUT : 0) };
		int n = poll(&p, 1, (int)(end - now));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (p.revents & POLLOUT)
			flush(j);
		if (j->fd >= 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)))
			on_event(j->loop, j->fd, EPOLLIN, j);
	}
	return j->ncalls;
}
