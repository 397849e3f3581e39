/* p2p-authz: the policy decision point of a connector. The proxy asks on
 * authz.sock whether a request may pass; the answer comes from the policy
 * (policy.json), the WireGuard client behind the source address (from the
 * map, followed through p2p-mapd) and the bearer token checked against its
 * provider's key set. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "authz.h"
#include "file.h"
#include "ipc.h"
#include "log.h"
#include "loop.h"
#include "mapwatch.h"
#include "notify.h"
#include "privs.h"

#define USAGE "p2p-authz [-v] [-n] [-d fd] [-r rundir] [-u user] [-m mapd.sock] [-k key.pem] " \
	      "[-i issuer] [-A lifetime] [-s skew] [-T token-max] [-c entries] [-C cafile] " \
	      "-f policy.json"
#define RELOAD_SETTLE_MS 100

static struct {
	const char *policy, *rundir, *mapd, *keyfile, *cafile, *user;
	int check, notify_fd;
	long cache_entries;
} opt = { .rundir = "/run/p2p", .mapd = "/run/p2p/mapd.sock", .notify_fd = -1,
	  .cache_entries = CACHE_ENTRIES_DEFAULT };

static struct {
	struct authz a;
	struct loop *loop;
	struct ipc_server *ipc;
	struct mapwatch *watch;
	int inotify_fd;
	struct loop_timer *reload_timer;
	unsigned long reloads, refused, waits;
	char last_error[512];
	time_t loaded_at;
} d = { .inotify_fd = -1 };

/* Requests of one connection held while a key set is fetched; the ones
 * after them wait too, so replies keep the order of the requests. */
struct conn_state {
	json_t *queue;          /* checks held for a key set, in order */
	json_t *watch_id;       /* the id of this connection's watch, or NULL */
};

static void decisions_changed(void);
static int keys_changed(void);

/* ---- the policy ---- */

static void log_errors(const struct policy_errors *errs)
{
	for (int i = 0; i < errs->count && i < POLICY_ERRORS_MAX; i++)
		log_error("%s", errs->msg[i]);
	if (errs->count > POLICY_ERRORS_MAX)
		log_error("%s: and %d more problems", opt.policy, errs->count - POLICY_ERRORS_MAX);
}

/* Read and check the policy and its key files; NULL with ERRS filled. */
static struct policy *read_policy(struct policy_errors *errs)
{
	size_t len;
	char *text = file_read(opt.policy, POLICY_FILE_MAX, &len);
	struct policy *p;

	if (!text) {
		policy_errors_add(errs, "unable to read %s: %s", opt.policy,
				  errno == EFBIG ? "over 16 MiB" : strerror(errno));
		return NULL;
	}
	p = policy_load(opt.policy, text, len, errs);
	free(text);
	if (p && keystore_prepare(d.a.keys, p, errs) < 0) {
		policy_free(p);
		return NULL;
	}
	return p;
}

static void drain(struct ipc_conn *c, void *arg);

static void reload(const char *why)
{
	struct policy_errors errs = { 0 };
	struct policy *p = read_policy(&errs);

	if (!p) {
		log_errors(&errs);
		d.refused++;
		snprintf(d.last_error, sizeof d.last_error, "%.500s",
			 errs.count && errs.msg[0] ? errs.msg[0] : "policy refused");
		log_error("%s: %s: refused; keeping the policy loaded %lld s ago", opt.policy, why,
			  (long long)(time(NULL) - d.loaded_at));
		policy_errors_clear(&errs);
		keystore_retain(d.a.keys, d.a.policy); /* drop sources only the refused one named */
		if (d.ipc)
			ipc_server_foreach(d.ipc, drain, NULL); /* checks held for a source dropped */
		return;
	}
	policy_free(d.a.policy);
	d.a.policy = p;
	keystore_retain(d.a.keys, p);
	decisions_changed();
	/* checks held for a fetch are decided again under this policy: a key
	 * source it no longer names never ends its fetch */
	if (d.ipc)
		ipc_server_foreach(d.ipc, drain, NULL);
	d.reloads++;
	d.last_error[0] = '\0';
	d.loaded_at = time(NULL);
	log_info("%s: %s: loaded version %lld: %zu providers, %zu resources", opt.policy, why,
		 (long long)p->version, p->nproviders, p->nresources);
}

static void on_reload_timer(struct loop *loop, void *arg)
{
	(void)loop;
	(void)arg;
	d.reload_timer = NULL;
	reload("file changed");
}

