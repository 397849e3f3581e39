/* udp.c: the device's UDP sockets, one per address family on the same
 * port, with large buffers so bursts are not dropped in the kernel. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "device.h"
#include "log.h"

#define SOCKET_BUFFER (4 << 20)

static int open_socket(int family, uint16_t port, uint32_t fwmark, uint16_t *bound)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	int size = SOCKET_BUFFER;
	union sockaddr_any sa;
	socklen_t len;

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	if (family == AF_INET) {
		sa.in.sin_family = AF_INET;
		sa.in.sin_port = htons(port);
		len = sizeof sa.in;
	} else {
		sa.in6.sin6_family = AF_INET6;
		sa.in6.sin6_port = htons(port);
		len = sizeof sa.in6;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	}
	/* Best effort: FORCE needs CAP_NET_ADMIN, the plain form is capped. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
	if (fwmark && setsockopt(fd, SOL_SOCKET, SO_MARK, &fwmark, sizeof fwmark) < 0)
		goto fail;
	/* Receive bursts of one peer as one buffer (where the kernel can). */
	setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one);
	if (bind(fd, &sa.sa, len) < 0)
		goto fail;
	if (getsockname(fd, &sa.sa, &len) < 0)
		goto fail;
	*bound = ntohs(family == AF_INET ? sa.in.sin_port : sa.in6.sin6_port);
	return fd;
fail:
	{
		int saved = errno;

		close(fd);
		errno = saved;
	}
	return -1;
}

void udp_close(struct device *dev)
{
	if (dev->udp4 >= 0) {
		loop_del_fd(dev->loop, dev->udp4);
		close(dev->udp4);
	}
	if (dev->udp6 >= 0) {
		loop_del_fd(dev->loop, dev->udp6);
		close(dev->udp6);
	}
	dev->udp4 = dev->udp6 = -1;
}

/* Bind PORT (0: any) for IPv4 and, where the host has it, IPv6; the two
 * share the port the first one got. On failure to bind another port the
 * old sockets stay. */
int udp_bind(struct device *dev, uint16_t port)
{
	uint16_t bound = 0, bound6 = 0;
	int fd4 = -1, fd6 = -1;

	if (dev->kernel) { /* the kernel binds; kernel_push tells it the port */
		dev->listen_port = port;
		return 0;
	}
	if (dev->udp4 >= 0 && port == dev->listen_port && port != 0) {
		/* The same port (a new fwmark): the old sockets hold it, so
		 * they go first, and a failure leaves none. */
		udp_close(dev);
	}
	for (int attempt = 0; attempt < 10; attempt++) {
		fd4 = open_socket(AF_INET, port, dev->fwmark, &bound);
		if (fd4 < 0)
			return -1;
		fd6 = open_socket(AF_INET6, bound, dev->fwmark, &bound6);
		if (fd6 >= 0 || errno == EAFNOSUPPORT || port != 0)
			break;
		close(fd4); /* an ephemeral port free for v4 but taken for v6: retry */
		fd4 = -1;
	}
	if (fd4 < 0)
		return -1;
	if (fd6 < 0 && errno != EAFNOSUPPORT)
		log_warning("unable to bind UDP port %u for IPv6: %s; IPv4 only", bound,
			    strerror(errno));
	udp_close(dev);
	dev->udp4 = fd4;
	dev->udp6 = fd6;
	dev->listen_port = bound;
	if (loop_add_fd(dev->loop, fd4, EPOLLIN, device_on_udp, dev) < 0 ||
	    (fd6 >= 0 && loop_add_fd(dev->loop, fd6, EPOLLIN, device_on_udp, dev) < 0))
		return -1;
	return 0;
}
