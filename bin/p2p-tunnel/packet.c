/* packet.c: the paths of a packet. From the TUN device: route by
 * destination to a peer, encrypt with its current session, send over UDP
 * (or stage it and start a handshake). From UDP: handshake messages and
 * cookie replies, or transport data: authenticate, check the replay window,
 * check the inner source against the peer's AllowedIPs, write to TUN. */
#include <arpa/inet.h>
#include <netinet/udp.h>
#include <sys/uio.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "device.h"
#include "key.h"
#include "log.h"

int endpoint_to_string(const union sockaddr_any *ep, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];

	if (ep->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &ep->in.sin_addr, a, sizeof a);
		return snprintf(buf, size, "%s:%u", a, ntohs(ep->in.sin_port)) < (int)size ? 0 : -1;
	}
	if (ep->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &ep->in6.sin6_addr, a, sizeof a);
		return snprintf(buf, size, "[%s]:%u", a, ntohs(ep->in6.sin6_port)) < (int)size ? 0 : -1;
	}
	return -1;
}

int endpoint_from_string(union sockaddr_any *ep, const char *text)
{
	struct addr a;
	uint16_t port;

	if (endpoint_parse(text, &a, &port) < 0)
		return -1;
	memset(ep, 0, sizeof *ep);
	if (a.family == AF_INET) {
		ep->in.sin_family = AF_INET;
		ep->in.sin_port = htons(port);
		memcpy(&ep->in.sin_addr, a.bytes, 4);
	} else {
		ep->in6.sin6_family = AF_INET6;
		ep->in6.sin6_port = htons(port);
		memcpy(&ep->in6.sin6_addr, a.bytes, 16);
	}
	return 0;
}

static socklen_t endpoint_len(const union sockaddr_any *ep)
{
	return ep->sa.sa_family == AF_INET ? sizeof ep->in : sizeof ep->in6;
}

static int endpoint_equal(const union sockaddr_any *a, const union sockaddr_any *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return 0;
	if (a->sa.sa_family == AF_INET)
		return a->in.sin_port == b->in.sin_port &&
		       a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
	return a->in6.sin6_port == b->in6.sin6_port &&
	       memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0;
}

/* Roaming: the source of an authenticated packet is the peer's endpoint. */
static void update_endpoint(struct peer *p, const union sockaddr_any *src)
{
	if (p->has_endpoint && endpoint_equal(&p->endpoint, src))
		return;
	if (log_enabled(LOG_DEBUG)) {
		char text[64], key[KEY_B64_LEN + 1];

		endpoint_to_string(src, text, sizeof text);
		key_to_base64(key, p->remote.pub);
		log_debug("peer %.8s...: endpoint %s", key, text);
	}
	p->endpoint = *src;
	p->has_endpoint = 1;
}

static int udp_send(struct peer *p, const void *data, size_t len)
{
	struct device *dev = p->dev;
	int fd = p->endpoint.sa.sa_family == AF_INET ? dev->udp4 : dev->udp6;
	ssize_t n;

	if (!p->has_endpoint || fd < 0) {
		errno = EDESTADDRREQ;
		return -1;
	}
	do
		n = sendto(fd, data, len, 0, &p->endpoint.sa, endpoint_len(&p->endpoint));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	p->tx_bytes += len;
	return 0;
}

static int cookie_valid(const struct peer *p)
{
	return p->cookie_time && loop_now_ms() - p->cookie_time < timing.cookie_refresh_time;
}

