/* uapi.c: the WireGuard cross-platform userspace API on
 * /var/run/wireguard/IFACE.sock, byte-compatible with wireguard-go, so that
 * wg(8) drives p2p-tunnel unchanged. "get=1\n\n" answers the device as
 * key=value lines; "set=1\n...\n\n" applies changes. Both end with
 * "errno=N\n\n" (0, or a negative errno as wireguard-go sends). */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "device.h"
#include "file.h"
#include "kernel.h"
#include "key.h"
#include "log.h"

#define UAPI_MAX (16u << 20)

/* ---- get ---- */

struct strbuf {
	char *p;
	size_t len, cap;
	int failed;
};

static void sb_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap ? b->cap * 2 : 1024;
			char *q;

			while (cap - b->len <= (size_t)n)
				cap *= 2;
			q = realloc(b->p, cap);
			if (!q) {
				b->failed = 1;
				return;
			}
			b->p = q;
			b->cap = cap;
		}
	}
}

static void print_aip(const struct prefix *p, void *peer, void *arg)
{
	char text[PREFIX_STRLEN];

	(void)peer;
	sb_printf(arg, "allowed_ip=%s\n", prefix_str(p, text));
}

char *uapi_get(struct device *dev)
{
	struct strbuf b = { 0 };
	char hex[KEY_HEX_LEN + 1];

	sb_printf(&b, "%s", "");
	if (dev->kernel && kernel_refresh(dev) < 0)
		log_warning("unable to read the kernel device %s", dev->ifname);
	if (dev->local.has_key) {
		key_to_hex(hex, dev->local.priv);
		sb_printf(&b, "private_key=%s\n", hex);
		key_wipe(hex, sizeof hex);
	}
	if (dev->udp4 >= 0 || dev->udp6 >= 0 || dev->kernel)
		sb_printf(&b, "listen_port=%u\n", dev->listen_port);
	if (dev->fwmark)
		sb_printf(&b, "fwmark=%u\n", dev->fwmark);
	for (struct peer *p = dev->peers; p; p = p->next) {
		char ep[64];

		key_to_hex(hex, p->remote.pub);
		sb_printf(&b, "public_key=%s\n", hex);
		key_to_hex(hex, p->remote.psk);
		sb_printf(&b, "preshared_key=%s\n", hex);
		key_wipe(hex, sizeof hex);
		sb_printf(&b, "protocol_version=1\n");
		if (p->has_endpoint && endpoint_to_string(&p->endpoint, ep, sizeof ep) == 0)
			sb_printf(&b, "endpoint=%s\n", ep);
		sb_printf(&b, "last_handshake_time_sec=%lld\nlast_handshake_time_nsec=%ld\n",
			  (long long)p->last_handshake.tv_sec, p->last_handshake.tv_nsec);
		sb_printf(&b, "tx_bytes=%llu\nrx_bytes=%llu\n", (unsigned long long)p->tx_bytes,
			  (unsigned long long)p->rx_bytes);
		sb_printf(&b, "persistent_keepalive_interval=%u\n", p->persistent_keepalive);
		allowedips_walk(&dev->aips, p, print_aip, &b);
	}
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* ---- set ---- */

struct set_state {
	struct device *dev;
	struct peer *peer;     /* the peer being configured, or NULL */
	int skip_peer;         /* update_only for a peer that does not exist, or our own key */
	int peer_created;
};

static int parse_u32(const char *v, unsigned long max, unsigned long *out)
{
	char *end;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	*out = strtoul(v, &end, 10);
	return errno || *end || *out > max ? -1 : 0;
}

static int set_device_key(struct set_state *st, const char *key, const char *value)
{
	struct device *dev = st->dev;
	uint8_t k[WG_KEY_LEN];
	unsigned long n;

	if (!strcmp(key, "private_key")) {
		if (key_from_hex(k, value) < 0)
			return -EINVAL;
		device_set_private_key(dev, k);
		key_wipe(k, sizeof k);
		return 0;
	}
	if (!strcmp(key, "listen_port")) {
		if (parse_u32(value, 65535, &n) < 0)
			return -EINVAL;
		if (udp_bind(dev, (uint16_t)n) < 0)
			return -EADDRINUSE;
		return 0;
	}
	if (!strcmp(key, "fwmark")) {
		if (parse_u32(value, UINT32_MAX, &n) < 0)
			return -EINVAL;
		dev->fwmark = (uint32_t)n;
		if (dev->udp4 >= 0 || dev->udp6 >= 0)
			return udp_bind(dev, dev->listen_port) < 0 ? -EADDRINUSE : 0;
		return 0;
	}
	if (!strcmp(key, "replace_peers")) {
		if (strcmp(value, "true"))
			return -EINVAL;
		peer_remove_all(dev);
		return 0;
	}
	return -EINVAL;
}

static int begin_peer(struct set_state *st, const char *value)
{
	uint8_t k[WG_KEY_LEN];

	if (key_from_hex(k, value) < 0)
		return -EINVAL;
	st->skip_peer = 0;
	st->peer_created = 0;
	st->peer = peer_find(st->dev, k);
	/* Our own key as a peer is ignored, as wireguard-go does. */
	if (st->dev->local.has_key && !memcmp(k, st->dev->local.pub, WG_KEY_LEN)) {
		st->skip_peer = 1;
		st->peer = NULL;
		return 0;
	}
	if (!st->peer) {
		st->peer = peer_create(st->dev, k);
		if (!st->peer)
			return -ENOMEM;
		st->peer_created = 1;
	}
	return 0;
}

static int set_peer_key(struct set_state *st, const char *key, const char *value)
{
	struct peer *p = st->peer;
	unsigned long n;
	struct prefix pfx;

	if (st->skip_peer)
		return 0;
	if (!p)
		return -EINVAL;
	if (!strcmp(key, "update_only")) {
		if (strcmp(value, "true"))
			return -EINVAL;
		if (st->peer_created) {
			peer_remove(st->dev, p);
			st->peer = NULL;
			st->skip_peer = 1;
		}
		return 0;
	}
	if (!strcmp(key, "remove")) {
		if (strcmp(value, "true"))
			return -EINVAL;
		peer_remove(st->dev, p);
		st->peer = NULL;
		st->skip_peer = 1;
		return 0;
	}
	if (!strcmp(key, "preshared_key")) {
		uint8_t k[WG_KEY_LEN];

		if (key_from_hex(k, value) < 0)
			return -EINVAL;
		noise_remote_init(&p->remote, &st->dev->local, p->remote.pub, k);
		key_wipe(k, sizeof k);
		return 0;
	}
	if (!strcmp(key, "endpoint")) {
		if (endpoint_from_string(&p->endpoint, value) < 0)
			return -EINVAL;
		p->has_endpoint = 1;
		return 0;
	}
	if (!strcmp(key, "persistent_keepalive_interval")) {
		int was_off = !p->persistent_keepalive;

		if (parse_u32(value, 65535, &n) < 0)
			return -EINVAL;
		p->persistent_keepalive = (uint16_t)n;
		timers_persistent_keepalive_changed(p);
		/* Turning it on sends one at once, as wireguard-go does. */
		if (was_off && n && st->dev->up && !st->dev->kernel)
			device_send_keepalive(p);
		return 0;
	}
	if (!strcmp(key, "replace_allowed_ips")) {
		if (strcmp(value, "true"))
			return -EINVAL;
		allowedips_remove_peer(&st->dev->aips, p);
		return 0;
	}
	if (!strcmp(key, "allowed_ip")) {
		/* A leading '-' removes one prefix (newer wg(8) sends it). */
		int remove = value[0] == '-';

		if (prefix_parse(value + remove, &pfx, 0, 1) < 0)
			return -EINVAL;
		if (remove) {
			allowedips_remove(&st->dev->aips, &pfx, p); /* absent: nothing to do */
			return 0;
		}
		return allowedips_insert(&st->dev->aips, &pfx, p) < 0 ? -ENOMEM : 0;
	}
	if (!strcmp(key, "protocol_version"))
		return strcmp(value, "1") ? -EINVAL : 0;
	return -EINVAL;
}

static int uapi_apply(struct device *dev, const char *text, size_t len);

int uapi_set(struct device *dev, const char *text, size_t len)
{
	int rc = uapi_apply(dev, text, len);

	/* Even a transaction refused half-way changed what came before. */
	if (dev->kernel && dev->up) {
		int pushed = kernel_push(dev);

		if (rc == 0)
			rc = pushed;
	}
	return rc;
}

static int uapi_apply(struct device *dev, const char *text, size_t len)
{
	struct set_state st = { .dev = dev };
	const char *p = text, *end = text + len;
	char line[512];

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *eq, *key, *value;
		int rc;

		if (n == 0)
			break;
		if (n >= sizeof line) {
			log_warning("uapi: line of %zu bytes refused", n);
			return -EINVAL;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p += n + (nl ? 1 : 0);
		eq = strchr(line, '=');
		if (!eq) {
			log_warning("uapi: line without '=' refused");
			return -EPROTO;
		}
		*eq = '\0';
		key = line;
		value = eq + 1;
		if (!strcmp(key, "public_key"))
			rc = begin_peer(&st, value);
		else if (!st.peer && !st.skip_peer)
			rc = set_device_key(&st, key, value);
		else
			rc = set_peer_key(&st, key, value);
		if (rc < 0) {
			log_warning("uapi: set %s: %s", key, strerror(-rc));
			key_wipe(line, sizeof line);
			return rc;
		}
		key_wipe(line, sizeof line);
	}
	return 0;
}

/* ---- the socket ---- */

struct uapi_conn {
	struct device *dev;
	int fd;
	char *in;
	size_t len, cap;
	size_t scanned;   /* bytes already searched for the end of an operation */
};

static struct {
	int fd;
	char path[108];
} uapi = { .fd = -1 };

static void conn_close(struct uapi_conn *c)
{
	loop_del_fd(c->dev->loop, c->fd);
	close(c->fd);
	if (c->in)
		key_wipe(c->in, c->cap);
	free(c->in);
	free(c);
}

/* The socket is non-blocking (the loop reads it); a large answer waits
 * for the reader, a bounded time. */
static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && poll(&pfd, 1, 5000) == 1)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int answer(struct uapi_conn *c, const char *body, int err)
{
	char tail[32];

	if (body && write_all(c->fd, body, strlen(body)) < 0)
		return -1;
	snprintf(tail, sizeof tail, "errno=%d\n\n", err);
	return write_all(c->fd, tail, strlen(tail));
}

