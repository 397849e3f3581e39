/* kernel.c: WG_CMD_SET_DEVICE and WG_CMD_GET_DEVICE (linux/wireguard.h).
 * One message per peer keeps every message far below the netlink size
 * limit, whatever the number of AllowedIPs. */
#include "kernel.h"

#include <errno.h>
#include <jansson.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <stdlib.h>
#include <string.h>

#include "key.h"
#include "log.h"

/* Keys of the peers the kernel has from us, and the endpoint we last gave
 * each, so an endpoint the kernel learnt by roaming is not overwritten. */
static json_t *pushed;

static struct nl_sock *genl_socket(int *family)
{
	struct nl_sock *sk = nl_socket_alloc();

	if (!sk)
		return NULL;
	if (genl_connect(sk) < 0 || (*family = genl_ctrl_resolve(sk, WG_GENL_NAME)) < 0) {
		nl_socket_free(sk);
		errno = EOPNOTSUPP;
		return NULL;
	}
	return sk;
}

int kernel_create(const char *name)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct rtnl_link *link = rtnl_link_alloc();
	int rc = -1, family;

	if (sk && link && nl_connect(sk, NETLINK_ROUTE) == 0) {
		rtnl_link_set_name(link, name);
		if (rtnl_link_set_type(link, "wireguard") == 0) {
			int err = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);

			/* A wireguard link of this name left by a daemon that was
			 * killed: ours to replace. */
			if (err == -NLE_EXIST) {
				struct rtnl_link *old = NULL;

				if (rtnl_link_get_kernel(sk, 0, name, &old) == 0) {
					const char *type = rtnl_link_get_type(old);

					if (type && !strcmp(type, "wireguard") &&
					    rtnl_link_delete(sk, old) == 0)
						err = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
					rtnl_link_put(old);
				}
			}
			if (err == 0)
				rc = 0;
			else
				log_info("%s: no kernel WireGuard device: %s", name, nl_geterror(err));
		}
	}
	if (link)
		rtnl_link_put(link);
	if (sk)
		nl_socket_free(sk);
	if (rc < 0) {
		errno = EOPNOTSUPP;
		return -1;
	}
	/* The link exists; the generic netlink family must too. */
	sk = genl_socket(&family);
	if (!sk) {
		kernel_destroy(name);
		return -1;
	}
	nl_socket_free(sk);
	pushed = json_object();
	return 0;
}

void kernel_destroy(const char *name)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct rtnl_link *link = rtnl_link_alloc();

	if (sk && link && nl_connect(sk, NETLINK_ROUTE) == 0) {
		rtnl_link_set_name(link, name);
		rtnl_link_delete(sk, link);
	}
	if (link)
		rtnl_link_put(link);
	if (sk)
		nl_socket_free(sk);
	json_decref(pushed);
	pushed = NULL;
}

static int endpoint_size(const union sockaddr_any *ep)
{
	return ep->sa.sa_family == AF_INET ? (int)sizeof ep->in : (int)sizeof ep->in6;
}

struct aip_ctx {
	struct nl_msg *msg;
	int failed;
};

static void put_allowedip(const struct prefix *p, void *peer, void *arg)
{
	struct aip_ctx *c = arg;
	struct nlattr *one = nla_nest_start(c->msg, 0);

	(void)peer;
	if (!one || nla_put_u16(c->msg, WGALLOWEDIP_A_FAMILY, (uint16_t)p->addr.family) < 0 ||
	    nla_put(c->msg, WGALLOWEDIP_A_IPADDR, (int)addr_len(&p->addr), p->addr.bytes) < 0 ||
	    nla_put_u8(c->msg, WGALLOWEDIP_A_CIDR_MASK, (uint8_t)p->len) < 0) {
		c->failed = 1;
		return;
	}
	nla_nest_end(c->msg, one);
}

static struct nl_msg *set_message(int family, const char *ifname)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg)
		return NULL;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, NLM_F_REQUEST | NLM_F_ACK,
			 WG_CMD_SET_DEVICE, WG_GENL_VERSION) ||
	    nla_put_string(msg, WGDEVICE_A_IFNAME, ifname) < 0) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

