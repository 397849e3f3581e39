/* packet.c: the paths of a packet. From the TUN device: route by
 * destination to a peer, encrypt with its current session, send over UDP
 * (or stage it and start a handshake). From UDP: handshake messages and
 * cookie replies, or transport data: authenticate, check the replay window,
 * check the inner source against the peer's AllowedIPs, write to TUN. */
#include <arpa/inet.h>
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
	memcpy(out + MSG_DATA_HEADER_LEN, pkt, len);
	memset(out + MSG_DATA_HEADER_LEN + len, 0, padded - len);
	if (wg_aead_seal(dev->aead, out + MSG_DATA_HEADER_LEN, s->keys.send, counter,
			 out + MSG_DATA_HEADER_LEN, padded, NULL, 0) < 0)
		return -1;
	if (udp_send(p, out, MSG_DATA_HEADER_LEN + padded + WG_TAG_LEN) < 0) {
		dev->dropped++;
		return -1;
	}
	timers_any_authenticated_packet_traversal(p);
	timers_any_authenticated_packet_sent(p);
	if (len)
		timers_data_sent(p);
	/* Keep the key fresh: the initiator rekeys after time or messages. */
	if (s->keys.initiator &&
	    (counter > REKEY_AFTER_MESSAGES || now - s->created > timing.rekey_after_time))
		device_send_handshake_initiation(p, 0);
	return 0;
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

void device_on_tun(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct device *dev = arg;

	(void)loop;
	(void)events;
	for (int burst = 0; burst < 64; burst++) {
		ssize_t n = read(fd, dev->buf, MAX_PACKET);
		const uint8_t *dst;
		struct peer *p;
		int family;

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_error("unable to read from %s: %s", dev->ifname, strerror(errno));
			return;
		}
		if (packet_destination(dev->buf, (size_t)n, &family, &dst) < 0)
			continue;
		p = allowedips_lookup(&dev->aips, family, dst);
		if (!p) {
			dev->dropped++;
			continue;
		}
		device_send_packet(p, dev->buf, (size_t)n);
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

/* MAC1 always; MAC2 (a cookie bound to the source) when under load. 0:
 * go on; -1: drop (a cookie reply may have been sent). */
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
		return 0;
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
	    noise_create_response(&p->remote, &p->hs, s->keys.local_index, &resp, &s->keys) < 0) {
		session_free(dev, s);
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
	if (wg_aead_open(dev->aead, plain, s->keys.recv, counter, buf + MSG_DATA_HEADER_LEN, plen,
			 NULL, 0) < 0) {
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
		if (write(dev->tun_fd, plain, iplen) < 0 && errno != EAGAIN)
			log_debug("unable to write to %s: %s", dev->ifname, strerror(errno));
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

void device_on_udp(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct device *dev = arg;

	(void)loop;
	(void)events;
	for (int burst = 0; burst < 64; burst++) {
		union sockaddr_any src;
		socklen_t slen = sizeof src;
		ssize_t n = recvfrom(fd, dev->buf, MAX_PACKET, 0, &src.sa, &slen);

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_debug("udp receive: %s", strerror(errno));
			return;
		}
		/* Treat v4-mapped sources as IPv4, so endpoints print as wg's do. */
		if (src.sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&src.in6.sin6_addr)) {
			struct sockaddr_in v4 = { .sin_family = AF_INET, .sin_port = src.in6.sin6_port };

			memcpy(&v4.sin_addr, src.in6.sin6_addr.s6_addr + 12, 4);
			src.in = v4;
		}
		handle_message(dev, dev->buf, (size_t)n, &src);
	}
}
