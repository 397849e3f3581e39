/* p2p-dnsd: split DNS for a client. The private zones of the map are
 * answered here and never leave the host; every other name goes through
 * libunbound to the upstreams the host used before (or by recursion). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "dnsd.h"
#include "file.h"
#include "ipc.h"
#include "log.h"
#include "mapwatch.h"
#include "notify.h"
#include "privs.h"

#define USAGE "p2p-dnsd [-v] [-n] [-d fd] [-u user] [-r rundir] [-m mapd.sock] [-l addr[:port]]... " \
	      "[-f upstream[@port]]... [-F resolv.conf] [-R] [-a trust-anchor]"
#define MAX_LISTEN 8

static struct {
	const char *rundir, *mapd, *resolv, *anchor, *user;
	const char *listen[MAX_LISTEN];
	int nlisten, recursion, check, notify_fd;
	json_t *upstreams;
} opt = { .rundir = "/run/p2p", .mapd = "/run/p2p/mapd.sock", .notify_fd = -1 };

static struct {
	struct loop *loop;
	struct zones *zones;
	struct server *server;
	struct forwarder *fwd;
	struct mapwatch *watch;
	struct ipc_server *ipc;
	struct dnsd_stats st;
	json_t *refused;     /* the zones unbound was told to refuse */
	int serving;
} d;

/* "127.0.2.53", "127.0.2.53:5353", "[::1]:53" */
static int parse_listen(const char *text, char *addr, size_t size, uint16_t *port)
{
	struct addr a;

	*port = 53;
	if (endpoint_parse(text, &a, port) == 0 || addr_parse(text, &a) == 0) {
		addr_str(&a, addr);
		(void)size;
		return 0;
	}
	return -1;
}

/* The upstreams of a resolv.conf ("nameserver ADDR" lines). */
static int read_resolv_conf(const char *path, json_t *out)
{
	char *text = file_read(path, 1 << 20, NULL), *line, *save = NULL;

	if (!text) {
		log_error("unable to read %s: %s", path, strerror(errno));
		return -1;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char ns[128];
		struct addr a;

		if (sscanf(line, " nameserver %127s", ns) == 1 && addr_parse(ns, &a) == 0)
			json_array_append_new(out, json_string(ns));
	}
	free(text);
	return 0;
}

/* Forwarding to ourselves would loop: a listen address as an upstream
 * (Tailscale #7655, NetBird #5199). */
static int would_loop(json_t *upstreams)
{
	size_t i;
	json_t *v;

	json_array_foreach(upstreams, i, v) {
		char up[128], *at;
		uint16_t port = 53;

		snprintf(up, sizeof up, "%s", json_string_value(v));
		if ((at = strchr(up, '@'))) {
			*at = '\0';
			port = (uint16_t)atoi(at + 1);
		}
		for (int k = 0; k < opt.nlisten; k++) {
			char addr[ADDR_STRLEN];
			uint16_t lport;

			if (parse_listen(opt.listen[k], addr, sizeof addr, &lport) == 0 &&
			    !strcmp(addr, up) && lport == port) {
				log_error("upstream %s is one of our own listen addresses: "
					  "forwarding would loop", json_string_value(v));
				return 1;
			}
		}
	}
	return 0;
}

static void make_forwarder(void)
{
	char err[512];
	json_t *refuse = zones_list(d.zones);
	struct forwarder *f;

	if (d.refused && json_equal(d.refused, refuse) && d.fwd) {
		json_decref(refuse);
		return;
	}
	f = forwarder_new(d.loop, opt.upstreams, opt.recursion, opt.anchor, refuse, err, sizeof err);
	if (!f) {
		log_error("%s; %s", err, d.fwd ? "keeping the previous resolver" : "forwarding nothing");
		json_decref(refuse);
		return;
	}
	forwarder_free(d.fwd);
	d.fwd = f;
	server_set_forwarder(d.server, f);
	json_decref(d.refused);
	d.refused = refuse;
}