static void on_inotify(struct loop *loop, int fd, uint32_t events, void *arg)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const char *base = strrchr(opt.policy, '/');
	ssize_t n;
	int hit = 0;

	(void)events;
	(void)arg;
	base = base ? base + 1 : opt.policy;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			if (ev->len && strcmp(ev->name, base) == 0)
				hit = 1;
			p += sizeof *ev + ev->len;
		}
	if (!hit)
		return;
	/* editors and deploy tools write in several steps: let them settle */
	if (d.reload_timer)
		loop_timer_cancel(loop, d.reload_timer);
	d.reload_timer = loop_timer_add(loop, RELOAD_SETTLE_MS, on_reload_timer, NULL);
}

static int watch_policy(void)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(opt.policy, '/');

	if (!slash)
		strcpy(dir, ".");
	else if (slash == opt.policy)
		strcpy(dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - opt.policy), opt.policy);
	d.inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d.inotify_fd < 0 ||
	    inotify_add_watch(d.inotify_fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0)
		return -1;
	return loop_add_fd(d.loop, d.inotify_fd, EPOLLIN, on_inotify, NULL);
}

/* ---- check ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Decide REQ and reply; 0, or -1 when it must wait for a key set. A check
 * that waited once (MAY_WAIT 0) is decided with the keys there are: with
 * an unknown kid, or an identity provider that cannot be reached, it would
 * otherwise wait and fetch again for ever. */
static int try_check(struct ipc_conn *c, json_t *req, int may_wait)
{
	char error[300] = "";
	json_t *fields;
	struct keysource *wait = NULL;
	uint64_t t0 = now_ns(), dt;
	enum decide_outcome o;

	keys_changed(); /* a key taken out stops working at once */
	o = authz_decide(&d.a, req, time(NULL), &fields, error, sizeof error, may_wait ? &wait : NULL);
	if (o == WAIT_FOR_KEYS)
		return -1;
	/* read again for this check (an unknown kid): the watchers hear of it
	 * first; this decision was made with the new keys */
	if (keys_changed() && fields)
		json_object_set_new(fields, "generation", json_integer((json_int_t)d.a.generation));
	if (!fields) {
		ipc_reply_error(c, req, "%s", error);
		return 0;
	}
	dt = now_ns() - t0;
	if (json_is_true(json_object_get(fields, "cached"))) {
		d.a.st.ns_cached += dt;
		d.a.st.n_cached++;
	} else {
		d.a.st.ns_uncached += dt;
		d.a.st.n_uncached++;
	}
	if (log_enabled(LOG_DEBUG))
		log_debug("check %s %s: %lld %s (%s)",
			  json_string_value(json_object_get(fields, "resource")) ?
			  json_string_value(json_object_get(fields, "resource")) : "-",
			  json_string_value(json_object_get(fields, "rule")),
			  (long long)json_integer_value(json_object_get(fields, "status")),
			  json_string_value(json_object_get(fields, "reason")),
			  json_is_true(json_object_get(fields, "cached")) ? "cached" : "decided");
	ipc_reply_ok(c, req, fields);
	return 0;
}

static double avg_us(uint64_t ns, unsigned long n)
{
	return n ? (double)ns / (double)n / 1000.0 : 0.0;
}

static void op_status(struct ipc_conn *c, json_t *req)
{
	struct authz_stats *st = &d.a.st;

	ipc_reply_ok(c, req, json_pack(
		"{s:s,s:s,s:I,s:I,s:I,s:I,s:s?,s:I,s:b,s:I,s:o,"
		"s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},s:{s:I,s:I,s:f,s:f},s:s?,s:I,s:I}",
		"prog", "p2p-authz",
		"file", opt.policy,
		"version", (json_int_t)d.a.policy->version,
		"loaded_at", (json_int_t)d.loaded_at,
		"reloads", (json_int_t)d.reloads,
		"refused", (json_int_t)d.refused,
		"last_error", d.last_error[0] ? d.last_error : NULL,
		"map_version", (json_int_t)mapwatch_version(d.watch),
		"map_ready", d.a.map_ready,
		"clients", (json_int_t)json_object_size(d.a.clients),
		"providers", keystore_status(d.a.keys),
		"checks",
		"total", (json_int_t)st->checks, "allow", (json_int_t)st->allow,
		"bad_path", (json_int_t)st->bad_path, "unauthorized", (json_int_t)st->unauthorized,
		"forbidden", (json_int_t)st->forbidden, "unavailable", (json_int_t)st->unavailable,
		"cached", (json_int_t)st->cached, "waited", (json_int_t)d.waits,
		"cache",
		"entries", (json_int_t)dcache_size(d.a.cache), "max", (json_int_t)opt.cache_entries,
		"cached_us", avg_us(st->ns_cached, st->n_cached),
		"uncached_us", avg_us(st->ns_uncached, st->n_uncached),
		"assertion_kid", d.a.signer ? signer_kid(d.a.signer) : NULL,
		"connections", (json_int_t)ipc_server_nconns(d.ipc),
		"resources", (json_int_t)d.a.policy->nresources));
}