void device_send_handshake_initiation(struct peer *p, int retry)
{
	struct device *dev = p->dev;
	struct msg_initiation m;
	uint8_t ts[TAI64N_LEN];
	struct timespec now;
	uint64_t ms = loop_now_ms();
	uint32_t idx;

	if (!retry)
		p->handshake_attempts = 0;
	if (!dev->local.has_key || !p->remote.ss_ok)
		return;
	if (p->last_initiation_sent && ms - p->last_initiation_sent < timing.rekey_timeout && !retry)
		return;
	p->last_initiation_sent = ms;
	if (p->hs.state != HS_NONE)
		index_del(dev, p->hs.local_index);
	p->hs.state = HS_NONE;
	idx = index_add(dev, p, NULL);
	if (!idx)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	noise_tai64n(ts, (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec);
	if (noise_create_initiation(&dev->local, &p->remote, &p->hs, idx, ts, &m) < 0) {
		index_del(dev, idx);
		return;
	}
	noise_add_macs((uint8_t *)&m, sizeof m, p->remote.mac1_key, cookie_valid(p) ? p->cookie : NULL);
	memcpy(p->last_mac1, m.mac1, WG_MAC_LEN);
	timers_any_authenticated_packet_traversal(p);
	timers_any_authenticated_packet_sent(p);
	if (udp_send(p, &m, sizeof m) < 0 && errno != EDESTADDRREQ)
		log_debug("unable to send a handshake initiation: %s", strerror(errno));
	timers_handshake_initiated(p);
}

static int session_usable(const struct session *s, uint64_t now)
{
	return s && now - s->created < timing.reject_after_time &&
	       s->send_counter < REJECT_AFTER_MESSAGES;
}

int device_send_packet(struct peer *p, const uint8_t *pkt, size_t len)
{
	struct device *dev = p->dev;
	struct session *s = p->current;
	uint64_t now = loop_now_ms(), counter;
	size_t padded = (len + 15) & ~(size_t)15;
	uint8_t *out = dev->buf2;

	if (!session_usable(s, now)) {
		if (len)
			peer_stage(p, pkt, len);
		device_send_handshake_initiation(p, 0);
		return 0;
	}
	if (padded > dev->mtu && len <= dev->mtu)
		padded = dev->mtu;
	counter = s->send_counter++;
	noise_put_le32(out, MSG_DATA);
	noise_put_le32(out + 4, s->keys.remote_index);
	noise_put_le64(out + 8, counter);
	if (len) /* a keepalive has no packet */
		memcpy(out + MSG_DATA_HEADER_LEN, pkt, len);
	memset(out + MSG_DATA_HEADER_LEN + len, 0, padded - len);
	if (wg_aead_seal_fast(s->tx, out + MSG_DATA_HEADER_LEN, counter,
			      out + MSG_DATA_HEADER_LEN, padded) < 0)
		return -1;
	if (udp_send(p, out, MSG_DATA_HEADER_LEN + padded + WG_TAG_LEN) < 0) {
		dev->dropped++;
		return -1;
	}
	timers_any_authenticated_packet_traversal(p);
	timers_any_authenticated_packet_sent(p);
	if (len)
		timers_data_sent(p);
	/* Keep the key fresh: either side after so many messages, the
	 * initiator also after so long (as wireguard-go) */
	if (counter > REKEY_AFTER_MESSAGES || (s->keys.initiator && now - s->created > timing.rekey_after_time))
		device_send_handshake_initiation(p, 0);
	return 0;
}

static int sendmsg_gso(struct device *dev, struct peer *p, uint8_t *data, size_t len,
		       size_t segsize)
{
	int fd = p->endpoint.sa.sa_family == AF_INET ? dev->udp4 : dev->udp6;
	char control[CMSG_SPACE(sizeof(uint16_t))] = { 0 };
	struct iovec iov = { .iov_base = data, .iov_len = len };
	struct msghdr mh = {
		.msg_name = &p->endpoint.sa,
		.msg_namelen = endpoint_len(&p->endpoint),
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	ssize_t n;

	if (len > segsize) {
		struct cmsghdr *cm;

		mh.msg_control = control;
		mh.msg_controllen = sizeof control;
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_UDP;
		cm->cmsg_type = UDP_SEGMENT;
		cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
		*(uint16_t *)(void *)CMSG_DATA(cm) = (uint16_t)segsize;
	}
	do
		n = sendmsg(fd, &mh, 0);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -1 : 0;
}

/* One datagram per segment, for kernels without UDP GSO. */
static void send_each(struct device *dev, struct peer *p, uint8_t *data, size_t len,
		      size_t segsize)
{
	for (size_t off = 0; off < len; off += segsize)
		if (sendmsg_gso(dev, p, data + off, len - off < segsize ? len - off : segsize,
				segsize) < 0)
			dev->dropped++;
}

static void send_segments(struct peer *p, uint8_t *seg, size_t stride, const size_t *lens, int n)
{
	struct device *dev = p->dev;
	struct session *s = p->current;
	uint64_t now = loop_now_ms();
	size_t per_send = 65000 / stride, total = 0;
	uint8_t *batch = seg;
	int in_batch = 0;

	if (!session_usable(s, now)) {
		for (int i = 0; i < n; i++)
			peer_stage(p, seg + (size_t)i * stride + MSG_DATA_HEADER_LEN, lens[i]);
		device_send_handshake_initiation(p, 0);
		return;
	}
	if (!p->has_endpoint) {
		dev->dropped += (uint64_t)n;
		return;
	}
	for (int i = 0; i < n; i++) {
		uint8_t *slot = seg + (size_t)i * stride, *plain = slot + MSG_DATA_HEADER_LEN;
		size_t padded = (lens[i] + 15) & ~(size_t)15, msglen;
		uint64_t counter = s->send_counter++;

		if (padded > dev->mtu)
			padded = dev->mtu;
		memset(plain + lens[i], 0, padded - lens[i]);
		noise_put_le32(slot, MSG_DATA);
		noise_put_le32(slot + 4, s->keys.remote_index);
		noise_put_le64(slot + 8, counter);
		if (wg_aead_seal_fast(s->tx, plain, counter, plain, padded) < 0)
			return;
		msglen = MSG_DATA_HEADER_LEN + padded + WG_TAG_LEN;
		total += msglen;
		in_batch++;
		/* Flush at the batch limit, and at the last (maybe short) segment. */
		if ((size_t)in_batch == per_send || i == n - 1 || msglen != stride) {
			size_t bytes = (size_t)(slot + msglen - batch);

			if (!dev->udp_gso || sendmsg_gso(dev, p, batch, bytes, stride) < 0) {
				if (dev->udp_gso && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT)) {
					log_warning("UDP GSO refused (%s): sending datagram by datagram",
						    strerror(errno));
					dev->udp_gso = 0;
				}
				send_each(dev, p, batch, bytes, stride);
			}
			batch = slot + msglen;
			in_batch = 0;
		}
	}
	p->tx_bytes += total;
	timers_any_authenticated_packet_traversal(p);
	timers_any_authenticated_packet_sent(p);
	timers_data_sent(p);
	if (s->send_counter > REKEY_AFTER_MESSAGES ||
	    (s->keys.initiator && now - s->created > timing.rekey_after_time))
		device_send_handshake_initiation(p, 0);
}

void device_send_keepalive(struct peer *p)
{
	if (p->nstaged == 0)
		device_send_packet(p, NULL, 0);
	else
		peer_flush_staged(p);
}

/* ---- from the TUN device ---- */

static int packet_destination(const uint8_t *pkt, size_t len, int *family, const uint8_t **addr)
{
	if (len >= 20 && pkt[0] >> 4 == 4) {
		*family = AF_INET;
		*addr = pkt + 16;
		return 0;
	}
	if (len >= 40 && pkt[0] >> 4 == 6) {
		*family = AF_INET6;
		*addr = pkt + 24;
		return 0;
	}
	return -1;
}

/* Send N segments that tso_split placed at SEG + i * STRIDE + header room:
 * encrypt each in place under consecutive counters and hand them to the
 * kernel in as few sendmsg calls as UDP GSO allows. */
static void send_segments(struct peer *p, uint8_t *seg, size_t stride, const size_t *lens, int n);

static void tun_packet(struct device *dev, uint8_t *pkt, size_t len)
{
	const uint8_t *dst;
	struct peer *p;
	int family;

	if (packet_destination(pkt, len, &family, &dst) < 0)
		return;
	p = allowedips_lookup(&dev->aips, family, dst);
	if (!p) {
		dev->dropped++;
		return;
	}
	device_send_packet(p, pkt, len);
}

/* A super-packet from the kernel's TSO: split it into segments that fit
 * the MTU, straight into the slots they will be encrypted in. */
static void tun_super_packet(struct device *dev, const struct vnet_hdr *h, uint8_t *pkt, size_t len)
{
	size_t lens[MAX_SEGMENTS], full = offload_segment_size(h, pkt, len), padded, stride;
	const uint8_t *dst;
	struct peer *p;
	int family, n;

	if (packet_destination(pkt, len, &family, &dst) < 0 || full == 0 || full > dev->mtu) {
		dev->dropped++;
		return;
	}
	p = allowedips_lookup(&dev->aips, family, dst);
	if (!p) {
		dev->dropped++;
		return;
	}
	padded = (full + 15) & ~(size_t)15;
	if (padded > dev->mtu)
		padded = dev->mtu;
	stride = MSG_DATA_HEADER_LEN + padded + WG_TAG_LEN;
	n = offload_tso_split(h, pkt, len, dev->seg + MSG_DATA_HEADER_LEN, stride, lens, MAX_SEGMENTS);
	if (n < 0) {
		dev->dropped++;
		return;
	}
	send_segments(p, dev->seg, stride, lens, n);
}

void device_on_tun(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct device *dev = arg;
	size_t hdr = dev->vnet ? VNET_HDR_LEN : 0;

	(void)loop;
	(void)events;
	for (int burst = 0; burst < 64; burst++) {
		ssize_t n = read(fd, dev->buf, MAX_PACKET + hdr);
		struct vnet_hdr h;
		uint8_t *pkt = dev->buf + hdr;
		size_t len;

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_error("unable to read from %s: %s", dev->ifname, strerror(errno));
			return;
		}
		if ((size_t)n <= hdr)
			continue;
		len = (size_t)n - hdr;
		if (!dev->vnet) {
			tun_packet(dev, pkt, len);
			continue;
		}
		vnet_hdr_read(&h, dev->buf);
		if ((h.gso_type & ~VNET_GSO_ECN) == VNET_GSO_TCPV4 ||
		    (h.gso_type & ~VNET_GSO_ECN) == VNET_GSO_TCPV6) {
			tun_super_packet(dev, &h, pkt, len);
		} else if (h.gso_type == VNET_GSO_NONE) {
			if (offload_finish_csum(&h, pkt, len) == 0)
				tun_packet(dev, pkt, len);
		} else {
			dev->dropped++; /* a GSO kind we did not ask for */
		}
	}
}

