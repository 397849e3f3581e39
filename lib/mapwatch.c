/* mapwatch.c: the client side of p2p-mapd's watch op (p2p-ipc.7): a dump
 * of every entity, then "change" ... "set"/"del" ... "end" per version. The
 * table is only handed to the callback at an "end", so a half-received
 * version is never acted on. */
#include "mapwatch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"

#define RECONNECT_MS 1000

struct mapwatch {
	struct loop *loop;
	char path[108];
	mapwatch_fn *on_map;
	void *arg;
	int fd;
	char *in;
	size_t inlen;
	json_t *entities;     /* "kind/name" -> value */
	json_t *settings;
	json_int_t version;
	int ready;
	struct loop_timer *retry;
};

static void connect_soon(struct mapwatch *w);

json_int_t mapwatch_version(const struct mapwatch *w)
{
	return w->version;
}

json_t *mapwatch_settings(const struct mapwatch *w)
{
	return w->settings;
}

int mapwatch_ready(const struct mapwatch *w)
{
	return w->ready;
}

json_t *mapwatch_get(const struct mapwatch *w, const char *kind, const char *name)
{
	char key[200];

	snprintf(key, sizeof key, "%s/%s", kind, name);
	return json_object_get(w->entities, key);
}

json_t *mapwatch_section(const struct mapwatch *w, const char *kind)
{
	json_t *out = json_object(), *v;
	const char *key;
	size_t n = strlen(kind);

	json_object_foreach(w->entities, key, v)
		if (!strncmp(key, kind, n) && key[n] == '/')
			json_object_set(out, key + n + 1, v);
	return out;
}

static void replace_settings(struct mapwatch *w, json_t *msg)
{
	json_decref(w->settings);
	w->settings = json_incref(json_object_get(msg, "settings"));
	w->version = json_integer_value(json_object_get(msg, "version"));
}

static void handle_line(struct mapwatch *w, json_t *msg)
{
	const char *event = json_string_value(json_object_get(msg, "event"));

	if (json_is_false(json_object_get(msg, "ok"))) {
		log_error("%s: %s", w->path, json_string_value(json_object_get(msg, "error")));
		return;
	}
	if (!event) { /* the first line: a whole dump follows */
		json_object_clear(w->entities);
		replace_settings(w, msg);
	} else if (!strcmp(event, "change")) {
		replace_settings(w, msg);
	} else if (!strcmp(event, "set") || !strcmp(event, "del")) {
		char key[200];

		snprintf(key, sizeof key, "%s/%s", json_string_value(json_object_get(msg, "kind")),
			 json_string_value(json_object_get(msg, "name")));
		if (!strcmp(event, "set"))
			json_object_set(w->entities, key, json_object_get(msg, "value"));
		else
			json_object_del(w->entities, key);
	} else if (!strcmp(event, "end")) {
		w->ready = 1;
		w->on_map(w, w->arg);
	}
}

static void drop_connection(struct mapwatch *w, const char *why)
{
	if (w->fd >= 0) {
		log_warning("%s: %s; keeping map version %lld and reconnecting", w->path, why,
			    (long long)w->version);
		loop_del_fd(w->loop, w->fd);
		close(w->fd);
		w->fd = -1;
	}
	w->inlen = 0;
	connect_soon(w);
}

static void on_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct mapwatch *w = arg;

	(void)loop;
	(void)events;
	for (;;) {
		ssize_t n = read(fd, w->in + w->inlen, IPC_LINE_MAX - w->inlen);
		char *start = w->in, *nl;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			drop_connection(w, n == 0 ? "p2p-mapd closed the connection" : strerror(errno));
			return;
		}
		w->inlen += (size_t)n;
		while ((nl = memchr(start, '\n', w->inlen - (size_t)(start - w->in)))) {
			json_t *msg = json_loadb(start, (size_t)(nl - start), 0, NULL);

			if (json_is_object(msg))
				handle_line(w, msg);
			json_decref(msg);
			start = nl + 1;
		}
		w->inlen -= (size_t)(start - w->in);
		memmove(w->in, start, w->inlen);
		if (w->inlen == IPC_LINE_MAX) {
			drop_connection(w, "a line over the IPC limit");
			return;
		}
	}
}

static int try_connect(struct mapwatch *w)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const char watch[] = "{\"id\":1,\"op\":\"watch\"}\n";
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), flags;

	if (fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", w->path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    write(fd, watch, sizeof watch - 1) != (ssize_t)(sizeof watch - 1))
		goto fail;
	/* Non-blocking from here: the loop reads the stream. */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    loop_add_fd(w->loop, fd, EPOLLIN, on_readable, w) < 0)
		goto fail;
	w->fd = fd;
	log_info("following the map from %s", w->path);
	return 0;
fail:
	{
		int saved = errno;

		close(fd);
		errno = saved;
	}
	return -1;
}

static void on_retry(struct loop *loop, void *arg)
{
	struct mapwatch *w = arg;

	(void)loop;
	w->retry = NULL;
	if (try_connect(w) < 0)
		connect_soon(w);
}

static void connect_soon(struct mapwatch *w)
{
	if (!w->retry)
		w->retry = loop_timer_add(w->loop, RECONNECT_MS, on_retry, w);
}

struct mapwatch *mapwatch_new(struct loop *loop, const char *sock_path, mapwatch_fn *on_map,
			      void *arg)
{
	struct mapwatch *w = calloc(1, sizeof *w);

	if (!w)
		return NULL;
	w->fd = -1;
	w->loop = loop;
	w->on_map = on_map;
	w->arg = arg;
	if (strlen(sock_path) >= sizeof w->path) {
		free(w);
		errno = ENAMETOOLONG;
		return NULL;
	}
	strcpy(w->path, sock_path);
	w->in = malloc(IPC_LINE_MAX + 1);
	w->entities = json_object();
	if (!w->in || !w->entities) {
		mapwatch_free(w);
		errno = ENOMEM;
		return NULL;
	}
	if (try_connect(w) < 0) {
		log_warning("unable to connect to %s: %s; retrying", w->path, strerror(errno));
		connect_soon(w);
	}
	return w;
}

void mapwatch_free(struct mapwatch *w)
{
	if (!w)
		return;
	if (w->fd >= 0) {
		loop_del_fd(w->loop, w->fd);
		close(w->fd);
	}
	if (w->retry)
		loop_timer_cancel(w->loop, w->retry);
	free(w->in);
	json_decref(w->entities);
	json_decref(w->settings);
	free(w);
}
