/* p2p-mapd: owns the map (names <-> overlay addresses <-> resources <->
 * connectors), gives stable addresses, and serves look-ups and change
 * streams on mapd.sock. */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "file.h"
#include "ipc.h"
#include "log.h"
#include "loop.h"
#include "mapd.h"
#include "notify.h"
#include "privs.h"

#define USAGE "p2p-mapd [-v] [-n] [-d fd] [-r rundir] [-s statedir] [-u user] [-g grace] -f map.json"
#define RELOAD_SETTLE_MS 100

struct mapd {
	const char *map_path;
	char state_path[PATH_MAX];
	char sock_path[PATH_MAX];
	long grace;
	struct loop *loop;
	struct ipc_server *srv;
	struct map *map;
	struct alloc_state state;
	int inotify_fd;
	struct loop_timer *reload_timer;
	unsigned long reloads, refused;
	char last_error[512];
	size_t watchers;
};

struct watcher {
	json_t *id;
};

static void log_errors(const struct map_errors *errs)
{
	for (int i = 0; i < errs->count && i < MAP_ERRORS_MAX; i++)
		log_error("%s", errs->msg[i]);
	if (errs->count > MAP_ERRORS_MAX)
		log_error("%s: and %d more problems", "map", errs->count - MAP_ERRORS_MAX);
}

/* Read and check the map at PATH against a copy of the allocation state.
 * On success the new state is in *NEWST and the number of allocation
 * changes in *CHANGES. */
static struct map *read_map(struct mapd *d, struct alloc_state *newst, int *changes,
			    struct map_errors *errs)
{
	size_t len;
	char *text = file_read(d->map_path, MAP_FILE_MAX, &len);
	struct map *m;

	if (!text) {
		map_errors_add(errs, "unable to read %s: %s", d->map_path, strerror(errno));
		return NULL;
	}
	if (alloc_state_copy(newst, &d->state) < 0) {
		free(text);
		map_errors_add(errs, "out of memory");
		return NULL;
	}
	m = map_load(d->map_path, text, len, newst, time(NULL), d->grace, errs);
	free(text);
	if (!m) {
		alloc_state_free(newst);
		return NULL;
	}
	*changes = !json_equal(d->state.doc, newst->doc);
	return m;
}

/* ---- change streams ---- */

static json_t *entity_table(const struct map *m)
{
	json_t *table = json_object(), *list = map_entities(m), *e;
	size_t i;
	char key[200];

	json_array_foreach(list, i, e) {
		snprintf(key, sizeof key, "%s/%s", json_string_value(json_object_get(e, "kind")),
			 json_string_value(json_object_get(e, "name")));
		json_object_set(table, key, e);
	}
	json_decref(list);
	return table;
}

/* Send MSG (stolen) with the request's id as its first member. */
static int send_line(struct ipc_conn *c, json_t *id, json_t *msg)
{
	json_t *line = json_pack("{s:O}", "id", id);
	int rc;

	json_object_update(line, msg);
	rc = ipc_send(c, line);
	json_decref(line);
	json_decref(msg);
	return rc;
}

/* The whole map, an entity a line, so no line nears the size limit. */
static int send_map(struct ipc_conn *c, json_t *id, const struct map *m, int watch)
{
	json_t *list = map_entities(m), *e;
	size_t i;
	int rc = send_line(c, id, json_pack("{s:b,s:I,s:o,s:I,s:b}", "ok", 1, "version",
					    (json_int_t)m->version, "settings", map_settings(m),
					    "count", (json_int_t)json_array_size(list), "watch", watch));

	json_array_foreach(list, i, e) {
		if (rc < 0)
			break;
		json_object_set_new(e, "event", json_string("set"));
		json_incref(e);
		rc = send_line(c, id, e);
	}
	json_decref(list);
	if (rc == 0)
		rc = send_line(c, id, json_pack("{s:s,s:I}", "event", "end", "version",
						(json_int_t)m->version));
	return rc;
}