/* ---- from UDP ---- */

static void source_bytes(const union sockaddr_any *src, uint8_t out[18], size_t *len)
{
	if (src->sa.sa_family == AF_INET) {
		memcpy(out, &src->in.sin_addr, 4);
		memcpy(out + 4, &src->in.sin_port, 2);
		*len = 6;
	} else {
		memcpy(out, &src->in6.sin6_addr, 16);
		memcpy(out + 16, &src->in6.sin6_port, 2);
		*len = 18;
	}
}

/* Under load when more handshake messages arrived in the last second than
 * we care to spend Curve25519 on. */
static int under_load(struct device *dev)
{
	uint64_t now = loop_now_ms();

	if (now - dev->load_window_start >= 1000) {
		dev->load_window_start = now;
		dev->load_count = 0;
	}
	return ++dev->load_count > UNDER_LOAD_HANDSHAKES;
}

/* MAC1 always; MAC2 (a cookie bound to the source) when under load, and
 * then a rate per source (ratelimit.c). 0: go on; -1: drop (a cookie reply
 * may have been sent). */
static int check_handshake_macs(struct device *dev, uint8_t *msg, size_t len, uint32_t sender,
				const union sockaddr_any *src)
{
	uint8_t cookie[WG_MAC_LEN], sb[18];
	size_t sblen;
	uint64_t now = loop_now_ms();
	struct msg_cookie_reply reply;
	int fd;

	if (noise_check_mac1(msg, len, dev->local.mac1_key) < 0)
		return -1;
	if (!under_load(dev))
		return 0;
	if (!dev->cookie_secret_time || now - dev->cookie_secret_time >= timing.cookie_refresh_time) {
		if (RAND_bytes(dev->cookie_secret, sizeof dev->cookie_secret) != 1)
			return -1;
		dev->cookie_secret_time = now;
	}
	source_bytes(src, sb, &sblen);
	noise_make_cookie(cookie, dev->cookie_secret, sb, sblen);
	if (noise_check_mac2(msg, len, cookie) == 0)
		return ratelimit_allow(&dev->ratelimit, &src->sa, now) ? 0 : -1;
	if (noise_create_cookie_reply(&reply, &dev->local, sender, cookie,
				      msg + len - 2 * WG_MAC_LEN) == 0) {
		fd = src->sa.sa_family == AF_INET ? dev->udp4 : dev->udp6;
		(void)!sendto(fd, &reply, sizeof reply, 0, &src->sa, endpoint_len(src));
	}
	return -1;
}

