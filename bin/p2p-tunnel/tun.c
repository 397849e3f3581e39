/* tun.c: TUN through /dev/net/tun, everything else through libnl-route, so
 * the daemon never runs ip(8). */
#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int open_tun(const char *name, int flags)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = (short)(IFF_TUN | IFF_NO_PI | flags);
	if (strlen(name) >= IFNAMSIZ) {
		close(fd);
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(ifr.ifr_name, name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int tun_open(const char *name, int *vnet)
{
	int fd = open_tun(name, IFF_VNET_HDR), hdrlen = 10;
	unsigned offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;

	/* The kernel hands us 64 KiB TCP segments and takes them back the
	 * same way; where it cannot, plain packets. */
	if (fd >= 0 && ioctl(fd, TUNSETVNETHDRSZ, &hdrlen) == 0 &&
	    ioctl(fd, TUNSETOFFLOAD, offloads) == 0) {
		*vnet = 1;
		return fd;
	}
	if (fd >= 0)
		close(fd);
	*vnet = 0;
	return open_tun(name, 0);
}

static struct nl_sock *route_socket(void)
{
	struct nl_sock *sk = nl_socket_alloc();

	if (!sk)
		return NULL;
	if (nl_connect(sk, NETLINK_ROUTE) < 0) {
		nl_socket_free(sk);
		return NULL;
	}
	return sk;
}

static int ifindex_of(struct nl_sock *sk, const char *name)
{
	struct rtnl_link *link = NULL;
	int index;

	if (rtnl_link_get_kernel(sk, 0, name, &link) < 0)
		return -1;
	index = rtnl_link_get_ifindex(link);
	rtnl_link_put(link);
	return index;
}

int tun_up(const char *name, unsigned mtu)
{
	struct nl_sock *sk = route_socket();
	struct rtnl_link *link = NULL, *change = NULL;
	int rc = -1;

	if (!sk)
		return -1;
	if (rtnl_link_get_kernel(sk, 0, name, &link) < 0)
		goto out;
	change = rtnl_link_alloc();
	if (!change)
		goto out;
	rtnl_link_set_mtu(change, mtu);
	rtnl_link_set_flags(change, IFF_UP);
	if (rtnl_link_change(sk, link, change, 0) < 0)
		goto out;
	rc = 0;
out:
	if (change)
		rtnl_link_put(change);
	if (link)
		rtnl_link_put(link);
	nl_socket_free(sk);
	if (rc < 0)
		errno = EIO;
	return rc;
}

static struct nl_addr *to_nl_addr(const struct prefix *p)
{
	struct nl_addr *a = nl_addr_build(p->addr.family, p->addr.bytes, addr_len(&p->addr));

	if (a)
		nl_addr_set_prefixlen(a, p->len);
	return a;
}

int tun_addr(const char *name, const struct prefix *p, int add, const char **err)
{
	struct nl_sock *sk = route_socket();
	struct rtnl_addr *ra = NULL;
	struct nl_addr *local = NULL;
	int rc = -NLE_NOMEM, index;

	if (!sk) {
		*err = "no netlink socket";
		return -1;
	}
	index = ifindex_of(sk, name);
	ra = rtnl_addr_alloc();
	local = to_nl_addr(p);
	if (index < 0) {
		rc = -NLE_NODEV;
	} else if (ra && local) {
		rtnl_addr_set_ifindex(ra, index);
		rtnl_addr_set_family(ra, p->addr.family);
		rc = rtnl_addr_set_local(ra, local);
		if (rc == 0)
			rc = add ? rtnl_addr_add(sk, ra, NLM_F_REPLACE) : rtnl_addr_delete(sk, ra, 0);
	}
	if (rc < 0)
		*err = nl_geterror(rc);
	if (local)
		nl_addr_put(local);
	if (ra)
		rtnl_addr_put(ra);
	nl_socket_free(sk);
	return rc < 0 ? -1 : 0;
}

int tun_route(const char *name, const struct prefix *p, int add, const char **err)
{
	struct nl_sock *sk = route_socket();
	struct rtnl_route *route = NULL;
	struct rtnl_nexthop *nh = NULL;
	struct nl_addr *dst = NULL;
	int rc = -NLE_NOMEM, index;

	if (!sk) {
		*err = "no netlink socket";
		return -1;
	}
	index = ifindex_of(sk, name);
	route = rtnl_route_alloc();
	dst = to_nl_addr(p);
	nh = rtnl_route_nh_alloc();
	if (index < 0) {
		rc = -NLE_NODEV;
	} else if (route && dst && nh) {
		rtnl_route_set_family(route, (uint8_t)p->addr.family);
		rtnl_route_set_table(route, RT_TABLE_MAIN);
		rtnl_route_set_scope(route, RT_SCOPE_LINK);
		rtnl_route_set_protocol(route, RTPROT_STATIC);
		rc = rtnl_route_set_dst(route, dst);
		rtnl_route_nh_set_ifindex(nh, index);
		rtnl_route_add_nexthop(route, nh);
		nh = NULL; /* the route owns it now */
		if (rc == 0)
			rc = add ? rtnl_route_add(sk, route, NLM_F_CREATE | NLM_F_REPLACE)
				 : rtnl_route_delete(sk, route, 0);
	}
	if (rc < 0)
		*err = nl_geterror(rc);
	if (nh)
		rtnl_route_nh_free(nh);
	if (dst)
		nl_addr_put(dst);
	if (route)
		rtnl_route_put(route);
	nl_socket_free(sk);
	return rc < 0 ? -1 : 0;
}