struct change {
	const struct map *map;
	json_t *lines;
};

static void send_change(struct ipc_conn *c, void *arg)
{
	struct watcher *w = ipc_conn_data(c);
	struct change *ch = arg;
	size_t i;
	json_t *line;

	if (!w)
		return;
	json_array_foreach(ch->lines, i, line)
		if (send_line(c, w->id, json_deep_copy(line)) < 0)
			return; /* the connection is gone: it reconnects and gets all */
}

/* Tell every watcher what changed between OLD and NEW. */
static void broadcast_change(struct mapd *d, const struct map *old, const struct map *new)
{
	json_t *a = entity_table(old), *b = entity_table(new), *v, *w;
	struct change ch = { .map = new, .lines = json_array() };
	const char *key;

	json_array_append_new(ch.lines, json_pack("{s:s,s:I,s:o}", "event", "change", "version",
						  (json_int_t)new->version, "settings",
						  map_settings(new)));
	json_object_foreach(b, key, v) {
		w = json_object_get(a, key);
		if (!w || !json_equal(w, v)) {
			json_t *line = json_deep_copy(v);

			json_object_set_new(line, "event", json_string("set"));
			json_array_append_new(ch.lines, line);
		}
	}
	json_object_foreach(a, key, v)
		if (!json_object_get(b, key))
			json_array_append_new(ch.lines,
					      json_pack("{s:s,s:O,s:O}", "event", "del", "kind",
							json_object_get(v, "kind"), "name",
							json_object_get(v, "name")));
	json_array_append_new(ch.lines, json_pack("{s:s,s:I}", "event", "end", "version",
						  (json_int_t)new->version));
	ipc_server_foreach(d->srv, send_change, &ch);
	json_decref(ch.lines);
	json_decref(a);
	json_decref(b);
}

/* ---- reload ---- */

/* WHY starts with the file it is about. */
static void refuse(struct mapd *d, const char *why)
{
	d->refused++;
	snprintf(d->last_error, sizeof d->last_error, "%.500s", why);
	log_error("%s; keeping map version %lld", why, (long long)d->map->version);
}

static void reload(struct mapd *d, const char *reason)
{
	struct map_errors errs = { 0 };
	struct alloc_state newst;
	int changes = 0;
	struct map *m = read_map(d, &newst, &changes, &errs), *old;

	if (!m) {
		log_errors(&errs);
		refuse(d, errs.count && errs.msg[0] ? errs.msg[0] : "map refused");
		map_errors_clear(&errs);
		return;
	}
	if (m->version == d->map->version && json_equal(m->doc, d->map->doc)) {
		log_debug("%s: %s: version %lld unchanged", d->map_path, reason,
			  (long long)m->version);
		map_free(m);
		alloc_state_free(&newst);
		return;
	}
	if (m->version <= d->map->version) {
		char why[PATH_MAX + 200];

		snprintf(why, sizeof why, "%s: .version: %lld is not greater than the loaded %lld "
			 "but the map changed", d->map_path, (long long)m->version,
			 (long long)d->map->version);
		refuse(d, why);
		map_free(m);
		alloc_state_free(&newst);
		return;
	}
	if (changes && alloc_state_save(&newst, d->state_path) < 0) {
		char why[PATH_MAX + 100];

		snprintf(why, sizeof why, "unable to save the allocation state %s: %s",
			 d->state_path, strerror(errno));
		refuse(d, why);
		map_free(m);
		alloc_state_free(&newst);
		return;
	}
	alloc_state_free(&d->state);
	d->state = newst;
	old = d->map;
	d->map = m;
	d->reloads++;
	d->last_error[0] = '\0';
	broadcast_change(d, old, m);
	map_free(old);
	log_info("loaded %s version %lld (%s): %zu connectors, %zu clients, %zu resources",
		 d->map_path, (long long)m->version, reason, m->count[ENT_CONNECTOR],
		 m->count[ENT_CLIENT], m->count[ENT_RESOURCE]);
}