static void start_serving(void)
{
	for (int i = 0; i < opt.nlisten; i++) {
		char addr[ADDR_STRLEN];
		uint16_t port;

		parse_listen(opt.listen[i], addr, sizeof addr, &port);
		if (server_listen(d.server, addr, port) < 0)
			log_fatal(EXIT_SYSTEM, "unable to listen on %s port %u: %s", addr, port,
				  strerror(errno));
		log_info("answering on %s port %u (UDP and TCP)", addr, port);
	}
	d.serving = 1;
	if (notify_ready(opt.notify_fd) < 0)
		log_warning("unable to signal readiness: %s", strerror(errno));
}

/* Each map version: new private zones, and unbound told to refuse them.
 * Nothing is answered before the first map: until then we would not know
 * which names must stay private. */
static void on_map(struct mapwatch *w, void *arg)
{
	json_t *resources = mapwatch_section(w, "resource");

	(void)arg;
	zones_load(d.zones, mapwatch_settings(w), resources, mapwatch_version(w));
	json_decref(resources);
	make_forwarder();
	log_info("map version %lld: %zu private names in %zu zones",
		 (long long)mapwatch_version(w), zones_count_names(d.zones), json_array_size(d.refused));
	if (!d.serving)
		start_serving();
}

static void on_request(struct ipc_conn *c, const char *op, json_t *req, void *arg)
{
	(void)arg;
	if (strcmp(op, "status")) {
		ipc_reply_error(c, req, "unknown op '%s'", op);
		return;
	}
	ipc_reply_ok(c, req, json_pack("{s:s,s:I,s:b,s:O,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
		"prog", "p2p-dnsd",
		"map_version", (json_int_t)mapwatch_version(d.watch),
		"serving", d.serving,
		"zones", d.refused ? d.refused : json_null(),
		"queries", (json_int_t)d.st.queries,
		"private", (json_int_t)d.st.private_answers,
		"forwarded", (json_int_t)d.st.forwarded,
		"nxdomain", (json_int_t)d.st.nxdomain,
		"servfail", (json_int_t)d.st.servfail,
		"formerr", (json_int_t)d.st.formerr,
		"dropped", (json_int_t)d.st.dropped,
		"tcp_connections", (json_int_t)server_tcp_connections(d.server),
		"pending", (json_int_t)(d.fwd ? forwarder_pending(d.fwd) : 0)));
}

static void on_sighup(struct loop *loop, int signo, void *arg)
{
	json_t *fresh = json_array();

	(void)loop;
	(void)signo;
	(void)arg;
	if (opt.resolv && read_resolv_conf(opt.resolv, fresh) < 0) {
		json_decref(fresh);
		return;
	}
	if (opt.resolv) {
		json_array_clear(opt.upstreams);
		json_array_extend(opt.upstreams, fresh);
	}
	json_decref(fresh);
	json_decref(d.refused);
	d.refused = NULL;
	make_forwarder();
	log_info("SIGHUP: resolver rebuilt with %zu upstreams", json_array_size(opt.upstreams));
}

static void on_sigterm(struct loop *loop, int signo, void *arg)
{
	(void)arg;
	log_info("exiting on signal %d", signo);
	loop_stop(loop);
}

/* From here on, as -u's user with CAP_NET_BIND_SERVICE alone: port 53 is
 * bound only once the first map is in (and again when the map moves the
 * overlay DNS address); libunbound reads only what is world-readable (-F,
 * -a) and sends from unprivileged ports. */
static void drop_privileges(void)
{
	static const cap_value_t keep[] = { CAP_NET_BIND_SERVICE };
	struct passwd *pw = getpwnam(opt.user);

	if (!pw)
		log_fatal(EXIT_CONFIG, "unknown user %s", opt.user);
	if (ipc_server_chown(d.ipc, pw->pw_uid, pw->pw_gid) < 0)
		log_fatal(EXIT_SYSTEM, "unable to chown %s/dnsd.sock: %s", opt.rundir, strerror(errno));
	if (privs_drop(pw, keep, 1) < 0)
		log_fatal(EXIT_SYSTEM, "unable to become user %s with CAP_NET_BIND_SERVICE: %s",
			  opt.user, strerror(errno));
}

