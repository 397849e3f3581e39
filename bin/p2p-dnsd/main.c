/* p2p-dnsd: split DNS for a client. The private zones of the map are
 * answered here and never leave the host; every other name goes through
 * libunbound to the upstreams the host used before (or by recursion). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
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
	      "[-f upstream[@port]]... [-F resolv.conf] [-R] [-a trust-anchor] [-i iface]"
#define MAX_LISTEN 8

static struct {
	const char *rundir, *mapd, *resolv, *anchor, *user;
	const char *iface;        /* -i: the map's DNS address answers only on it */
	const char *listen[MAX_LISTEN];
	int nlisten, recursion, check, notify_fd;
	json_t *fixed_upstreams;  /* -f, in order, before those of -F */
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
	json_t *upstreams;   /* -f and -F together, as libunbound has them */
	int serving;
	char overlay_dns[ADDR_STRLEN]; /* the map's dns.addr we answer on, or "" */
	char overlay_want[ADDR_STRLEN]; /* ... we would answer on (-i: when IFACE is there) */
	unsigned overlay_ifindex;       /* -i: IFACE's index when it was bound */
} d;

/* -i: how often IFACE is looked at. Bound to a device is bound to its
 * index, and p2p-tunnel makes p2p0 again when it restarts: the map's DNS
 * address is then bound again to the new one. */
#define IFACE_CHECK_MS 1000

/* "127.0.2.53", "127.0.2.53:5353", "[::1]:53". Not a wildcard: a UDP
 * answer must leave from the address the query came to, and a resolver
 * for private names has no business on every interface. */