static void on_reload_timer(struct loop *loop, void *arg)
{
	struct mapd *d = arg;

	(void)loop;
	d->reload_timer = NULL;
	reload(d, "file changed");
}

static void on_sighup(struct loop *loop, int signo, void *arg)
{
	(void)loop;
	(void)signo;
	reload(arg, "SIGHUP");
}

static void on_sigterm(struct loop *loop, int signo, void *arg)
{
	(void)arg;
	log_info("exiting on signal %d", signo);
	loop_stop(loop);
}

/* Editors and deploy tools replace the file in many ways (rename over it,
 * truncate and write); wait for the writes to settle, then reload. */
static void on_inotify(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct mapd *d = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const char *base = strrchr(d->map_path, '/');
	ssize_t n;
	int hit = 0;

	(void)events;
	base = base ? base + 1 : d->map_path;
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			if (ev->len && strcmp(ev->name, base) == 0)
				hit = 1;
			p += sizeof *ev + ev->len;
		}
	}
	if (!hit)
		return;
	if (d->reload_timer)
		loop_timer_cancel(loop, d->reload_timer);
	d->reload_timer = loop_timer_add(loop, RELOAD_SETTLE_MS, on_reload_timer, d);
}

static int watch_file(struct mapd *d)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(d->map_path, '/');

	if (!slash)
		strcpy(dir, ".");
	else if (slash == d->map_path)
		strcpy(dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - d->map_path), d->map_path);
	d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->inotify_fd < 0 ||
	    inotify_add_watch(d->inotify_fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0)
		return -1;
	return loop_add_fd(d->loop, d->inotify_fd, EPOLLIN, on_inotify, d);
}

/* ---- requests ---- */

static void op_status(struct mapd *d, struct ipc_conn *c, json_t *req)
{
	ipc_reply_ok(c, req, json_pack("{s:s,s:I,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s?}",
		"prog", "p2p-mapd",
		"version", (json_int_t)d->map->version,
		"file", d->map_path,
		"overlay", json_string_value(json_object_get(d->map->doc, "overlay")),
		"connectors", (json_int_t)d->map->count[ENT_CONNECTOR],
		"clients", (json_int_t)d->map->count[ENT_CLIENT],
		"resources", (json_int_t)d->map->count[ENT_RESOURCE],
		"watchers", (json_int_t)d->watchers,
		"connections", (json_int_t)ipc_server_nconns(d->srv),
		"reloads", (json_int_t)d->reloads,
		"refused", (json_int_t)d->refused,
		"last_error", d->last_error[0] ? d->last_error : NULL));
}

static const char *string_arg(struct ipc_conn *c, json_t *req, const char *key)
{
	json_t *v = json_object_get(req, key);

	if (!json_is_string(v)) {
		ipc_reply_error(c, req, ".%s: %s", key, v ? "not a string" : "missing");
		return NULL;
	}
	return json_string_value(v);
}

static void op_lookup(struct mapd *d, struct ipc_conn *c, json_t *req)
{
	const char *name = string_arg(c, req, "name"), *zone, *res;
	json_t *r;

	if (!name)
		return;
	res = map_lookup(d->map, name, &zone);
	if (!res) {
		ipc_reply_error_with(c, req, json_pack("{s:b,s:s?}", "notfound", 1, "zone", zone),
				     "%s: %s", name, zone ? "no such name" : "not in a private zone");
		return;
	}
	r = json_object_get(json_object_get(d->map->doc, "resources"), res);
	ipc_reply_ok(c, req, json_pack("{s:O,s:s,s:O,s:i,s:s}",
		"addr", json_object_get(r, "addr"), "resource", res,
		"kind", json_object_get(r, "kind"), "ttl", d->map->ttl, "zone", zone));
}