/* Handle every complete operation ("...\n\n") in the buffer. */
static int process(struct uapi_conn *c)
{
	for (;;) {
		char *end = NULL;
		size_t oplen;

		for (size_t i = c->scanned; i + 1 < c->len; i++)
			if (c->in[i] == '\n' && c->in[i + 1] == '\n') {
				end = c->in + i;
				break;
			}
		if (!end) {
			c->scanned = c->len ? c->len - 1 : 0;
			return 0;
		}
		c->scanned = 0;
		oplen = (size_t)(end - c->in) + 2;
		if (!strncmp(c->in, "get=1\n", 6) && oplen == 7) {
			char *body = uapi_get(c->dev);
			int rc = answer(c, body, body ? 0 : -ENOMEM);

			if (body)
				key_wipe(body, strlen(body));
			free(body);
			if (rc < 0)
				return -1;
		} else if (!strncmp(c->in, "set=1\n", 6)) {
			if (answer(c, NULL, uapi_set(c->dev, c->in + 6, oplen - 7)) < 0)
				return -1;
		} else {
			answer(c, NULL, -EINVAL);
			return -1;
		}
		key_wipe(c->in, oplen);
		memmove(c->in, c->in + oplen, c->len - oplen);
		c->len -= oplen;
	}
}

static void on_conn(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct uapi_conn *c = arg;

	(void)loop;
	(void)events;
	for (;;) {
		ssize_t n;

		if (c->cap - c->len < 4096) {
			size_t cap = c->cap ? c->cap * 2 : 8192;
			char *q;

			if (cap > UAPI_MAX) {
				log_warning("uapi: request over %u bytes refused", UAPI_MAX);
				conn_close(c);
				return;
			}
			q = malloc(cap);
			if (!q) {
				conn_close(c);
				return;
			}
			if (c->in) {
				memcpy(q, c->in, c->len);
				key_wipe(c->in, c->cap);
				free(c->in);
			}
			c->in = q;
			c->cap = cap;
		}
		n = read(fd, c->in + c->len, c->cap - c->len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->len += (size_t)n;
		if (process(c) < 0) {
			conn_close(c);
			return;
		}
	}
}

static void on_accept(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct device *dev = arg;

	(void)events;
	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct uapi_conn *c;
		struct ucred cred;
		socklen_t len = sizeof cred;

		if (cfd < 0)
			return;
		/* Only root and our own user configure the tunnel. */
		if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		    (cred.uid != 0 && cred.uid != geteuid())) {
			close(cfd);
			continue;
		}
		c = calloc(1, sizeof *c);
		if (!c || loop_add_fd(loop, cfd, EPOLLIN, on_conn, c) < 0) {
			free(c);
			close(cfd);
			continue;
		}
		c->dev = dev;
		c->fd = cfd;
	}
}

int uapi_listen(struct device *dev, const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, saved;

	if (file_mkdir(dir, 0755) < 0)
		return -1;
	if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s.sock", dir, dev->ifname) >=
	    sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* The interface name is ours (we created the device), so a socket
	 * left under it is stale. */
	unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || chmod(sa.sun_path, 0600) < 0 ||
	    listen(fd, 16) < 0 || loop_add_fd(dev->loop, fd, EPOLLIN, on_accept, dev) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	uapi.fd = fd;
	snprintf(uapi.path, sizeof uapi.path, "%s", sa.sun_path);
	return 0;
}

void uapi_close(struct device *dev, const char *dir)
{
	(void)dir;
	if (uapi.fd < 0)
		return;
	loop_del_fd(dev->loop, uapi.fd);
	close(uapi.fd);
	unlink(uapi.path);
	uapi.fd = -1;
}