static int parse_listen(const char *text, struct addr *a, uint16_t *port)
{
	static const uint8_t zero[16];

	static const uint8_t mapped_any[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	*port = 53;
	if (endpoint_parse(text, a, port) < 0 && addr_parse(text, a) < 0)
		return -1;
	if (a->family == AF_INET6 && !memcmp(a->bytes, mapped_any, 16))
		return -1; /* ::ffff:0.0.0.0 is IPv4's wildcard */
	return memcmp(a->bytes, zero, addr_len(a)) ? 0 : -1;
}

/* "ADDR" or "ADDR@PORT", as libunbound takes them (ub_ctx_set_fwd). */
static int parse_upstream(const char *text, struct addr *a, uint16_t *port)
{
	char host[ADDR_STRLEN + 1];
	const char *at = strchr(text, '@');
	size_t n = at ? (size_t)(at - text) : strlen(text);

	*port = 53;
	if (n >= sizeof host)
		return -1;
	memcpy(host, text, n);
	host[n] = '\0';
	if (addr_parse(host, a) < 0)
		return -1;
	if (at) {
		char *end;
		long p;

		if (at[1] < '0' || at[1] > '9') /* strtol would take "+53", " 53" */
			return -1;
		errno = 0;
		p = strtol(at + 1, &end, 10);
		if (errno || *end || p < 1 || p > 65535)
			return -1;
		*port = (uint16_t)p;
	}
	return 0;
}

/* The nameservers of a resolv.conf ("nameserver ADDR" lines), appended to
 * OUT; lines naming no address we can use are skipped with a warning. */
static int read_resolv_conf(const char *path, json_t *out)
{
	char *text = file_read(path, 1 << 20, NULL), *line, *save = NULL;
	unsigned lineno = 0;

	if (!text) {
		log_error("unable to read %s: %s", path, strerror(errno));
		return -1;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char ns[128];
		struct addr a;

		lineno++;
		if (sscanf(line, " nameserver %127s", ns) != 1)
			continue;
		if (addr_parse(ns, &a) == 0)
			json_array_append_new(out, json_string(ns));
		else
			log_warning("%s:%u: nameserver %s is not an IP address: skipped", path, lineno, ns);
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
		struct addr up;
		uint16_t port;

		if (parse_upstream(json_string_value(v), &up, &port) < 0)
			continue;
		for (int k = 0; k < opt.nlisten; k++) {
			struct addr a;
			uint16_t lport;

			if (parse_listen(opt.listen[k], &a, &lport) == 0 && addr_equal(&a, &up) &&
			    lport == port) {
				log_error("upstream %s is one of our own listen addresses: "
					  "forwarding would loop", json_string_value(v));
				return 1;
			}
		}
	}
	return 0;
}

/* Is ADDR:PORT one of the upstreams in use? */
static int is_upstream(const struct addr *a, uint16_t port)
{
	size_t i;
	json_t *v;

	json_array_foreach(d.upstreams, i, v) {
		struct addr up;
		uint16_t up_port;

		if (parse_upstream(json_string_value(v), &up, &up_port) == 0 && addr_equal(&up, a) &&
		    up_port == port)
			return 1;
	}
	return 0;
}

/* The upstreams: -f's, then -F's file as it is now. NULL (said why) when
 * there are none and no -R, or one of them is us. */
static json_t *load_upstreams(void)
{
	json_t *all = json_copy(opt.fixed_upstreams);

	if (!all)
		return NULL;
	if (opt.resolv && read_resolv_conf(opt.resolv, all) < 0)
		goto refused;
	if (!opt.recursion && json_array_size(all) == 0) {
		log_error("no upstream: give -f, a -F file with nameserver lines, or -R");
		goto refused;
	}
	if (would_loop(all))
		goto refused;
	return all;
refused:
	json_decref(all);
	return NULL;
}

/* A resolver for the upstreams and the zones as they are now, in place of
 * the one there; -1 (the old one kept, said why) when it cannot be made. */
static int make_forwarder(void)
{
	char err[512];
	json_t *refuse = zones_list(d.zones);
	struct forwarder *f;

	if (d.refused && json_equal(d.refused, refuse) && d.fwd) {
		json_decref(refuse);
		return 0;
	}
	f = forwarder_new(d.loop, d.upstreams, opt.recursion, opt.anchor, refuse, err, sizeof err);
	if (!f) {
		log_error("%s; %s", err, d.fwd ? "keeping the previous resolver" : "forwarding nothing");
		json_decref(refuse);
		return -1;
	}
	forwarder_free(d.fwd);
	d.fwd = f;
	server_set_forwarder(d.server, f);
	json_decref(d.refused);
	d.refused = refuse;
	return 0;
}

static void start_serving(void)
{
	for (int i = 0; i < opt.nlisten; i++) {
		char addr[ADDR_STRLEN];
		struct addr a;
		uint16_t port;

		parse_listen(opt.listen[i], &a, &port);
		addr_str(&a, addr);
		if (server_listen(d.server, addr, port, NULL) < 0)
			log_fatal(EXIT_SYSTEM, "unable to listen on %s port %u: %s", addr, port,
				  strerror(errno));
		log_info("answering on %s port %u (UDP and TCP)", addr, port);
	}
	d.serving = 1;
	if (notify_ready(opt.notify_fd) < 0)
		log_warning("unable to signal readiness: %s", strerror(errno));
}

/* -i: the map's DNS address bound again when IFACE is made again (another
 * index), or bound once IFACE is there. */
static void on_iface_check(struct loop *loop, void *arg)
{
	unsigned idx = if_nametoindex(opt.iface);

	(void)arg;
	if (d.overlay_want[0] && idx && (!d.overlay_dns[0] || idx != d.overlay_ifindex)) {
		if (d.overlay_dns[0])
			server_unlisten(d.server, d.overlay_dns, 53);
		d.overlay_dns[0] = '\0';
		if (server_listen(d.server, d.overlay_want, 53, opt.iface) == 0) {
			snprintf(d.overlay_dns, sizeof d.overlay_dns, "%s", d.overlay_want);
			d.overlay_ifindex = idx;
			log_info("answering on %s port 53 on %s (the interface is there again)", d.overlay_dns,
				 opt.iface);
		}
	}
	if (!loop_timer_add(loop, IFACE_CHECK_MS, on_iface_check, NULL))
		log_error("out of memory: %s is looked at no more", opt.iface);
}

/* The map's overlay DNS address (dns.addr), port 53, besides -l's: what
 * the clients' tunnels put on their interface. Bound with IP_FREEBIND, so
 * before the address is there and across tunnel restarts; followed when
 * the map moves it. A failure (no CAP_NET_BIND_SERVICE, say) is logged,
 * and -l's addresses still answer. */
static void follow_overlay_dns(json_t *settings)
{
	const char *text = json_string_value(json_object_get(json_object_get(settings, "dns"), "addr"));
	char want[ADDR_STRLEN] = "";
	struct addr a;

	if (text && addr_parse(text, &a) == 0)
		addr_str(&a, want);
	if (!strcmp(want, d.overlay_dns))
		return;
	if (d.overlay_dns[0]) {
		server_unlisten(d.server, d.overlay_dns, 53);
		log_info("no longer answering on %s port 53 (the map's DNS address moved)", d.overlay_dns);
	}
	d.overlay_dns[0] = '\0';
	d.overlay_want[0] = '\0';
	if (!want[0])
		return;
	for (int i = 0; i < opt.nlisten; i++) {
		struct addr l;
		uint16_t port;

		if (parse_listen(opt.listen[i], &l, &port) == 0 && addr_equal(&l, &a) && port == 53)
			return; /* -l has it already */
	}
	if (is_upstream(&a, 53)) {
		log_error("the map's DNS address %s port 53 is one of our upstreams: answering there "
			  "would loop; not answering there", want);
		return;
	}
	snprintf(d.overlay_want, sizeof d.overlay_want, "%s", want);
	if (server_listen(d.server, want, 53, opt.iface) < 0) {
		log_error("unable to answer on the map's DNS address %s port 53: %s%s", want, strerror(errno),
			  opt.iface ? " (tried again every second)" : "");
		return;
	}
	if (opt.iface)
		d.overlay_ifindex = if_nametoindex(opt.iface);
	snprintf(d.overlay_dns, sizeof d.overlay_dns, "%s", want);
	log_info("answering on %s port 53 (UDP and TCP), the map's DNS address", want);
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
	(void)make_forwarder(); /* on failure the zones are still answered here */
	{
		json_t *zones = zones_list(d.zones);

		log_info("map version %lld: %zu private names in %zu zones",
			 (long long)mapwatch_version(w), zones_count_names(d.zones), json_array_size(zones));
		json_decref(zones);
	}
	if (!d.serving)
		start_serving();
	follow_overlay_dns(mapwatch_settings(w));
}

static void on_request(struct ipc_conn *c, const char *op, json_t *req, void *arg)
{
	(void)arg;
	if (strcmp(op, "status")) {
		ipc_reply_error(c, req, "unknown op '%s'", op);
		return;
	}
	ipc_reply_ok(c, req, json_pack("{s:s,s:I,s:b,s:s,s:O,s:O,s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
		"prog", "p2p-dnsd",
		"map_version", (json_int_t)mapwatch_version(d.watch),
		"serving", d.serving,
		"overlay_dns", d.overlay_dns,
		"zones", d.refused ? d.refused : json_null(),
		"upstreams", d.upstreams,
		"recursion", opt.recursion,
		"dnssec", opt.anchor != NULL,
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

/* -F's file again (p2p-dns-capture rewrites it when the host's DNS
 * changes). A file that leaves no upstream or names us is refused and the
 * resolver in place kept, as at start. */
static void on_sighup(struct loop *loop, int signo, void *arg)
{
	json_t *fresh = load_upstreams();

	(void)loop;
	(void)signo;
	(void)arg;
	if (!fresh) {
		log_error("SIGHUP: keeping the previous %zu upstreams", json_array_size(d.upstreams));
		return;
	}
	{
		json_t *old = d.upstreams, *old_refused = d.refused;

		d.upstreams = fresh;
		d.refused = NULL; /* rebuild even when the zones are the same */
		if (make_forwarder() < 0) {
			d.upstreams = old;
			d.refused = old_refused;
			json_decref(fresh);
			log_error("SIGHUP: keeping the previous %zu upstreams", json_array_size(old));
			return;
		}
		json_decref(old);
		json_decref(old_refused);
	}
	log_info("SIGHUP: resolver rebuilt with %zu upstreams", json_array_size(d.upstreams));
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

/* What -n can check beyond the upstreams: the trust anchor loads (in a
 * resolver of its own, so a bad line is named now, not at the first map),
 * and -u's user exists. */
static int check_files(void)
{
	char err[512];
	json_t *none = json_array();
	struct loop *probe_loop = loop_new();
	struct forwarder *f = NULL;
	int ok = 1;

	if (opt.user && !getpwnam(opt.user)) {
		log_error("-u %s: no such user", opt.user);
		ok = 0;
	}
	if (opt.anchor && ok) {
		if (!none || !probe_loop) {
			log_error("out of memory");
			ok = 0;
		} else if (!(f = forwarder_new(probe_loop, d.upstreams, opt.recursion, opt.anchor,
					       none, err, sizeof err))) {
			log_error("%s", err);
			ok = 0;
		}
	}
	forwarder_free(f);
	if (probe_loop)
		loop_free(probe_loop);
	json_decref(none);
	return ok ? 0 : -1;
}

static void parse_options(int argc, char **argv)
{
	int c;

	opt.fixed_upstreams = json_array();
	while ((c = getopt(argc, argv, "vnd:u:r:m:l:f:F:Ra:i:")) != -1) {
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
			struct addr a;
			uint16_t port;

			if (opt.nlisten == MAX_LISTEN)
				log_fatal(EXIT_USAGE, "-l %s: at most %d listen addresses", optarg, MAX_LISTEN);
			if (parse_listen(optarg, &a, &port) < 0)
				log_fatal(EXIT_USAGE, "-l %s: not ADDR or ADDR:PORT (and not a wildcard address)",
					  optarg);
			opt.listen[opt.nlisten++] = optarg;
			break;
		}
		case 'f': {
			struct addr a;
			uint16_t port;

			if (parse_upstream(optarg, &a, &port) < 0)
				log_fatal(EXIT_USAGE, "-f %s: not ADDR or ADDR@PORT", optarg);
			json_array_append_new(opt.fixed_upstreams, json_string(optarg));
			break;
		}
		case 'F': opt.resolv = optarg; break;
		case 'R': opt.recursion = 1; break;
		case 'a': opt.anchor = optarg; break;
		case 'i':
			if (!optarg[0] || strlen(optarg) >= IFNAMSIZ || strchr(optarg, '/'))
				log_fatal(EXIT_USAGE, "-i %s: not an interface name", optarg);
			opt.iface = optarg;
			break;
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
	if (!(d.upstreams = load_upstreams()) || check_files() < 0)
		return EXIT_CONFIG;
	if (opt.check) {
		printf("configuration OK\n");
		json_decref(d.upstreams);
		json_decref(opt.fixed_upstreams);
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
	if (opt.iface && !loop_timer_add(d.loop, IFACE_CHECK_MS, on_iface_check, NULL))
		log_fatal(EXIT_SYSTEM, "out of memory");
	if (loop_run(d.loop) < 0)
		log_fatal(EXIT_SYSTEM, "event loop failed: %s", strerror(errno));
	forwarder_free(d.fwd);
	server_free(d.server);
	mapwatch_free(d.watch);
	ipc_server_free(d.ipc);
	zones_free(d.zones);
	json_decref(d.refused);
	json_decref(d.upstreams);
	json_decref(opt.fixed_upstreams);
	loop_free(d.loop);
	return EXIT_OK;
}