static void op_reverse(struct mapd *d, struct ipc_conn *c, json_t *req)
{
	const char *text = string_arg(c, req, "addr");
	struct addr a;
	json_t *who;

	if (!text)
		return;
	if (addr_parse(text, &a) < 0) {
		ipc_reply_error(c, req, ".addr: %s is not an IP address", text);
		return;
	}
	who = map_reverse(d->map, &a);
	if (!who) {
		ipc_reply_error_with(c, req, json_pack("{s:b}", "notfound", 1),
				     "%s: no resource or host has this address", text);
		return;
	}
	json_object_set_new(who, "ttl", json_integer(d->map->ttl));
	ipc_reply_ok(c, req, who);
}

static void op_watch(struct mapd *d, struct ipc_conn *c, json_t *req)
{
	struct watcher *w;

	if (ipc_conn_data(c)) {
		ipc_reply_error(c, req, "this connection is already watching");
		return;
	}
	w = calloc(1, sizeof *w);
	if (!w) {
		ipc_reply_error(c, req, "out of memory");
		return;
	}
	w->id = json_incref(json_object_get(req, "id") ? json_object_get(req, "id") : json_null());
	ipc_conn_set_data(c, w);
	d->watchers++;
	send_map(c, w->id, d->map, 1);
}

static void on_request(struct ipc_conn *c, const char *op, json_t *req, void *arg)
{
	struct mapd *d = arg;

	if (strcmp(op, "status") == 0)
		op_status(d, c, req);
	else if (strcmp(op, "lookup") == 0)
		op_lookup(d, c, req);
	else if (strcmp(op, "reverse") == 0)
		op_reverse(d, c, req);
	else if (strcmp(op, "get") == 0)
		send_map(c, json_object_get(req, "id") ? json_object_get(req, "id") : json_null(),
			 d->map, 0);
	else if (strcmp(op, "watch") == 0)
		op_watch(d, c, req);
	else
		ipc_reply_error(c, req, "unknown op '%s'", op);
}

static void on_close(struct ipc_conn *c, void *arg)
{
	struct mapd *d = arg;
	struct watcher *w = ipc_conn_data(c);

	if (!w)
		return;
	json_decref(w->id);
	free(w);
	d->watchers--;
}

/* ---- setup ---- */

static void drop_privileges(struct mapd *d, const struct passwd *pw, const char *user)
{
	if (ipc_server_chown(d->srv, pw->pw_uid, pw->pw_gid) < 0)
		log_fatal(EXIT_SYSTEM, "unable to chown %s: %s", d->sock_path, strerror(errno));
	if (privs_drop(pw, NULL, 0) < 0)
		log_fatal(EXIT_SYSTEM, "unable to become user %s: %s", user, strerror(errno));
}