static int send_and_ack(struct nl_sock *sk, struct nl_msg *msg)
{
	int rc = nl_send_auto(sk, msg);

	nlmsg_free(msg);
	if (rc < 0)
		return -EIO;
	rc = nl_wait_for_ack(sk);
	return rc < 0 ? -EIO : 0;
}

/* One peer: its keys, endpoint (when it changed on our side), keepalive and
 * AllowedIPs (replaced as a whole), or its removal. */
static int push_peer(struct nl_sock *sk, int family, struct device *dev, const uint8_t *pub,
		     struct peer *p)
{
	struct nl_msg *msg = set_message(family, dev->ifname);
	struct nlattr *peers, *peer, *aips;
	char b64[KEY_B64_LEN + 1], ep[64] = "";
	struct aip_ctx ctx;
	json_t *last;

	if (!msg)
		return -ENOMEM;
	key_to_base64(b64, pub);
	peers = nla_nest_start(msg, WGDEVICE_A_PEERS);
	peer = peers ? nla_nest_start(msg, 0) : NULL;
	if (!peer || nla_put(msg, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, pub) < 0)
		goto fail;
	if (!p) {
		if (nla_put_u32(msg, WGPEER_A_FLAGS, WGPEER_F_REMOVE_ME) < 0)
			goto fail;
		json_object_del(pushed, b64);
	} else {
		if (nla_put_u32(msg, WGPEER_A_FLAGS, WGPEER_F_REPLACE_ALLOWEDIPS) < 0 ||
		    nla_put(msg, WGPEER_A_PRESHARED_KEY, WG_KEY_LEN, p->remote.psk) < 0 ||
		    nla_put_u16(msg, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
				p->persistent_keepalive) < 0)
			goto fail;
		if (p->has_endpoint)
			endpoint_to_string(&p->endpoint, ep, sizeof ep);
		last = json_object_get(pushed, b64);
		if (p->has_endpoint && (!last || strcmp(json_string_value(last), ep)) &&
		    nla_put(msg, WGPEER_A_ENDPOINT, endpoint_size(&p->endpoint), &p->endpoint) < 0)
			goto fail;
		aips = nla_nest_start(msg, WGPEER_A_ALLOWEDIPS);
		ctx.msg = msg;
		ctx.failed = 0;
		if (!aips)
			goto fail;
		allowedips_walk(&dev->aips, p, put_allowedip, &ctx);
		if (ctx.failed)
			goto fail;
		nla_nest_end(msg, aips);
		json_object_set_new(pushed, b64, json_string(ep));
	}
	nla_nest_end(msg, peer);
	nla_nest_end(msg, peers);
	return send_and_ack(sk, msg);
fail:
	nlmsg_free(msg);
	return -EMSGSIZE;
}

int kernel_push(struct device *dev)
{
	static const uint8_t zero[WG_KEY_LEN];
	int family, rc;
	struct nl_sock *sk = genl_socket(&family);
	struct nl_msg *msg;
	const char *b64;
	json_t *v, *gone;
	void *tmp;

	if (!sk)
		return -EOPNOTSUPP;
	msg = set_message(family, dev->ifname);
	if (!msg ||
	    nla_put(msg, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN,
		    dev->local.has_key ? dev->local.priv : zero) < 0 ||
	    /* Port 0 would make the kernel pick a new port at every push. */
	    (dev->listen_port && nla_put_u16(msg, WGDEVICE_A_LISTEN_PORT, dev->listen_port) < 0) ||
	    nla_put_u32(msg, WGDEVICE_A_FWMARK, dev->fwmark) < 0) {
		if (msg)
			nlmsg_free(msg);
		nl_socket_free(sk);
		return -ENOMEM;
	}
	rc = send_and_ack(sk, msg);
	for (struct peer *p = dev->peers; p && rc == 0; p = p->next)
		rc = push_peer(sk, family, dev, p->remote.pub, p);
	/* Peers we pushed before and no longer have. */
	gone = json_object();
	json_object_foreach(pushed, b64, v) {
		uint8_t pub[WG_KEY_LEN];

		if (key_from_base64(pub, b64) == 0 && !peer_find(dev, pub))
			json_object_set_new(gone, b64, json_true());
	}
	json_object_foreach_safe(gone, tmp, b64, v) {
		uint8_t pub[WG_KEY_LEN];

		if (rc == 0 && key_from_base64(pub, b64) == 0)
			rc = push_peer(sk, family, dev, pub, NULL);
	}
	json_decref(gone);
	nl_socket_free(sk);
	/* Learn the port the kernel chose, so later pushes keep it. */
	if (rc == 0 && dev->listen_port == 0)
		kernel_refresh(dev);
	if (rc < 0)
		log_error("unable to configure the kernel device %s: %s", dev->ifname, strerror(-rc));
	return rc;
}

