/* listen.c: the listening sockets, one per overlay address and port the
 * site needs: for each https resource its address on the HTTPS port (443)
 * and, when -P is not 0, on the HTTP port (80) answering with a redirect;
 * for each tcp resource its address on each of its ports. Nothing else:
 * never a wildcard address, so nothing listens on the connector's LAN or
 * WAN. IP_FREEBIND lets an address be bound before p2p-tunnel has put it on
 * the interface; with -i the sockets are also bound to that interface
 * (SO_BINDTODEVICE), so a packet for the address that arrives from
 * anywhere else finds nothing. Sockets are kept in step with every map
 * version; one that cannot be bound is tried again at the next sweep. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "tlsterm.h"

struct listener {
	struct addr addr;
	uint16_t port;
	int kind;
	char resource[64];
	int fd;
	int wanted;
	char error[160];
	struct listener *next;
};

static struct listener *listeners;
static const char *const kind_names[] = { "https", "redirect", "tcp" };
static int accept_paused;   /* out of descriptors: listen_resume takes them up again */

/* Out of file descriptors (or memory) the connection stays in the backlog
 * and the listening socket stays readable: accepting is paused, not tried
 * again in a loop, until the sweep after next. */
static void pause_accepting(unsigned port, int err)
{
	static uint64_t warned;

	for (struct listener *l = listeners; l; l = l->next)
		if (l->fd >= 0 && loop_mod_fd(tt.loop, l->fd, 0) < 0)
			log_warning("unable to pause accepting on port %u: %s", l->port, strerror(errno));
	accept_paused = 2;
	if (loop_now_ms() - warned >= 10000) {
		log_warning("accept on port %u: %s: not accepting for a moment (%zu connections open)", port,
			    strerror(err), clients_open());
		warned = loop_now_ms();
	}
}

void listen_resume(void)
{
	if (!accept_paused || --accept_paused)
		return;
	for (struct listener *l = listeners; l; l = l->next)
		if (l->fd >= 0 && loop_mod_fd(tt.loop, l->fd, EPOLLIN) < 0)
			log_warning("unable to accept on port %u again: %s", l->port, strerror(errno));
}

static void on_accept(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct listener *l = arg;

	(void)loop;
	(void)events;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct addr peer = { 0 };
		uint16_t pport;

		if (cfd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				pause_accepting(l->port, errno);
			else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warning("accept on port %u: %s", l->port, strerror(errno));
			return;
		}
		if (clients_open() >= tt.o.max_connections) {
			close(cfd);
			continue;
		}
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			peer.family = AF_INET;
			memcpy(peer.bytes, &s4->sin_addr, 4);
			pport = ntohs(s4->sin_port);
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			peer.family = AF_INET6;
			memcpy(peer.bytes, &s6->sin6_addr, 16);
			pport = ntohs(s6->sin6_port);
		}
		if (client_accept(cfd, l->kind, l->resource, &l->addr, l->port, &peer, pport) < 0) {
			log_warning("unable to take a connection: out of memory");
			close(cfd);
		}
	}
}

static int open_socket(struct listener *l)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	int one = 1, fd = socket(l->addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		goto fail;
	if (l->addr.family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(l->port);
		memcpy(&s4->sin_addr, l->addr.bytes, 4);
		sl = sizeof *s4;
		setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(l->port);
		memcpy(&s6->sin6_addr, l->addr.bytes, 16);
		sl = sizeof *s6;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
		setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    (tt.o.iface && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, tt.o.iface, strlen(tt.o.iface)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0 ||
	    loop_add_fd(tt.loop, fd, accept_paused ? 0 : EPOLLIN, on_accept, l) < 0)
		goto fail;
	l->fd = fd;
	l->error[0] = '\0';
	return 0;
fail:
	snprintf(l->error, sizeof l->error, "%s", strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static void want(const struct addr *a, uint16_t port, int kind, const char *resource)
{
	struct listener *l;
	char text[ADDR_STRLEN];

	for (l = listeners; l; l = l->next)
		if (addr_equal(&l->addr, a) && l->port == port && l->kind == kind &&
		    !strcmp(l->resource, resource)) {
			l->wanted = 1;
			if (l->fd < 0 && open_socket(l) == 0)
				log_info("listening on %s port %u (%s, %s)", addr_str(a, text), port,
					 kind_names[kind], resource);
			return;
		}
	if (!(l = calloc(1, sizeof *l)))
		return;
	l->addr = *a;
	l->port = port;
	l->kind = kind;
	l->fd = -1;
	l->wanted = 1;
	snprintf(l->resource, sizeof l->resource, "%s", resource);
	l->next = listeners;
	listeners = l;
	if (open_socket(l) == 0)
		log_info("listening on %s port %u (%s, %s)", addr_str(a, text), port, kind_names[kind],
			 resource);
	else
		log_error("unable to listen on %s port %u for %s: %s", addr_str(a, text), port,
			  resource, l->error);
}

static void close_listener(struct listener *l)
{
	if (l->fd >= 0) {
		loop_del_fd(tt.loop, l->fd);
		close(l->fd);
	}
	free(l);
}

void listen_sync(void)
{
	struct listener **pp;

	for (struct listener *l = listeners; l; l = l->next)
		l->wanted = 0;
	for (size_t i = 0; tt.site && i < tt.site->nres; i++) {
		const struct resource *r = &tt.site->res[i];

		if (r->tcp) {
			for (size_t k = 0; k < r->nports; k++)
				want(&r->addr, r->ports[k], LK_TCP, r->name);
			continue;
		}
		want(&r->addr, tt.o.https_port, LK_HTTPS, r->name);
		if (tt.o.http_port)
			want(&r->addr, tt.o.http_port, LK_REDIRECT, r->name);
	}
	for (pp = &listeners; *pp;) {
		struct listener *l = *pp;

		if (l->wanted) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		{
			char text[ADDR_STRLEN];

			log_info("no longer listening on %s port %u (%s)", addr_str(&l->addr, text), l->port,
				 l->resource);
		}
		close_listener(l);
	}
}

void listen_close_all(void)
{
	while (listeners) {
		struct listener *l = listeners;

		listeners = l->next;
		close_listener(l);
	}
}

json_t *listen_status(void)
{
	json_t *a = json_array();

	for (struct listener *l = listeners; l; l = l->next) {
		char text[ADDR_STRLEN];

		json_array_append_new(a, json_pack("{s:s,s:i,s:s,s:s,s:b,s:s?}", "addr",
						   addr_str(&l->addr, text), "port", l->port, "kind",
						   kind_names[l->kind], "resource", l->resource,
						   "listening", l->fd >= 0, "error",
						   l->fd >= 0 ? NULL : l->error));
	}
	return a;
}
