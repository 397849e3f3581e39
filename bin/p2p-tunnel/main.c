/* p2p-tunnel: WireGuard on a TUN device, configured like wg(8) expects:
 * a wg setconf file (-c) and the UAPI socket /var/run/wireguard/IFACE.sock. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "device.h"
#include "file.h"
#include "kernel.h"
#include "key.h"
#include "log.h"
#include "mapfollow.h"
#include "notify.h"
#include "privs.h"
#include "tun.h"

#define USAGE "p2p-tunnel [-v] [-n] [-K | -U] [-d fd] [-u user] [-i iface] [-c wg.conf] [-k keyfile] " \
	      "[-m mapd.sock -H host] [-a addr/len]... [-R prefix]... [-M mtu] [-D uapidir] [-T divisor]"
#define MAX_EXTRA 64

struct options {
	const char *ifname, *config, *uapi_dir, *keyfile, *mapd, *host, *user;
	struct prefix addrs[MAX_EXTRA], routes[MAX_EXTRA];
	size_t naddrs, nroutes;
	unsigned mtu;
	int check;
	int backend;   /* 'K' kernel only, 'U' userspace only, 0 the kernel's where it exists */
};

static struct device dev = { .tun_fd = -1, .udp4 = -1, .udp6 = -1, .mtu = 1420 };
static struct options opt = { .ifname = "p2p0", .uapi_dir = "/var/run/wireguard" };
static struct wg_config loaded;
static int notify_fd = -1;

static int read_config(const char *path, struct wg_config *c)
{
	char err[512];
	char *text = file_read(path, 16u << 20, NULL);
	int rc;

	if (!text) {
		log_error("unable to read %s: %s", path, strerror(errno));
		return -1;
	}
	rc = config_parse(path, text, c, err, sizeof err);
	key_wipe(text, strlen(text));
	free(text);
	if (rc < 0)
		log_error("%s", err);
	return rc;
}

/* The private key from a file (base64, as wg genkey writes it): a secret
 * never travels on the command line. 0, or -1 with the reason logged. */
static int load_private_key(const char *path)
{
	char *text = file_read(path, 4096, NULL), *p, *end;
	uint8_t key[KEY_LEN];
	int rc = 0;

	if (!text) {
		log_error("unable to read %s: %s", path, strerror(errno));
		return -1;
	}
	for (p = text; *p == ' ' || *p == '\t' || *p == '\n'; p++)
		;
	for (end = p + strlen(p); end > p && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t');)
		*--end = '\0';
	if (key_from_base64(key, p) < 0) {
		log_error("%s: not a private key (44 characters of base64)", path);
		rc = -1;
	} else {
		device_set_private_key(&dev, key);
	}
	key_wipe(text, strlen(text));
	free(text);
	key_wipe(key, sizeof key);
	return rc;
}

/* Apply C the way wg syncconf does: device settings first, then the peers
 * it no longer lists are removed and the others updated in place, so their
 * sessions survive. */
static int apply_config(const struct wg_config *c)
{
	const char *peers = c->uapi ? strstr(c->uapi, "public_key=") : NULL;
	size_t device_len = peers ? (size_t)(peers - c->uapi) : c->uapi_len, len, extra = 0;
	char *text, *p;
	int rc;

	for (struct peer *peer = dev.peers; peer; peer = peer->next)
		extra += KEY_HEX_LEN + 32;
	len = c->uapi_len + extra + 1;
	text = malloc(len);
	if (!text)
		return -ENOMEM;
	p = text;
	if (device_len)
		memcpy(p, c->uapi, device_len);
	p += device_len;
	for (struct peer *peer = dev.peers; peer; peer = peer->next) {
		char hex[KEY_HEX_LEN + 1];
		int listed = 0;

		key_to_hex(hex, peer->remote.pub);
		for (size_t i = 0; i < c->npeers; i++)
			if (!strcmp(c->peers[i], hex))
				listed = 1;
		if (!listed)
			p += sprintf(p, "public_key=%s\nremove=true\n", hex);
	}
	if (c->uapi_len > device_len)
		memcpy(p, c->uapi + device_len, c->uapi_len - device_len);
	p += c->uapi_len - device_len;
	rc = uapi_set(&dev, text, (size_t)(p - text));
	key_wipe(text, len);
	free(text);
	return rc;
}

static void on_sighup(struct loop *loop, int signo, void *arg)
{
	struct wg_config c;
	int rc;

	(void)loop;
	(void)signo;
	(void)arg;
	if (!opt.config) {
		log_info("SIGHUP: no configuration file to reload");
		return;
	}
	if (read_config(opt.config, &c) < 0) {
		log_error("%s: refused; keeping the running configuration", opt.config);
		return;
	}
	rc = apply_config(&c);
	if (opt.keyfile && load_private_key(opt.keyfile) < 0)
		log_error("%s: keeping the running private key", opt.keyfile);
	if (rc < 0)
		log_error("%s: applying it failed (%s); the configuration may be partial",
			  opt.config, strerror(-rc));
	else
		log_info("reloaded %s: %zu peers", opt.config, dev.npeers);
	config_free(&loaded);
	loaded = c;
}

static void on_sigterm(struct loop *loop, int signo, void *arg)
{
	(void)arg;
	log_info("exiting on signal %d", signo);
	loop_stop(loop);
}

static void parse_prefix_arg(const char *arg, struct prefix *list, size_t *n, int host_ok)
{
	if (*n == MAX_EXTRA || prefix_parse(arg, &list[*n], 1, host_ok) < 0)
		log_fatal(EXIT_USAGE, "%s: not ADDR/LEN", arg);
	(*n)++;
}

static long number_arg(const char *arg, long min, long max, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || *arg == '\0' || *end || v < min || v > max)
		log_fatal(EXIT_USAGE, "%s from %ld to %ld, not %s", what, min, max, arg);
	return v;
}