static long parse_grace(const char *arg)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	/* Ten years is more grace than any deployment needs, and keeps
	 * now + grace far from overflowing. */
	if (errno || *arg == '\0' || *end != '\0' || v < 0 || v > 10L * 365 * 86400) {
		log_error("-g %s: a grace period in seconds, 0 to 315360000", arg);
		log_usage(USAGE);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct mapd d = { .grace = 86400, .inotify_fd = -1 };
	const char *rundir = "/run/p2p", *statedir = "/var/lib/p2p", *user = NULL;
	struct map_errors errs = { 0 };
	int check = 0, notify_fd = -1, opt, changes = 0;
	struct alloc_state st;
	struct passwd *pw = NULL;

	log_init("p2p-mapd");
	while ((opt = getopt(argc, argv, "vnd:r:s:u:g:f:")) != -1) {
		switch (opt) {
		case 'v': log_set_verbosity(2); break;
		case 'n': check = 1; break;
		case 'd':
			notify_fd = notify_parse_fd(optarg);
			if (notify_fd < 0)
				log_fatal(EXIT_USAGE, "-d %s: not an open file descriptor above 2", optarg);
			break;
		case 'r': rundir = optarg; break;
		case 's': statedir = optarg; break;
		case 'u': user = optarg; break;
		case 'g': d.grace = parse_grace(optarg); break;
		case 'f': d.map_path = optarg; break;
		default: log_usage(USAGE);
		}
	}
	if (!d.map_path || optind != argc)
		log_usage(USAGE);
	if (snprintf(d.state_path, sizeof d.state_path, "%s/mapd-alloc.json", statedir) >=
		    (int)sizeof d.state_path ||
	    ipc_socket_path(d.sock_path, sizeof d.sock_path, rundir, "mapd") < 0)
		log_fatal(EXIT_USAGE, "path too long");

	if (alloc_state_load(&d.state, d.state_path, &errs) < 0) {
		log_errors(&errs);
		map_errors_clear(&errs);
		log_fatal(EXIT_CONFIG, "refusing to start: the allocation state is unreadable "
			  "(moving it away gives new addresses to entities without one in the map)");
	}
	d.map = read_map(&d, &st, &changes, &errs);
	if (!d.map) {
		log_errors(&errs);
		map_errors_clear(&errs);
		alloc_state_free(&d.state);
		return EXIT_CONFIG;
	}
	if (check) {
		printf("configuration OK\n");
		map_free(d.map);
		alloc_state_free(&st);
		alloc_state_free(&d.state);
		return EXIT_OK;
	}
	if (changes && alloc_state_save(&st, d.state_path) < 0)
		log_fatal(EXIT_SYSTEM, "unable to save the allocation state %s: %s", d.state_path,
			  strerror(errno));
	alloc_state_free(&d.state);
	d.state = st;

	/* The user is looked up before anything is bound, so a typo leaves
	 * no socket behind. */
	if (user && !(pw = getpwnam(user)))
		log_fatal(EXIT_CONFIG, "unknown user %s", user);
	signal(SIGPIPE, SIG_IGN);
	d.loop = loop_new();
	if (!d.loop)
		log_fatal(EXIT_SYSTEM, "unable to create the event loop: %s", strerror(errno));
	if (loop_add_signal(d.loop, SIGHUP, on_sighup, &d) < 0 ||
	    loop_add_signal(d.loop, SIGTERM, on_sigterm, &d) < 0 ||
	    loop_add_signal(d.loop, SIGINT, on_sigterm, &d) < 0)
		log_fatal(EXIT_SYSTEM, "unable to set up signals: %s", strerror(errno));
	if (file_mkdir(rundir, 0755) < 0)
		log_fatal(EXIT_SYSTEM, "unable to create %s: %s", rundir, strerror(errno));
	d.srv = ipc_server_new(d.loop, d.sock_path, 0660, on_request, on_close, &d);
	if (!d.srv)
		log_fatal(EXIT_SYSTEM, "unable to serve %s: %s", d.sock_path,
			  errno == EADDRINUSE ? "another p2p-mapd is serving it" : strerror(errno));
	if (watch_file(&d) < 0)
		log_fatal(EXIT_SYSTEM, "unable to watch %s: %s", d.map_path, strerror(errno));
	if (pw)
		drop_privileges(&d, pw, user);
	log_info("serving %s: map version %lld, %zu connectors, %zu clients, %zu resources",
		 d.sock_path, (long long)d.map->version, d.map->count[ENT_CONNECTOR],
		 d.map->count[ENT_CLIENT], d.map->count[ENT_RESOURCE]);
	if (notify_ready(notify_fd) < 0)
		log_warning("unable to signal readiness on fd %d: %s", notify_fd, strerror(errno));
	if (loop_run(d.loop) < 0)
		log_fatal(EXIT_SYSTEM, "event loop failed: %s", strerror(errno));
	ipc_server_free(d.srv);
	if (d.inotify_fd >= 0)
		close(d.inotify_fd);
	loop_free(d.loop);
	map_free(d.map);
	alloc_state_free(&d.state);
	return EXIT_OK;
}