static void handle_initiation(struct device *dev, uint8_t *buf, size_t len,
			      const union sockaddr_any *src)
{
	struct msg_initiation *m = (struct msg_initiation *)buf;
	struct noise_handshake hs;
	struct msg_response resp;
	uint8_t who[WG_KEY_LEN];
	struct session *s;
	struct peer *p;
	uint64_t now = loop_now_ms();

	if (check_handshake_macs(dev, buf, len, noise_le32(m->sender), src) < 0)
		return;
	if (noise_consume_initiation_static(&dev->local, m, &hs, who) < 0)
		return;
	p = peer_find(dev, who);
	if (!p)
		goto out; /* not a peer of ours: no answer at all */
	/* At most one initiation per peer per initiation_rate. */
	if (p->last_initiation_consumed && now - p->last_initiation_consumed < timing.initiation_rate)
		goto out;
	if (noise_consume_initiation_finish(&p->remote, m, &hs, p->last_timestamp) < 0)
		goto out;
	memcpy(p->last_timestamp, hs.last_timestamp, TAI64N_LEN);
	p->last_initiation_consumed = now;
	if (p->hs.state != HS_NONE)
		index_del(dev, p->hs.local_index);
	p->hs = hs;
	update_endpoint(p, src);
	timers_any_authenticated_packet_traversal(p);
	timers_any_authenticated_packet_received(p);

	s = calloc(1, sizeof *s);
	if (!s)
		goto out;
	s->peer = p;
	s->created = now;
	replay_init(&s->replay);
	s->keys.local_index = index_add(dev, p, s);
	if (!s->keys.local_index ||
	    noise_create_response(&p->remote, &p->hs, s->keys.local_index, &resp, &s->keys) < 0 ||
	    session_bind_keys(s) < 0) {
		session_free(dev, s);   /* its index with it: the handshake no longer names one */
		OPENSSL_cleanse(&p->hs, sizeof p->hs);
		p->hs.state = HS_NONE;
		goto out;
	}
	noise_add_macs((uint8_t *)&resp, sizeof resp, p->remote.mac1_key,
		       cookie_valid(p) ? p->cookie : NULL);
	memcpy(p->last_mac1, resp.mac1, WG_MAC_LEN);
	/* A responder's session waits as "next" until the initiator uses it. */
	session_free(dev, p->next_session);
	p->next_session = s;
	timers_session_derived(p);
	timers_any_authenticated_packet_traversal(p);
	timers_any_authenticated_packet_sent(p);
	if (udp_send(p, &resp, sizeof resp) < 0)
		log_debug("unable to send a handshake response: %s", strerror(errno));
out:
	OPENSSL_cleanse(&hs, sizeof hs);
}

