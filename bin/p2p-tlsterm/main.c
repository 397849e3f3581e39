/* p2p-tlsterm: the connector's reverse proxy. It listens only on the
 * overlay addresses of the resources this connector serves (from the map,
 * through p2p-mapd), terminates TLS with the certificate the SNI names,
 * asks p2p-authz about every request, forwards the allowed ones to their
 * upstream, and sends p2p-audit a record of each; TCP resources are
 * checked when they open and recorded when they close. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "ipc.h"
#include "log.h"
#include "mapwatch.h"
#include "notify.h"
#include "privs.h"
#include "tlsterm.h"

#define USAGE "p2p-tlsterm [-v] [-n] [-k] [-F] [-d fd] [-u user] [-r rundir] [-m mapd.sock] " \
	      "[-a authz.sock] [-A audit.sock] [-c connector] [-i iface] [-p https-port] " \
	      "[-P http-port] [-K cafile] [-o name=value]... -C certdir"
#define SWEEP_MS 250
#define RELOAD_SETTLE_MS 200
#define DRAIN_MS 10000
/* at exit, the time p2p-audit has to take and acknowledge the last records */
#define FINISH_MS 3000



static struct {
	const char *rundir, *mapd, *authz, *audit, *connector, *certdir, *user, *cafile;
	int check, notify_fd, h2;
} opt = { .rundir = "/run/p2p", .notify_fd = -1, .h2 = 1 };

static struct {
	struct ipc_server *ipc;
	struct mapwatch *watch;
	int inotify_fd, ready, draining;
	struct loop_timer *reload_timer;
	uint64_t drain_until;
	time_t started;
} d = { .inotify_fd = -1 };

/* ---- status and reload ---- */

static json_t *certificates(void)
{
	json_t *a = json_array();
	struct cert_info ci;
	time_t now = time(NULL);

	for (size_t i = 0; certs_info(tls_certs(), i, &ci) == 0; i++) {
		char exp[32];
		struct tm tm;

		gmtime_r(&ci.not_after, &tm);
		strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s,s:I}", "file", ci.file, "names",
						   ci.names, "type", ci.type, "not_after", exp,
						   "days_left", (json_int_t)((ci.not_after - now) / 86400)));
	}
	return a;
}

static json_t *status(void)
{
	const struct stats *s = &tt.st;

	return json_pack("{s:s,s:I,s:b,s:o,s:{s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},"
			 "s:{s:I,s:I,s:I,s:I},s:{s:b,s:I,s:I,s:b,s:I,s:I},s:{s:b,s:I,s:I,s:I,s:I,s:b},"
			 "s:o,s:I,s:I,s:I,s:I}",
		"prog", "p2p-tlsterm",
		"map_version", (json_int_t)mapwatch_version(d.watch),
		"draining", d.draining,
		"listeners", listen_status(),
		"connections", "open", (json_int_t)clients_open(), "accepted", (json_int_t)s->accepted,
			"handshakes", (json_int_t)s->handshakes, "handshake_failures",
			(json_int_t)s->handshake_failures,
		"requests", "total", (json_int_t)s->requests, "h2", (json_int_t)s->h2_requests,
			"1xx", (json_int_t)s->status[1], "2xx", (json_int_t)s->status[2],
			"3xx", (json_int_t)s->status[3], "4xx", (json_int_t)s->status[4],
			"5xx", (json_int_t)s->status[5], "denied", (json_int_t)s->denied,
			"refused", (json_int_t)s->refused_parse, "timeouts", (json_int_t)s->timeouts,
			"tcp_sessions", (json_int_t)s->tcp_sessions,
		"upstream", "connects", (json_int_t)s->upstream_connects, "reused",
			(json_int_t)s->upstream_reused, "failures", (json_int_t)s->upstream_failures,
			"idle", (json_int_t)upstreams_idle(),
		"authz", "connected", jsonl_connected(tt.authz), "pending", (json_int_t)jsonl_pending(tt.authz),
			"unavailable", (json_int_t)s->authz_unavailable, "watching", authz_watching(),
			"reused", (json_int_t)s->authz_reused, "reuse_entries", (json_int_t)authz_reuse_entries(),
		"audit", "connected", jsonl_connected(tt.audit), "pending", (json_int_t)jsonl_pending(tt.audit),
			"records", (json_int_t)s->audit_records, "failures", (json_int_t)s->audit_failures,
			"unavailable", (json_int_t)s->audit_unavailable, "fail_open", tt.o.audit_fail_open,
		"certificates", certificates(),
		"certificate_reloads", (json_int_t)tls_reloads(),
		"bytes_in", (json_int_t)s->bytes_in, "bytes_out", (json_int_t)s->bytes_out,
		"started", (json_int_t)d.started);
}