/* The connection's state, made on first use; NULL when out of memory. */
static struct conn_state *conn_state_of(struct ipc_conn *c)
{
	struct conn_state *cs = ipc_conn_data(c);

	if (cs)
		return cs;
	cs = calloc(1, sizeof *cs);
	if (!cs || !(cs->queue = json_array())) {
		free(cs);
		return NULL;
	}
	ipc_conn_set_data(c, cs);
	return cs;
}

/* watch: this connection hears of every change that can change a decision
 * ({"id":ID,"event":"changed","generation":N}), so that a proxy may apply
 * a decision again (reuse_ms) until then. */
static void op_watch(struct ipc_conn *c, json_t *req)
{
	struct conn_state *cs = conn_state_of(c);

	if (!cs) {
		ipc_reply_error(c, req, "out of memory");
		return;
	}
	if (cs->watch_id) {
		ipc_reply_error(c, req, "this connection is already watching");
		return;
	}
	cs->watch_id = json_incref(json_object_get(req, "id"));
	ipc_reply_ok(c, req, json_pack("{s:I}", "generation", (json_int_t)d.a.generation));
}

static void notify_one(struct ipc_conn *c, void *arg)
{
	struct conn_state *cs = ipc_conn_data(c);
	json_t *event;

	(void)arg;
	if (!cs || !cs->watch_id)
		return;
	event = json_pack("{s:O,s:s,s:I}", "id", cs->watch_id, "event", "changed", "generation",
			  (json_int_t)d.a.generation);
	/* a watcher that cannot be told is closed: it must not go on reusing */
	if (!event || ipc_send(c, event) < 0)
		ipc_conn_close(c);
	json_decref(event);
}

static void notify_watchers(void)
{
	if (d.ipc)
		ipc_server_foreach(d.ipc, notify_one, NULL);
}

/* Something a decision depends on changed: a new generation, told. */
static void decisions_changed(void)
{
	authz_changed(&d.a);
	notify_watchers();
}

/* 1 when a key set changed since last asked (then told as above). */
static int keys_changed(void)
{
	if (!keystore_changed(d.a.keys))
		return 0;
	decisions_changed();
	return 1;
}

/* Answer REQ; 0, or -1 when it has to wait (only when MAY_WAIT). */
static int handle(struct ipc_conn *c, const char *op, json_t *req, int may_wait)
{
	if (strcmp(op, "check") == 0)
		return try_check(c, req, may_wait);
	if (strcmp(op, "watch") == 0)
		op_watch(c, req);
	else if (strcmp(op, "status") == 0)
		op_status(c, req);
	else if (strcmp(op, "jwks") == 0)
		ipc_reply_ok(c, req, d.a.signer ? signer_jwks(d.a.signer) : json_pack("{s:[]}", "keys"));
	else
		ipc_reply_error(c, req, "unknown op '%s'", op);
	return 0;
}

/* Answer what a connection holds, in order, up to one that must wait.
 * Once nothing is held, the connection may close (releasing it can free
 * it, and CS with it: nothing is touched after). */
static void drain(struct ipc_conn *c, void *arg)
{
	struct conn_state *cs = ipc_conn_data(c);

	if (!cs || !json_array_size(cs->queue))
		return;
	for (int first = 1; json_array_size(cs->queue); first = 0) {
		json_t *req = json_array_get(cs->queue, 0);

		/* after a fetch (ARG) the first has waited for it; those behind
		 * it, or any after a reload, may wait (again) */
		if (handle(c, json_string_value(json_object_get(req, "op")), req, !(first && arg)) < 0)
			return;
		json_array_remove(cs->queue, 0);
	}
	ipc_conn_release(c);
}

static void on_request(struct ipc_conn *c, const char *op, json_t *req, void *arg)
{
	struct conn_state *cs = ipc_conn_data(c);

	(void)arg;
	if (cs && json_array_size(cs->queue)) {
		json_array_append(cs->queue, req);
		return;
	}
	if (handle(c, op, req, 1) == 0)
		return;
	if (!(cs = conn_state_of(c))) {
		ipc_reply_error(c, req, "out of memory");
		return;
	}
	d.waits++;
	json_array_append(cs->queue, req);
	ipc_conn_hold(c); /* a client that stops sending still gets its answer */
}