static void parse_options(int argc, char **argv)
{
	int c;

	while ((c = getopt(argc, argv, "vnKUd:u:i:c:k:m:H:a:R:M:D:T:")) != -1) {
		switch (c) {
		case 'v': log_set_verbosity(2); break;
		case 'n': opt.check = 1; break;
		case 'K':
		case 'U': opt.backend = c; break;
		case 'd':
			notify_fd = notify_parse_fd(optarg);
			if (notify_fd < 0)
				log_fatal(EXIT_USAGE, "-d %s: not an open file descriptor above 2", optarg);
			break;
		case 'i':
			if (strlen(optarg) == 0 || strlen(optarg) > 15 || strchr(optarg, '/'))
				log_fatal(EXIT_USAGE, "-i %s: not an interface name (1 to 15 characters)", optarg);
			opt.ifname = optarg;
			break;
		case 'c': opt.config = optarg; break;
		case 'k': opt.keyfile = optarg; break;
		case 'm': opt.mapd = optarg; break;
		case 'H': opt.host = optarg; break;
		case 'a': parse_prefix_arg(optarg, opt.addrs, &opt.naddrs, 1); break;
		case 'R': parse_prefix_arg(optarg, opt.routes, &opt.nroutes, 0); break;
		case 'M': opt.mtu = (unsigned)number_arg(optarg, 576, 65535, "-M: an MTU");
			break;
		case 'D': opt.uapi_dir = optarg; break;
		case 'u': opt.user = optarg; break;
		case 'T':
			tunnel_timing_scale((unsigned)number_arg(optarg, 1, 1000, "-T: a divisor (tests only)"));
			break;
		default: log_usage(USAGE);
		}
	}
	if (optind != argc || !opt.mapd != !opt.host)
		log_usage(USAGE);
	if (opt.mapd && opt.config)
		log_fatal(EXIT_USAGE, "-c and -m: the map or a file configures the peers, not both");
}

static void on_map_applied(void)
{
	if (notify_ready(notify_fd) < 0)
		log_warning("unable to signal readiness: %s", strerror(errno));
	notify_fd = -1;
}

static void configure_interface(void)
{
	const char *err = NULL;

	if (tun_up(dev.ifname, dev.mtu) < 0)
		log_fatal(EXIT_SYSTEM, "unable to bring %s up with MTU %u", dev.ifname, dev.mtu);
	for (size_t i = 0; i < opt.naddrs + loaded.naddrs; i++) {
		const struct prefix *p = i < opt.naddrs ? &opt.addrs[i] : &loaded.addrs[i - opt.naddrs];
		char text[PREFIX_STRLEN];

		if (tun_addr(dev.ifname, p, 1, &err) < 0)
			log_fatal(EXIT_SYSTEM, "unable to add %s to %s: %s", prefix_str(p, text),
				  dev.ifname, err);
	}
	for (size_t i = 0; i < opt.nroutes; i++) {
		char text[PREFIX_STRLEN];

		if (tun_route(dev.ifname, &opt.routes[i], 1, &err) < 0)
			log_fatal(EXIT_SYSTEM, "unable to route %s to %s: %s",
				  prefix_str(&opt.routes[i], text), dev.ifname, err);
	}
}



/* The kernel's WireGuard where it exists (or -K demands it), else ours on
 * a TUN device. */