static void on_request(struct ipc_conn *c, const char *op, json_t *req, void *arg)
{
	(void)arg;
	if (!strcmp(op, "status")) {
		ipc_reply_ok(c, req, status());
	} else if (!strcmp(op, "reload")) {
		if (tls_reload() < 0)
			ipc_reply_error(c, req, "unable to read %s; the certificates loaded before stay", opt.certdir);
		else
			ipc_reply_ok(c, req, json_pack("{s:I,s:o}", "loaded",
						       (json_int_t)certs_count(tls_certs()), "certificates",
						       certificates()));
	} else {
		ipc_reply_error(c, req, "unknown op '%s'", op);
	}
}

/* ---- the certificate directory ---- */

static void reload_now(struct loop *loop, void *arg)
{
	(void)loop;
	(void)arg;
	d.reload_timer = NULL;
	tls_reload();
}

static void reload_soon(void)
{
	if (!d.reload_timer)
		d.reload_timer = loop_timer_add(tt.loop, RELOAD_SETTLE_MS, reload_now, NULL);
}

/* A file of the directory was written, renamed in or removed: read it
 * again once the writer is done (a certificate and its key come in two
 * writes; a key that does not match yet keeps the old pair until then). */
static void on_inotify(struct loop *loop, int fd, uint32_t events, void *arg)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	(void)loop;
	(void)events;
	(void)arg;
	while (read(fd, buf, sizeof buf) > 0)
		;
	reload_soon();
}

static void watch_certdir(void)
{
	d.inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d.inotify_fd < 0 ||
	    inotify_add_watch(d.inotify_fd, opt.certdir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
							  IN_DELETE | IN_CREATE | IN_ATTRIB) < 0 ||
	    loop_add_fd(tt.loop, d.inotify_fd, EPOLLIN, on_inotify, NULL) < 0) {
		log_warning("unable to watch %s (%s): certificates are read again on SIGHUP only",
			    opt.certdir, strerror(errno));
		if (d.inotify_fd >= 0)
			close(d.inotify_fd);
		d.inotify_fd = -1;
	}
}

/* ---- the map ---- */

static void on_map(struct mapwatch *w, void *arg)
{
	json_t *resources = mapwatch_section(w, "resource");
	struct site *s = site_build(resources, opt.connector, mapwatch_version(w));

	(void)arg;
	json_decref(resources);
	if (!s) {
		log_error("map version %lld: out of memory: keeping the previous one",
			  (long long)mapwatch_version(w));
		return;
	}
	if (opt.connector && !mapwatch_get(w, "connector", opt.connector))
		log_warning("map version %lld: no connector named %s: nothing is served here",
			    (long long)mapwatch_version(w), opt.connector);
	site_free(tt.site);
	tt.site = s;
	log_info("map version %lld: %zu resources served here", (long long)s->version, s->nres);
	if (!d.draining)
		listen_sync();
	if (!d.ready) {
		d.ready = 1;
		if (notify_ready(opt.notify_fd) < 0)
			log_warning("unable to signal readiness: %s", strerror(errno));
	}
}

/* ---- signals and the sweep ---- */