static void on_close(struct ipc_conn *c, void *arg)
{
	struct conn_state *cs = ipc_conn_data(c);

	(void)arg;
	if (!cs)
		return;
	json_decref(cs->queue);
	json_decref(cs->watch_id);
	free(cs);
}

/* A fetch ended: the held requests can be answered now. */
static void on_keys(struct keystore *ks, struct keysource *src, void *arg)
{
	(void)ks;
	(void)src;
	(void)arg;
	keys_changed();
	ipc_server_foreach(d.ipc, drain, (void *)"after a fetch");
}

/* ---- the map ---- */

static void on_map(struct mapwatch *w, void *arg)
{
	json_t *clients = mapwatch_section(w, "client"), *resources = mapwatch_section(w, "resource");
	const char *name;
	json_t *v;

	(void)arg;
	authz_set_map(&d.a, clients, resources); /* a new generation */
	notify_watchers();
	for (size_t i = 0; i < d.a.policy->nresources; i++)
		if (!json_object_get(resources, d.a.policy->resources[i].name))
			log_warning("policy names resource %s, which the map (version %lld) lacks",
				    d.a.policy->resources[i].name, (long long)mapwatch_version(w));
	json_object_foreach(resources, name, v)
		if (!policy_resource(d.a.policy, name))
			log_debug("resource %s of the map is not in the policy: denied", name);
	log_info("map version %lld: %zu clients, %zu resources", (long long)mapwatch_version(w),
		 json_object_size(clients), json_object_size(resources));
	json_decref(clients);
	json_decref(resources);
}

/* ---- setup ---- */

static void on_sighup(struct loop *loop, int signo, void *arg)
{
	(void)loop;
	(void)signo;
	(void)arg;
	reload("SIGHUP");
}

static void on_sigterm(struct loop *loop, int signo, void *arg)
{
	(void)arg;
	log_info("exiting on signal %d", signo);
	loop_stop(loop);
}

static long number(int c, const char *arg, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || !*arg || *end || v < min || v > max) {
		log_error("-%c %s: a number from %ld to %ld", c, arg, min, max);
		log_usage(USAGE);
	}
	return v;
}

static void parse_options(int argc, char **argv)
{
	int c;

	d.a.cfg.skew = SKEW_DEFAULT;
	d.a.cfg.token_max = TOKEN_MAX_DEFAULT;
	d.a.cfg.assertion_lifetime = ASSERTION_LIFETIME_DEFAULT;
	d.a.cfg.assertion_issuer = "p2p-authz";
	while ((c = getopt(argc, argv, "vnd:r:u:m:k:i:A:s:T:c:C:f:")) != -1) {
		switch (c) {
		case 'v': log_set_verbosity(2); break;
		case 'n': opt.check = 1; break;
		case 'd':
			opt.notify_fd = notify_parse_fd(optarg);
			if (opt.notify_fd < 0)
				log_fatal(EXIT_USAGE, "-d %s: not an open file descriptor above 2", optarg);
			break;
		case 'r': opt.rundir = optarg; break;
		case 'u': opt.user = optarg; break;
		case 'm': opt.mapd = optarg; break;
		case 'k': opt.keyfile = optarg; break;
		case 'i': d.a.cfg.assertion_issuer = optarg; break;
		case 'A': d.a.cfg.assertion_lifetime = number(c, optarg, 10, 86400); break;
		case 's': d.a.cfg.skew = number(c, optarg, 0, 3600); break;
		case 'T': d.a.cfg.token_max = (size_t)number(c, optarg, 256, 60000); break;
		case 'c': opt.cache_entries = number(c, optarg, 0, 10000000); break;
		case 'C': opt.cafile = optarg; break;
		case 'f': opt.policy = optarg; break;
		default: log_usage(USAGE);
		}
	}
	if (!opt.policy || optind != argc)
		log_usage(USAGE);
}

static void load_signer(void)
{
	char err[512];

	if (!opt.keyfile)
		return;
	/* -n only reads: it never writes a key, and one still to be made is
	 * no error */
	if (opt.check && access(opt.keyfile, F_OK) < 0 && errno == ENOENT) {
		log_info("assertion key %s: missing; one is made at start", opt.keyfile);
		return;
	}
	d.a.signer = signer_load(opt.keyfile, !opt.check, err, sizeof err);
	if (!d.a.signer)
		log_fatal(EXIT_CONFIG, "assertion key: %s", err);
}