static void handle_response(struct device *dev, uint8_t *buf, size_t len,
			    const union sockaddr_any *src)
{
	struct msg_response *m = (struct msg_response *)buf;
	struct index_entry *e;
	struct session *s;
	struct peer *p;

	if (check_handshake_macs(dev, buf, len, noise_le32(m->sender), src) < 0)
		return;
	e = index_find(dev, noise_le32(m->receiver));
	if (!e || e->session)
		return;
	p = e->peer;
	s = calloc(1, sizeof *s);
	if (!s)
		return;
	if (noise_consume_response(&dev->local, &p->remote, &p->hs, m, &s->keys) < 0) {
		OPENSSL_cleanse(s, sizeof *s);   /* keys may be half derived */
		free(s);
		return;
	}
	if (session_bind_keys(s) < 0) {
		index_del(dev, s->keys.local_index);
		p->hs.state = HS_NONE;
		wg_aead_free(s->tx);
		wg_aead_free(s->rx);
		OPENSSL_cleanse(s, sizeof *s);
		free(s);
		return;
	}
	s->peer = p;
	s->created = loop_now_ms();
	replay_init(&s->replay);
	e->session = s; /* the handshake's index now names the session */
	/* The initiator uses the new session at once. */
	if (p->next_session) {
		session_free(dev, p->previous);
		p->previous = p->next_session;
		p->next_session = NULL;
		session_free(dev, p->current);
	} else {
		session_free(dev, p->previous);
		p->previous = p->current;
	}
	p->current = s;
	update_endpoint(p, src);
	timers_session_derived(p);
	timers_handshake_complete(p);
	timers_any_authenticated_packet_traversal(p);
	timers_any_authenticated_packet_received(p);
	/* Confirm the session to the responder, with data if some waits. */
	device_send_keepalive(p);
}