static void on_sweep(struct loop *loop, void *arg)
{
	uint64_t now = loop_now_ms();
	static uint64_t last_listen;

	(void)arg;
	client_sweep(now);
	listen_resume();
	upstream_sweep(now);
	jsonl_sweep(tt.authz, now);
	jsonl_sweep(tt.audit, now);
	if (!d.draining && d.ready && now - last_listen >= 5000) {
		last_listen = now;
		listen_sync();   /* addresses that could not be bound yet */
	}
	/* exit once every connection is done and p2p-audit has every record */
	if (d.draining && ((clients_open() == 0 && jsonl_pending(tt.audit) == 0) || now >= d.drain_until)) {
		if (clients_open())
			log_info("exiting with %zu connections still open", clients_open());
		loop_stop(loop);
		return;
	}
	loop_timer_add(loop, SWEEP_MS, on_sweep, NULL);
}

static void on_sighup(struct loop *loop, int signo, void *arg)
{
	(void)loop;
	(void)signo;
	(void)arg;
	log_info("SIGHUP: reading %s again", opt.certdir);
	tls_reload();
}

/* SIGTERM: stop accepting, let the requests in flight end (10 s at most). */
static void on_sigterm(struct loop *loop, int signo, void *arg)
{
	(void)arg;
	if (d.draining) {
		loop_stop(loop);
		return;
	}
	log_info("signal %d: draining %zu connections", signo, clients_open());
	d.draining = 1;
	tt.draining = 1;
	d.drain_until = loop_now_ms() + DRAIN_MS;
	listen_close_all();
}

/* ---- options ---- */

static int set_option(const char *arg)
{
	static const struct { const char *name; unsigned *ms; } times[] = {
		{ "header_timeout", &tt.o.header_timeout_ms },
		{ "idle_timeout", &tt.o.idle_timeout_ms },
		{ "connect_timeout", &tt.o.connect_timeout_ms },
		{ "response_timeout", &tt.o.response_timeout_ms },
		{ "body_timeout", &tt.o.body_timeout_ms },
		{ "authz_timeout", &tt.o.authz_timeout_ms },
		{ "pool_idle", &tt.o.pool_idle_ms },
	};
	const char *eq = strchr(arg, '=');
	char *end;
	double v;

	if (!eq)
		return -1;
	errno = 0;
	v = strtod(eq + 1, &end);
	if (errno || end == eq + 1 || *end || v < 0 || v > 86400 * 10)
		return -1;
	for (size_t i = 0; i < sizeof times / sizeof times[0]; i++)
		if (strlen(times[i].name) == (size_t)(eq - arg) && !strncmp(arg, times[i].name, (size_t)(eq - arg))) {
			if (v < 0.001)
				return -1;
			*times[i].ms = (unsigned)(v * 1000);
			return 0;
		}
	if (!strncmp(arg, "max_connections=", 16) && v >= 1) {
		tt.o.max_connections = (unsigned)v;
		return 0;
	}
	if (!strncmp(arg, "reuse=", 6) && v <= 1000000) {
		tt.o.reuse_max = (unsigned)v;
		return 0;
	}
	if (!strncmp(arg, "pool_max=", 9)) {
		tt.o.pool_max = (unsigned)v;
		return 0;
	}
	/* at least what a client may send before our SETTINGS (HTTP/2's
	 * initial window), and what an HTTP/2 frame and its head need */
	if (!strncmp(arg, "buffer=", 7) && v >= 65536 && v <= (1 << 24)) {
		tt.o.buffer = (size_t)v;
		return 0;
	}
	if (!strncmp(arg, "h2=", 3) && (v == 0 || v == 1)) {
		opt.h2 = (int)v;
		return 0;
	}
	return -1;
}

static uint16_t parse_port(const char *text, int zero_ok)
{
	char *end;
	long p = strtol(text, &end, 10);

	if (end == text || *end || p < (zero_ok ? 0 : 1) || p > 65535)
		log_fatal(EXIT_USAGE, "%s is not a port", text);
	return (uint16_t)p;
}