static void setup_loop(void)
{
	char sock[PATH_MAX];
	struct passwd *pw = NULL;

	if (opt.user && !(pw = getpwnam(opt.user)))
		log_fatal(EXIT_CONFIG, "unknown user %s", opt.user);
	if (loop_add_signal(d.loop, SIGHUP, on_sighup, NULL) < 0 ||
	    loop_add_signal(d.loop, SIGTERM, on_sigterm, NULL) < 0 ||
	    loop_add_signal(d.loop, SIGINT, on_sigterm, NULL) < 0)
		log_fatal(EXIT_SYSTEM, "unable to set up signals: %s", strerror(errno));
	if (file_mkdir(opt.rundir, 0755) < 0)
		log_fatal(EXIT_SYSTEM, "unable to create %s: %s", opt.rundir, strerror(errno));
	if (ipc_socket_path(sock, sizeof sock, opt.rundir, "authz") < 0)
		log_fatal(EXIT_USAGE, "-r %s: path too long", opt.rundir);
	d.ipc = ipc_server_new(d.loop, sock, 0660, on_request, on_close, NULL);
	if (!d.ipc)
		log_fatal(EXIT_SYSTEM, "unable to serve %s: %s", sock,
			  errno == EADDRINUSE ? "another p2p-authz is serving it" : strerror(errno));
	if (watch_policy() < 0)
		log_fatal(EXIT_SYSTEM, "unable to watch %s: %s", opt.policy, strerror(errno));
	d.watch = mapwatch_new(d.loop, opt.mapd, on_map, NULL);
	if (!d.watch)
		log_fatal(EXIT_SYSTEM, "unable to follow %s: %s", opt.mapd, strerror(errno));
	if (pw) {
		if (ipc_server_chown(d.ipc, pw->pw_uid, pw->pw_gid) < 0)
			log_fatal(EXIT_SYSTEM, "unable to chown %s: %s", sock, strerror(errno));
		if (privs_drop(pw, NULL, 0) < 0)
			log_fatal(EXIT_SYSTEM, "unable to become user %s: %s", opt.user, strerror(errno));
	}
	log_info("serving %s: policy version %lld, %zu resources%s%s", sock,
		 (long long)d.a.policy->version, d.a.policy->nresources,
		 d.a.signer ? ", assertion key " : ", no assertion key",
		 d.a.signer ? signer_kid(d.a.signer) : "");
}

int main(int argc, char **argv)
{
	struct policy_errors errs = { 0 };

	log_init("p2p-authz");
	parse_options(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if (!opt.check && !(d.loop = loop_new()))
		log_fatal(EXIT_SYSTEM, "unable to create the event loop: %s", strerror(errno));
	d.a.keys = keystore_new(d.loop, opt.cafile, on_keys, NULL);
	d.a.cache = dcache_new((size_t)opt.cache_entries);
	if (!d.a.keys || !d.a.cache)
		log_fatal(EXIT_SYSTEM, "out of memory");
	if (!opt.check && access(opt.policy, F_OK) < 0 && errno == ENOENT) {
		/* A connector set up before its policy: deny everything (what
		 * no policy means) and load the file once it is written. */
		static const char none[] = "{\"resources\":{}}";

		d.a.policy = policy_load(opt.policy, none, sizeof none - 1, &errs);
		snprintf(d.last_error, sizeof d.last_error, "%.400s: missing: every request is denied",
			 opt.policy);
		log_warning("%s: missing: every request is denied until it is written", opt.policy);
	} else {
		d.a.policy = read_policy(&errs);
	}
	if (!d.a.policy) {
		log_errors(&errs);
		policy_errors_clear(&errs);
		keystore_free(d.a.keys);
		dcache_free(d.a.cache);
		loop_free(d.loop);
		return EXIT_CONFIG;
	}
	d.loaded_at = time(NULL);
	load_signer();
	if (opt.check) {
		printf("configuration OK\n");
		goto out;
	}
	setup_loop();
	if (notify_ready(opt.notify_fd) < 0)
		log_warning("unable to signal readiness on fd %d: %s", opt.notify_fd, strerror(errno));
	if (loop_run(d.loop) < 0)
		log_fatal(EXIT_SYSTEM, "event loop failed: %s", strerror(errno));
	ipc_server_free(d.ipc);
	mapwatch_free(d.watch);
	if (d.inotify_fd >= 0)
		close(d.inotify_fd);
out:
	policy_free(d.a.policy);
	keystore_free(d.a.keys);
	dcache_free(d.a.cache);
	signer_free(d.a.signer);
	json_decref(d.a.clients);
	json_decref(d.a.names);
	json_decref(d.a.wildcards);
	loop_free(d.loop);
	return EXIT_OK;
}