static void handle_cookie_reply(struct device *dev, uint8_t *buf)
{
	struct msg_cookie_reply *m = (struct msg_cookie_reply *)buf;
	struct index_entry *e = index_find(dev, noise_le32(m->receiver));
	uint8_t cookie[WG_MAC_LEN];

	if (!e)
		return;
	if (noise_consume_cookie_reply(m, &e->peer->remote, e->peer->last_mac1, cookie) < 0)
		return;
	memcpy(e->peer->cookie, cookie, WG_MAC_LEN);
	e->peer->cookie_time = loop_now_ms();
}

/* The inner packet's source and true length. */
static int inner_source(const uint8_t *pkt, size_t len, int *family, const uint8_t **addr,
			size_t *iplen)
{
	if (len >= 20 && pkt[0] >> 4 == 4) {
		*family = AF_INET;
		*addr = pkt + 12;
		*iplen = (size_t)pkt[2] << 8 | pkt[3];
	} else if (len >= 40 && pkt[0] >> 4 == 6) {
		*family = AF_INET6;
		*addr = pkt + 8;
		*iplen = ((size_t)pkt[4] << 8 | pkt[5]) + 40;
	} else {
		return -1;
	}
	return *iplen <= len && *iplen >= (*family == AF_INET ? 20u : 40u) ? 0 : -1;
}

static void tun_write_raw(struct device *dev, const uint8_t *pkt, size_t len, int single)
{
	struct vnet_hdr h = { .flags = VNET_F_DATA_VALID };
	uint8_t hdr[VNET_HDR_LEN];
	struct iovec iov[2] = { { hdr, VNET_HDR_LEN }, { (void *)pkt, len } };
	ssize_t n;

	vnet_hdr_write(hdr, &h);
	if (single)
		n = writev(dev->tun_fd, dev->vnet ? iov : iov + 1, dev->vnet ? 2 : 1);
	else
		n = write(dev->tun_fd, pkt, len); /* PKT carries its own header */
	if (n < 0 && errno != EAGAIN)
		log_debug("unable to write to %s: %s", dev->ifname, strerror(errno));
}

/* Write the pending coalesced packet, if any. */
void device_flush_tun(struct device *dev)
{
	if (dev->gro.len) {
		size_t total = gro_finish(&dev->gro);

		tun_write_raw(dev, dev->gro.buf, total, 0);
	}
}

/* Hand a decrypted packet to the kernel: TCP segments of one flow are
 * coalesced into one super-packet, written when the flow breaks or the
 * burst ends. */
static void tun_write(struct device *dev, const uint8_t *pkt, size_t len)
{
	int rc;

	if (!dev->vnet) {
		tun_write_raw(dev, pkt, len, 1);
		return;
	}
	rc = gro_add(&dev->gro, pkt, len);
	if (rc == 1)
		return;
	device_flush_tun(dev);
	if (rc == 0 && gro_add(&dev->gro, pkt, len) == 1)
		return;
	tun_write_raw(dev, pkt, len, 1);
}