static void parse_options(int argc, char **argv)
{
	int c;

	tt.o = (struct options){ .header_timeout_ms = 10000, .idle_timeout_ms = 60000,
				.connect_timeout_ms = 5000, .response_timeout_ms = 60000,
				.body_timeout_ms = 300000, .authz_timeout_ms = 5000,
				.pool_idle_ms = 30000, .max_connections = 20000, .pool_max = 256, .reuse_max = 1024,
				.buffer = 65536, .https_port = 443, .http_port = 80 };
	while ((c = getopt(argc, argv, "vnkFd:u:r:m:a:A:c:i:p:P:K:o:C:")) != -1) {
		switch (c) {
		case 'v': log_set_verbosity(2); break;
		case 'n': opt.check = 1; break;
		case 'k': tt.o.upstream_insecure = 1; break;
		case 'F': tt.o.audit_fail_open = 1; break;
		case 'd':
			opt.notify_fd = notify_parse_fd(optarg);
			if (opt.notify_fd < 0)
				log_fatal(EXIT_USAGE, "-d %s: not an open file descriptor above 2", optarg);
			break;
		case 'u': opt.user = optarg; break;
		case 'r': opt.rundir = optarg; break;
		case 'm': opt.mapd = optarg; break;
		case 'a': opt.authz = optarg; break;
		case 'A': opt.audit = optarg; break;
		case 'c': opt.connector = optarg; break;
		case 'i': tt.o.iface = optarg; break;
		case 'p': tt.o.https_port = parse_port(optarg, 0); break;
		case 'P': tt.o.http_port = parse_port(optarg, 1); break;
		case 'K': opt.cafile = optarg; break;
		case 'o':
			if (set_option(optarg) < 0)
				log_fatal(EXIT_USAGE, "-o %s: unknown option or bad value", optarg);
			break;
		case 'C': opt.certdir = optarg; break;
		default: log_usage(USAGE);
		}
	}
	if (optind != argc || !opt.certdir)
		log_usage(USAGE);
	if (tt.o.iface && strlen(tt.o.iface) >= 16)
		log_fatal(EXIT_USAGE, "-i %s: not an interface name", tt.o.iface);
}

static const char *sock_path(const char *given, const char *name)
{
	static char paths[3][PATH_MAX];
	static int n;

	if (given)
		return given;
	if (ipc_socket_path(paths[n], sizeof paths[n], opt.rundir, name) < 0)
		log_fatal(EXIT_USAGE, "-r %s: too long", opt.rundir);
	return paths[n++];
}

/* From here on as -u's user with CAP_NET_BIND_SERVICE alone: the map can
 * bring a new resource address at any time, and 443 and 80 are below
 * 1024. The certificate directory must be readable by that user. */
static void drop_privileges(void)
{
	static const cap_value_t keep[] = { CAP_NET_BIND_SERVICE };
	struct passwd *pw = getpwnam(opt.user);

	if (!pw)
		log_fatal(EXIT_CONFIG, "unknown user %s", opt.user);
	if (ipc_server_chown(d.ipc, pw->pw_uid, pw->pw_gid) < 0)
		log_fatal(EXIT_SYSTEM, "unable to chown %s/tlsterm.sock: %s", opt.rundir, strerror(errno));
	if (privs_drop(pw, keep, 1) < 0)
		log_fatal(EXIT_SYSTEM, "unable to become user %s with CAP_NET_BIND_SERVICE: %s",
			  opt.user, strerror(errno));
}