static void open_device(void)
{
	if (opt.backend != 'U') {
		if (kernel_create(dev.ifname) == 0) {
			dev.kernel = 1;
			log_info("%s: the kernel's WireGuard", dev.ifname);
			return;
		}
		if (opt.backend == 'K')
			log_fatal(EXIT_SYSTEM, "-K: unable to create the kernel device %s "
				  "(is the wireguard module loaded?)", dev.ifname);
	}
	dev.tun_fd = tun_open(dev.ifname, &dev.vnet);
	if (dev.tun_fd < 0)
		log_fatal(EXIT_SYSTEM, "unable to create the TUN device %s: %s", dev.ifname,
			  strerror(errno));
	if (loop_add_fd(dev.loop, dev.tun_fd, EPOLLIN, device_on_tun, &dev) < 0)
		log_fatal(EXIT_SYSTEM, "unable to watch %s: %s", dev.ifname, strerror(errno));
	if (udp_bind(&dev, 0) < 0)
		log_fatal(EXIT_SYSTEM, "unable to bind a UDP port: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	int rc;

	log_init("p2p-tunnel");
	parse_options(argc, argv);
	if (wg_crypto_init() < 0)
		log_fatal(EXIT_SYSTEM, "OpenSSL lacks BLAKE2s, HMAC or BLAKE2SMAC");
	if (opt.config && read_config(opt.config, &loaded) < 0)
		return EXIT_CONFIG;
	if (opt.check) {
		printf("configuration OK\n");
		return EXIT_OK;
	}
	if (opt.mtu)
		dev.mtu = opt.mtu;
	else if (loaded.mtu)
		dev.mtu = loaded.mtu;
	snprintf(dev.ifname, sizeof dev.ifname, "%s", opt.ifname);

	signal(SIGPIPE, SIG_IGN);
	dev.loop = loop_new();
	dev.aead = wg_aead_new();
	dev.buf = malloc(MAX_PACKET + 64);
	dev.buf2 = malloc(MAX_PACKET + 64);
	dev.seg = malloc((size_t)MAX_SEGMENTS * (dev.mtu + 64));
	dev.gro.buf = malloc(VNET_HDR_LEN + MAX_PACKET + 64);
	dev.udp_gso = 1;
	if (!dev.loop || !dev.aead || !dev.buf || !dev.buf2 || !dev.seg || !dev.gro.buf)
		log_fatal(EXIT_SYSTEM, "out of memory");
	if (loop_add_signal(dev.loop, SIGHUP, on_sighup, NULL) < 0 ||
	    loop_add_signal(dev.loop, SIGTERM, on_sigterm, NULL) < 0 ||
	    loop_add_signal(dev.loop, SIGINT, on_sigterm, NULL) < 0)
		log_fatal(EXIT_SYSTEM, "unable to set up signals: %s", strerror(errno));

	open_device();
	rc = apply_config(&loaded);
	if (rc < 0)
		log_fatal(EXIT_CONFIG, "%s: %s", opt.config ? opt.config : "configuration", strerror(-rc));
	if (opt.keyfile && load_private_key(opt.keyfile) < 0)
		return EXIT_CONFIG;
	dev.up = 1;
	if (dev.kernel && kernel_push(&dev) < 0)
		log_fatal(EXIT_SYSTEM, "unable to configure the kernel device %s", dev.ifname);
	configure_interface();
	if (opt.mapd && mapfollow_start(&dev, opt.mapd, opt.host, on_map_applied) < 0)
		log_fatal(EXIT_SYSTEM, "unable to follow the map from %s: %s", opt.mapd, strerror(errno));
	if (uapi_listen(&dev, opt.uapi_dir) < 0)
		log_fatal(EXIT_SYSTEM, "unable to serve %s/%s.sock: %s", opt.uapi_dir, dev.ifname,
			  strerror(errno));
	log_info("%s up: UDP port %u, %zu peers, MTU %u%s", dev.ifname, dev.listen_port,
		 dev.npeers, dev.mtu, dev.vnet ? ", TSO/GRO offloads" : "");
	/* From here on only CAP_NET_ADMIN: the TUN device, its addresses and
	 * routes, the kernel device. Key files are read before (-k at
	 * reload must then be readable by the user). */
	if (opt.user) {
		static const cap_value_t keep[] = { CAP_NET_ADMIN };
		struct passwd *pw = getpwnam(opt.user);

		if (!pw)
			log_fatal(EXIT_CONFIG, "unknown user %s", opt.user);
		if (privs_drop(pw, keep, 1) < 0)
			log_fatal(EXIT_SYSTEM, "unable to become user %s with CAP_NET_ADMIN: %s",
				  opt.user, strerror(errno));
	}
	/* Following a map, we are ready once the first one is applied. */
	if (!opt.mapd)
		on_map_applied();
	if (loop_run(dev.loop) < 0)
		log_fatal(EXIT_SYSTEM, "event loop failed: %s", strerror(errno));

	/* Closing the TUN fd removes the interface, its addresses and routes. */
	mapfollow_stop();
	uapi_close(&dev, opt.uapi_dir);
	peer_remove_all(&dev);
	allowedips_free(&dev.aips);
	udp_close(&dev);
	if (dev.kernel) {
		kernel_destroy(dev.ifname);
	} else {
		loop_del_fd(dev.loop, dev.tun_fd);
		close(dev.tun_fd);
	}
	key_wipe(&dev.local, sizeof dev.local);
	config_free(&loaded);
	wg_aead_free(dev.aead);
	free(dev.index);
	free(dev.buf);
	free(dev.buf2);
	free(dev.seg);
	free(dev.gro.buf);
	loop_free(dev.loop);
	return EXIT_OK;
}