/* ---- get ---- */

static void read_peer(struct device *dev, struct nlattr *attr)
{
	struct nlattr *tb[WGPEER_A_MAX + 1];
	struct peer *p;

	if (nla_parse_nested(tb, WGPEER_A_MAX, attr, NULL) < 0 || !tb[WGPEER_A_PUBLIC_KEY] ||
	    nla_len(tb[WGPEER_A_PUBLIC_KEY]) != WG_KEY_LEN)
		return;
	p = peer_find(dev, nla_data(tb[WGPEER_A_PUBLIC_KEY]));
	if (!p)
		return;
	if (tb[WGPEER_A_LAST_HANDSHAKE_TIME] &&
	    nla_len(tb[WGPEER_A_LAST_HANDSHAKE_TIME]) == (int)sizeof(struct __kernel_timespec)) {
		struct __kernel_timespec ts;

		memcpy(&ts, nla_data(tb[WGPEER_A_LAST_HANDSHAKE_TIME]), sizeof ts);
		p->last_handshake.tv_sec = (time_t)ts.tv_sec;
		p->last_handshake.tv_nsec = (long)ts.tv_nsec;
	}
	if (tb[WGPEER_A_RX_BYTES])
		p->rx_bytes = nla_get_u64(tb[WGPEER_A_RX_BYTES]);
	if (tb[WGPEER_A_TX_BYTES])
		p->tx_bytes = nla_get_u64(tb[WGPEER_A_TX_BYTES]);
	if (tb[WGPEER_A_ENDPOINT] && nla_len(tb[WGPEER_A_ENDPOINT]) >= (int)sizeof(struct sockaddr_in) &&
	    (size_t)nla_len(tb[WGPEER_A_ENDPOINT]) <= sizeof p->endpoint) {
		memset(&p->endpoint, 0, sizeof p->endpoint);
		memcpy(&p->endpoint, nla_data(tb[WGPEER_A_ENDPOINT]), (size_t)nla_len(tb[WGPEER_A_ENDPOINT]));
		p->has_endpoint = 1;
	}
}

static int on_device(struct nl_msg *msg, void *arg)
{
	struct device *dev = arg;
	struct nlattr *tb[WGDEVICE_A_MAX + 1], *peer;
	int rem;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, WGDEVICE_A_MAX, NULL) < 0)
		return NL_SKIP;
	if (tb[WGDEVICE_A_LISTEN_PORT])
		dev->listen_port = nla_get_u16(tb[WGDEVICE_A_LISTEN_PORT]);
	if (tb[WGDEVICE_A_PEERS])
		nla_for_each_nested(peer, tb[WGDEVICE_A_PEERS], rem)
			read_peer(dev, peer);
	return NL_OK;
}

int kernel_refresh(struct device *dev)
{
	int family, rc = -EIO;
	struct nl_sock *sk = genl_socket(&family);
	struct nl_msg *msg;

	if (!sk)
		return -EOPNOTSUPP;
	msg = nlmsg_alloc();
	if (msg && genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, NLM_F_REQUEST | NLM_F_DUMP,
			       WG_CMD_GET_DEVICE, WG_GENL_VERSION) &&
	    nla_put_string(msg, WGDEVICE_A_IFNAME, dev->ifname) == 0 &&
	    nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_device, dev) == 0 &&
	    nl_send_auto(sk, msg) >= 0 && nl_recvmsgs_default(sk) >= 0)
		rc = 0;
	if (msg)
		nlmsg_free(msg);
	nl_socket_free(sk);
	return rc;
}