static int check_config(void)
{
	struct stat st;

	if (stat(opt.certdir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_error("-C %s: %s", opt.certdir, errno ? strerror(errno) : "not a directory");
		return -1;
	}
	if (opt.user && !getpwnam(opt.user)) {
		log_error("-u %s: no such user", opt.user);
		return -1;
	}
	if (tls_init(opt.certdir, opt.h2, opt.cafile, tt.o.upstream_insecure) < 0)
		return -1;
	return 0;
}

/* Each connection may hold two descriptors (the client's, an upstream's):
 * the soft limit goes up to the hard one, and a limit lower than
 * max_connections needs is said (accepting pauses when it is reached, see
 * listen.c: not an error). */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)tt.o.max_connections * 2 + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warning("unable to read the limit on open files: %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) < 0)
			return;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		log_info("open files are limited to %llu, below the %llu that max_connections=%u may need: "
			 "accepting pauses while none is left", (unsigned long long)rl.rlim_cur,
			 (unsigned long long)want, tt.o.max_connections);
}

int main(int argc, char **argv)
{
	char sock[PATH_MAX];
	size_t unacked;

	log_init("p2p-tlsterm");
	parse_options(argc, argv);
	if (check_config() < 0)
		return EXIT_CONFIG;
	if (opt.check) {
		printf("configuration OK\n");
		tls_shutdown();
		return EXIT_OK;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	buf_pool_size(tt.o.buffer);
	buf_pool_size(32768);                            /* a client's input */
	buf_pool_size(tt.o.buffer + HTTP_HEAD_MAX + 1024); /* and output */
	reuse_init(tt.o.reuse_max);
	d.started = time(NULL);
	if (!(tt.loop = loop_new()))
		log_fatal(EXIT_SYSTEM, "out of memory");
	if (loop_add_signal(tt.loop, SIGHUP, on_sighup, NULL) < 0 ||
	    loop_add_signal(tt.loop, SIGTERM, on_sigterm, NULL) < 0 ||
	    loop_add_signal(tt.loop, SIGINT, on_sigterm, NULL) < 0)
		log_fatal(EXIT_SYSTEM, "unable to set up signals: %s", strerror(errno));
	if (!(tt.authz = jsonl_new(tt.loop, sock_path(opt.authz, "authz"))) ||
	    !(tt.audit = jsonl_new(tt.loop, sock_path(opt.audit, "audit"))))
		log_fatal(EXIT_SYSTEM, "out of memory");
	/* A record goes once its response has; no one waits for it, so the
	 * records made while p2p-audit commits the ones before share one
	 * write and one wakeup of p2p-audit. */
	jsonl_set_batching(tt.audit, 1);
	if (file_mkdir(opt.rundir, 0755) < 0 ||
	    ipc_socket_path(sock, sizeof sock, opt.rundir, "tlsterm") < 0 ||
	    !(d.ipc = ipc_server_new(tt.loop, sock, 0660, on_request, NULL, NULL)))
		log_fatal(EXIT_SYSTEM, "unable to serve %s/tlsterm.sock: %s", opt.rundir, strerror(errno));
	watch_certdir();
	if (opt.user)
		drop_privileges();
	d.watch = mapwatch_new(tt.loop, sock_path(opt.mapd, "mapd"), on_map, NULL);
	if (!d.watch)
		log_fatal(EXIT_SYSTEM, "unable to follow p2p-mapd: %s", strerror(errno));
	loop_timer_add(tt.loop, SWEEP_MS, on_sweep, NULL);
	if (loop_run(tt.loop) < 0)
		log_fatal(EXIT_SYSTEM, "event loop failed: %s", strerror(errno));
	clients_close_all();   /* the connections cut write their records */
	if ((unacked = jsonl_finish(tt.audit, FINISH_MS)))
		log_error("exiting with %zu audit records not acknowledged by p2p-audit", unacked);
	upstreams_close_all();
	listen_close_all();
	mapwatch_free(d.watch);
	ipc_server_free(d.ipc);
	jsonl_free(tt.authz);
	jsonl_free(tt.audit);
	reuse_init(0);
	site_free(tt.site);
	if (d.inotify_fd >= 0)
		close(d.inotify_fd);
	tls_shutdown();
	buf_pool_drain();
	loop_free(tt.loop);
	return EXIT_OK;
}