static void handle_data(struct device *dev, uint8_t *buf, size_t len,
			const union sockaddr_any *src)
{
	struct index_entry *e = index_find(dev, noise_le32(buf + 4));
	uint64_t counter = noise_le64(buf + 8), now = loop_now_ms();
	size_t plen = len - MSG_DATA_MIN_LEN, iplen;
	uint8_t *plain = dev->buf2;
	const uint8_t *inner_src;
	struct session *s;
	struct peer *p;
	int family, confirmed = 0;

	if (!e || !e->session)
		return;
	s = e->session;
	p = e->peer;
	if (now - s->created >= timing.reject_after_time || counter >= REJECT_AFTER_MESSAGES)
		return;
	if (wg_aead_open_fast(s->rx, plain, counter, buf + MSG_DATA_HEADER_LEN, plen) < 0) {
		dev->dropped++;
		return;
	}
	if (!replay_accept(&s->replay, counter, REJECT_AFTER_MESSAGES)) {
		dev->dropped++;
		return;
	}
	/* The initiator's first packet on the responder's new session confirms it. */
	if (s == p->next_session) {
		session_free(dev, p->previous);
		p->previous = p->current;
		p->current = s;
		p->next_session = NULL;
		timers_handshake_complete(p);
		confirmed = 1;
	}
	update_endpoint(p, src);
	p->rx_bytes += len;
	timers_any_authenticated_packet_received(p);
	timers_any_authenticated_packet_traversal(p);
	/* Keep the key fresh: the initiator rekeys before its session expires. */
	if (p->current == s && s->keys.initiator &&
	    now - s->created > timing.reject_after_time - timing.keepalive_timeout - timing.rekey_timeout)
		device_send_handshake_initiation(p, 0);
	if (plen == 0) {
		/* a keepalive */
	} else if (inner_source(plain, plen, &family, &inner_src, &iplen) < 0 ||
		   allowedips_lookup(&dev->aips, family, inner_src) != p) {
		dev->dropped++;
	} else {
		timers_data_received(p);
		tun_write(dev, plain, iplen);
	}
	/* Last: sending reuses the buffer PLAIN points into. */
	if (confirmed)
		peer_flush_staged(p);
}

static void handle_message(struct device *dev, uint8_t *buf, size_t len,
			   const union sockaddr_any *src)
{
	if (len < 4 || !dev->local.has_key)
		return;
	switch (noise_le32(buf)) {
	case MSG_INITIATION:
		if (len == MSG_INITIATION_LEN)
			handle_initiation(dev, buf, len, src);
		break;
	case MSG_RESPONSE:
		if (len == MSG_RESPONSE_LEN)
			handle_response(dev, buf, len, src);
		break;
	case MSG_COOKIE_REPLY:
		if (len == MSG_COOKIE_REPLY_LEN)
			handle_cookie_reply(dev, buf);
		break;
	case MSG_DATA:
		if (len >= MSG_DATA_MIN_LEN)
			handle_data(dev, buf, len, src);
		break;
	default:
		break;
	}
}

static void normalise_source(union sockaddr_any *src)
{
	/* Treat v4-mapped sources as IPv4, so endpoints print as wg's do. */
	if (src->sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&src->in6.sin6_addr)) {
		struct sockaddr_in v4 = { .sin_family = AF_INET, .sin_port = src->in6.sin6_port };

		memcpy(&v4.sin_addr, src->in6.sin6_addr.s6_addr + 12, 4);
		src->in = v4;
	}
}

/* With UDP GRO the kernel hands over many datagrams of one flow at once,
 * with their size in a control message. */
void device_on_udp(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct device *dev = arg;

	(void)loop;
	(void)events;
	for (int burst = 0; burst < 64; burst++) {
		union sockaddr_any src;
		char control[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { .iov_base = dev->buf, .iov_len = MAX_PACKET };
		struct msghdr mh = {
			.msg_name = &src, .msg_namelen = sizeof src,
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = control, .msg_controllen = sizeof control,
		};
		ssize_t n = recvmsg(fd, &mh, 0);
		size_t segsize, off;

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_debug("udp receive: %s", strerror(errno));
			break;
		}
		segsize = (size_t)n;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
				int gso;

				memcpy(&gso, CMSG_DATA(cm), sizeof gso);
				if (gso > 0)
					segsize = (size_t)gso;
			}
		normalise_source(&src);
		for (off = 0; off < (size_t)n; off += segsize) {
			size_t len = (size_t)n - off < segsize ? (size_t)n - off : segsize;

			handle_message(dev, dev->buf + off, len, &src);
		}
	}
	device_flush_tun(dev);
}