static void parse_options(int argc, char **argv)
{
	int c;

	opt.upstreams = json_array();
	while ((c = getopt(argc, argv, "vnd:u:r:m:l:f:F:Ra:")) != -1) {
		switch (c) {
		case 'v': log_set_verbosity(2); break;
		case 'n': opt.check = 1; break;
		case 'd':
			opt.notify_fd = notify_parse_fd(optarg);
			if (opt.notify_fd < 0)
				log_fatal(EXIT_USAGE, "-d %s: not an open file descriptor above 2", optarg);
			break;
		case 'u': opt.user = optarg; break;
		case 'r': opt.rundir = optarg; break;
		case 'm': opt.mapd = optarg; break;
		case 'l': {
			char addr[ADDR_STRLEN];
			uint16_t port;

			if (opt.nlisten == MAX_LISTEN || parse_listen(optarg, addr, sizeof addr, &port) < 0)
				log_fatal(EXIT_USAGE, "-l %s: not ADDR or ADDR:PORT", optarg);
			opt.listen[opt.nlisten++] = optarg;
			break;
		}
		case 'f': {
			struct addr a;
			char up[128], *at;

			snprintf(up, sizeof up, "%s", optarg);
			if ((at = strchr(up, '@')))
				*at = '\0';
			if (addr_parse(up, &a) < 0 || (at && (atoi(at + 1) < 1 || atoi(at + 1) > 65535)))
				log_fatal(EXIT_USAGE, "-f %s: not ADDR or ADDR@PORT", optarg);
			json_array_append_new(opt.upstreams, json_string(optarg));
			break;
		}
		case 'F': opt.resolv = optarg; break;
		case 'R': opt.recursion = 1; break;
		case 'a': opt.anchor = optarg; break;
		default: log_usage(USAGE);
		}
	}
	if (optind != argc)
		log_usage(USAGE);
	if (opt.nlisten == 0)
		opt.listen[opt.nlisten++] = "127.0.2.53";
}

int main(int argc, char **argv)
{
	char sock[PATH_MAX];

	log_init("p2p-dnsd");
	parse_options(argc, argv);
	if (opt.resolv && read_resolv_conf(opt.resolv, opt.upstreams) < 0)
		return EXIT_CONFIG;
	if (!opt.recursion && json_array_size(opt.upstreams) == 0)
		log_fatal(EXIT_CONFIG, "no upstream: give -f, a -F file with nameserver lines, or -R");
	if (would_loop(opt.upstreams))
		return EXIT_CONFIG;
	if (opt.check) {
		printf("configuration OK\n");
		json_decref(opt.upstreams);
		return EXIT_OK;
	}
	signal(SIGPIPE, SIG_IGN);
	d.loop = loop_new();
	d.zones = zones_new();
	if (!d.loop || !d.zones || !(d.server = server_new(d.loop, d.zones, &d.st)))
		log_fatal(EXIT_SYSTEM, "out of memory");
	if (loop_add_signal(d.loop, SIGHUP, on_sighup, NULL) < 0 ||
	    loop_add_signal(d.loop, SIGTERM, on_sigterm, NULL) < 0 ||
	    loop_add_signal(d.loop, SIGINT, on_sigterm, NULL) < 0)
		log_fatal(EXIT_SYSTEM, "unable to set up signals: %s", strerror(errno));
	if (file_mkdir(opt.rundir, 0755) < 0 ||
	    ipc_socket_path(sock, sizeof sock, opt.rundir, "dnsd") < 0 ||
	    !(d.ipc = ipc_server_new(d.loop, sock, 0660, on_request, NULL, NULL)))
		log_fatal(EXIT_SYSTEM, "unable to serve %s/dnsd.sock: %s", opt.rundir, strerror(errno));
	if (opt.user)
		drop_privileges();
	d.watch = mapwatch_new(d.loop, opt.mapd, on_map, NULL);
	if (!d.watch)
		log_fatal(EXIT_SYSTEM, "unable to follow %s: %s", opt.mapd, strerror(errno));
	if (loop_run(d.loop) < 0)
		log_fatal(EXIT_SYSTEM, "event loop failed: %s", strerror(errno));
	forwarder_free(d.fwd);
	server_free(d.server);
	mapwatch_free(d.watch);
	ipc_server_free(d.ipc);
	zones_free(d.zones);
	json_decref(d.refused);
	json_decref(opt.upstreams);
	loop_free(d.loop);
	return EXIT_OK;
}
