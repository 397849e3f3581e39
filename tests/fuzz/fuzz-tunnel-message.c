/* fuzz: p2p-tunnel */
/* fuzz-tunnel-message.c: UDP datagrams into p2p-tunnel's message parser
 * (handle_message in packet.c, static), through its public entry
 * device_on_udp() reading a real socket.
 *
 *   harness H4 127.0.0.1 ---UDP---> D4 127.0.0.1   device (udp4 = D4)
 *   harness H6 ::1       ---UDP---> D6 ::1                (udp6 = D6)
 *   harness T1 <--AF_UNIX datagrams--> T0                 (tun_fd = T0)
 *
 * Per input, a fresh device with a private key and two peers: PEER (its
 * key is the harness's: the harness speaks for it) with AllowedIPs
 * 10.0.0.0/24 and fd00:1::/64 and, unless the input says otherwise, a
 * current session with known keys; and PEER2, 10.0.1.0/24, never heard
 * from. The device's replies (to H4/H6) and its TUN writes (to T1) are read
 * after every step.
 *
 * Input: one flags byte (bit 0: no session to start with; bit 1: PEER has no
 * endpoint; bit 2: TUN with virtio headers, so TSO split and GRO; bit 3: no
 * UDP GSO), then records [op][len lo][len hi][len bytes], at most 32:
 *
 *   op % 8 == 0  RAW      the bytes as one datagram
 *   op % 8 == 1  MACS     the bytes with a valid mac1 (and, op bit 0x40 and a
 *                         cookie in hand, mac2) over them: handshake parsing
 *                         past the MAC check
 *   op % 8 == 2  DATA     a transport message sealed with a session the
 *                         harness holds: byte 0 flags (0x07 session, 0x08 an
 *                         explicit receiver index follows, 0x10 make the
 *                         plaintext an IP packet from PEER's AllowedIPs, 0x20
 *                         IPv6, 0x40 an explicit counter follows, 0x80 a count
 *                         byte follows: that many copies under consecutive
 *                         counters, TCP sequence numbers advanced, in one UDP
 *                         GSO send that the device receives as one GRO batch),
 *                         the rest the plaintext
 *   op % 8 == 3  INIT     a genuine initiation from PEER (byte 0 bit 0x01: an
 *                         explicit 12-byte timestamp follows, a replay)
 *   op % 8 == 4  RESP     a genuine response to the device's last initiation
 *                         (byte 0 non-zero: flip bit byte0 % 8 of byte byte1)
 *   op % 8 == 5  COOKIE   a genuine cookie reply to the device's last
 *                         handshake message, the cookie from the bytes
 *   op % 8 == 6  TUN      the bytes as a packet read from the TUN device
 *                         (with virtio headers: its first 10 bytes are one)
 *   op % 8 == 7  TIME     byte 0: 0x01 under load (cookies demanded), 0x02 the
 *                         initiation flood limit passed, 0x04 every session
 *                         older by byte 1 seconds
 *   op bit 0x80: send from ::1 (when the host has IPv6)
 *
 * Checks beyond the sanitizers: every packet written to TUN is a whole IP
 * packet from PEER's AllowedIPs (with virtio headers: a coalesced one has a
 * TCP GSO header that matches it); every transport message the device sends
 * on a session the harness holds authenticates, with a counter never used
 * before (nonce reuse); every initiation the device sends opens with PEER's
 * keys and carries the device's static key. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "device.h"
#include "key.h"

#define MAX_RECORDS 32
#define MAX_HANDSHAKES 3     /* INIT and RESP records per input; more are RAW */
#define NSESS 8
#define REMOTE_INDEX0 0x01020304u
#define MTU 1420
#define MAX_BATCH 16

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The harness's view of one session with the device. */
struct hsess {
	uint8_t send[WG_KEY_LEN], recv[WG_KEY_LEN];
	uint32_t their;          /* the device's index: our receiver field */
	uint32_t ours;           /* ours: the device's receiver field */
	uint64_t next_counter;   /* what we send next */
	uint64_t seen_max;       /* greatest counter the device sent us, +1 */
	int used;
};

static struct {
	int d4, d6, h4, h6, t0, t1;
	union sockaddr_any h4_addr, h6_addr;
	uint8_t dev_priv[WG_KEY_LEN], peer_priv[WG_KEY_LEN], peer2_pub[WG_KEY_LEN];
	uint8_t psk[WG_KEY_LEN];
	struct noise_local dev_local;      /* what device_set_private_key computes */
	struct noise_remote dev_peer;      /* the device's view of PEER */
	struct noise_remote dev_peer2;
	struct noise_local peer_local;     /* PEER's identity: the harness */
	struct noise_remote peer_remote;   /* PEER's view of the device */
	struct wg_aead *aead;
	uint8_t *pkt;
	/* The device's packet buffers, kept from input to input: scratch
	 * space only (main.c never frees them before exit either), and
	 * 300 KiB of fresh pages per input cost more than the input. */
	uint8_t *buf, *buf2, *seg, *gro_buf;
} g;

/* Per input. */
static struct {
	struct hsess s[NSESS];
	unsigned nsess;
	struct noise_handshake pending;    /* our initiation, awaiting the response */
	struct noise_handshake init_hs;    /* the device's last initiation, consumed */
	int have_init;
	uint8_t last_hs_mac1[WG_MAC_LEN];  /* of the device's last handshake message */
	uint32_t last_hs_sender;
	int have_hs;
	uint8_t cookie[WG_MAC_LEN];        /* from the device's cookie reply */
	int have_cookie;
	uint64_t ts_seq;
	uint32_t next_index;
} st;

static void fail(const char *what)
{
	fprintf(stderr, "fuzz-tunnel-message: %s\n", what);
	abort();
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		fail("fcntl failed");
}

static int udp_socket(int family, int gro, union sockaddr_any *bound)
{
	union sockaddr_any sa;
	socklen_t len;
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	int size = 1 << 20;

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	if (family == AF_INET) {
		sa.in.sin_family = AF_INET;
		sa.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof sa.in;
	} else {
		sa.in6.sin6_family = AF_INET6;
		sa.in6.sin6_addr = in6addr_loopback;
		len = sizeof sa.in6;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
	/* The device's, as udp.c does: a GSO batch from the harness arrives
	 * as one. The harness's get the device's batches datagram by datagram. */
	if (gro)
		setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one);
	if (bind(fd, &sa.sa, len) < 0 || getsockname(fd, &sa.sa, &len) < 0) {
		close(fd);
		return -1;
	}
	if (bound)
		*bound = sa;
	return fd;
}

static void connect_to(int fd, int peer)
{
	union sockaddr_any sa;
	socklen_t len = sizeof sa;

	if (getsockname(peer, &sa.sa, &len) < 0 || connect(fd, &sa.sa, len) < 0)
		fail("unable to connect the harness socket to the device's");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t peer_pub[WG_KEY_LEN], p2[WG_KEY_LEN];
	int t[2];

	(void)argc;
	(void)argv;
	if (wg_crypto_init() < 0)
		fail("OpenSSL lacks BLAKE2s");
	/* Fixed keys: the same input takes the same path every run. */
	for (int i = 0; i < WG_KEY_LEN; i++) {
		g.dev_priv[i] = (uint8_t)(0x11 + i);
		g.peer_priv[i] = (uint8_t)(0x77 + 3 * i);
		p2[i] = (uint8_t)(0xa0 ^ i);
		g.psk[i] = (uint8_t)(0x5a + i);
	}
	g.dev_priv[0] &= 248, g.dev_priv[31] = (g.dev_priv[31] & 127) | 64;
	g.peer_priv[0] &= 248, g.peer_priv[31] = (g.peer_priv[31] & 127) | 64;
	p2[0] &= 248, p2[31] = (p2[31] & 127) | 64;
	if (noise_local_set(&g.dev_local, g.dev_priv) < 0 ||
	    noise_local_set(&g.peer_local, g.peer_priv) < 0 || key_public(g.peer2_pub, p2) < 0)
		fail("unable to derive the keys");
	memcpy(peer_pub, g.peer_local.pub, WG_KEY_LEN);
	noise_remote_init(&g.dev_peer, &g.dev_local, peer_pub, g.psk);
	noise_remote_init(&g.dev_peer2, &g.dev_local, g.peer2_pub, NULL);
	noise_remote_init(&g.peer_remote, &g.peer_local, g.dev_local.pub, g.psk);
	if (!g.dev_peer.ss_ok || !g.peer_remote.ss_ok)
		fail("no static-static DH");

	g.d4 = udp_socket(AF_INET, 1, NULL);
	g.h4 = udp_socket(AF_INET, 0, &g.h4_addr);
	if (g.d4 < 0 || g.h4 < 0)
		fail("unable to bind UDP sockets on 127.0.0.1 (is lo up?)");
	connect_to(g.h4, g.d4);
	g.d6 = udp_socket(AF_INET6, 1, NULL);
	g.h6 = g.d6 >= 0 ? udp_socket(AF_INET6, 0, &g.h6_addr) : -1;
	if (g.h6 >= 0)
		connect_to(g.h6, g.d6);
	else if (g.d6 >= 0)
		close(g.d6), g.d6 = -1;
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, t) < 0)
		fail("socketpair failed");
	g.t0 = t[0];
	g.t1 = t[1];
	set_nonblock(g.t0);
	set_nonblock(g.t1);
	g.aead = wg_aead_new();
	g.pkt = malloc(MAX_PACKET + 64);
	g.buf = malloc(MAX_PACKET + 64);
	g.buf2 = malloc(MAX_PACKET + 64);
	g.seg = malloc((size_t)MAX_SEGMENTS * (MTU + 64));
	g.gro_buf = malloc(VNET_HDR_LEN + MAX_PACKET + 64);
	if (!g.aead || !g.pkt || !g.buf || !g.buf2 || !g.seg || !g.gro_buf)
		fail("out of memory");
	return 0;
}

static void drain(int fd)
{
	while (fd >= 0 && recv(fd, g.pkt, MAX_PACKET, 0) >= 0)
		;
}

static struct hsess *add_session(const struct noise_keys *k)
{
	struct hsess *s = &st.s[st.nsess < NSESS ? st.nsess++ : (st.ts_seq % NSESS)];

	memset(s, 0, sizeof *s);
	memcpy(s->send, k->send, WG_KEY_LEN);
	memcpy(s->recv, k->recv, WG_KEY_LEN);
	s->ours = k->local_index;
	s->their = k->remote_index;
	s->used = 1;
	return s;
}

static uint32_t our_index(void)
{
	return ++st.next_index * 0x9e3779b1u | 1;
}

/* ---- what the device sends ---- */

static void check_ip_packet(const uint8_t *p, size_t n)
{
	if (n >= 20 && p[0] >> 4 == 4) {
		if (((size_t)p[2] << 8 | p[3]) != n)
			fail("an IPv4 packet written to TUN with the wrong length");
		if (p[12] != 10 || p[13] != 0 || p[14] != 0)
			fail("an IPv4 packet from outside PEER's AllowedIPs written to TUN");
	} else if (n >= 40 && p[0] >> 4 == 6) {
		static const uint8_t net[8] = { 0xfd, 0x00, 0x00, 0x01 };

		if (((size_t)p[4] << 8 | p[5]) + 40 != n)
			fail("an IPv6 packet written to TUN with the wrong length");
		if (memcmp(p + 8, net, 8))
			fail("an IPv6 packet from outside PEER's AllowedIPs written to TUN");
	} else {
		fail("something not an IP packet written to TUN");
	}
}

static void check_tun_packet(int vnet, const uint8_t *p, size_t n)
{
	struct vnet_hdr h;
	size_t iphlen;

	if (!vnet) {
		check_ip_packet(p, n);
		return;
	}
	if (n < VNET_HDR_LEN)
		fail("a TUN write shorter than its virtio header");
	vnet_hdr_read(&h, p);
	p += VNET_HDR_LEN, n -= VNET_HDR_LEN;
	check_ip_packet(p, n);
	if (h.gso_type == VNET_GSO_NONE) {
		if (h.flags != VNET_F_DATA_VALID)
			fail("a plain TUN write whose virtio header is not DATA_VALID");
		return;
	}
	if (h.gso_type != (p[0] >> 4 == 4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6))
		fail("a coalesced TUN write with the wrong GSO type");
	iphlen = p[0] >> 4 == 4 ? (size_t)(p[0] & 15) * 4 : 40;
	if ((p[0] >> 4 == 4 ? p[9] : p[6]) != 6)
		fail("a coalesced TUN write that is not TCP");
	if (h.flags != VNET_F_NEEDS_CSUM || h.csum_start != iphlen || h.csum_offset != 16 ||
	    h.gso_size == 0 || h.hdr_len < iphlen + 20 || h.hdr_len >= n ||
	    h.hdr_len != iphlen + (size_t)(p[iphlen + 12] >> 4) * 4 ||
	    n - h.hdr_len <= h.gso_size || n - h.hdr_len > 64u * h.gso_size)
		fail("a coalesced TUN write whose virtio header does not match it");
}

static void on_device_data(const uint8_t *p, size_t n)
{
	uint32_t rx = noise_le32(p + 4);
	uint64_t counter = noise_le64(p + 8);

	if (n < MSG_DATA_MIN_LEN)
		fail("a transport message shorter than its header and tag");
	/* Padded to 16 bytes, or to the MTU when that is less. */
	if ((n - MSG_DATA_MIN_LEN) % 16 && n - MSG_DATA_MIN_LEN != MTU)
		fail("a transport message not padded to 16 bytes or the MTU");
	for (unsigned i = 0; i < st.nsess; i++) {
		struct hsess *s = &st.s[i];

		if (!s->used || s->ours != rx)
			continue;
		if (wg_aead_open(g.aead, g.pkt, s->recv, counter, p + MSG_DATA_HEADER_LEN,
				 n - MSG_DATA_MIN_LEN, NULL, 0) < 0)
			fail("a transport message from the device does not authenticate");
		if (counter < s->seen_max)
			fail("the device reused a nonce (counter not increasing on a session)");
		s->seen_max = counter + 1;
		return;
	}
}

static void on_device_initiation(const uint8_t *p)
{
	struct noise_handshake hs;
	uint8_t who[WG_KEY_LEN];
	static const uint8_t zero[TAI64N_LEN];
	const struct msg_initiation *m = (const void *)p;

	if (noise_check_mac1(p, MSG_INITIATION_LEN, g.peer_local.mac1_key) < 0)
		fail("an initiation from the device with a wrong mac1");
	if (noise_consume_initiation_static(&g.peer_local, m, &hs, who) < 0 ||
	    memcmp(who, g.dev_local.pub, WG_KEY_LEN) ||
	    noise_consume_initiation_finish(&g.peer_remote, m, &hs, zero) < 0)
		fail("an initiation from the device does not open with PEER's keys");
	st.init_hs = hs; /* RESP answers it */
	st.have_init = 1;
}

static void on_device_response(const uint8_t *p)
{
	struct noise_keys k;

	if (noise_check_mac1(p, MSG_RESPONSE_LEN, g.peer_local.mac1_key) < 0)
		fail("a response from the device with a wrong mac1");
	if (st.pending.state == HS_INITIATION_SENT &&
	    noise_consume_response(&g.peer_local, &g.peer_remote, &st.pending,
				   (const struct msg_response *)p, &k) == 0)
		add_session(&k);
}

static void on_device_cookie(const uint8_t *p, const uint8_t *mac1)
{
	uint8_t cookie[WG_MAC_LEN];

	if (noise_consume_cookie_reply((const struct msg_cookie_reply *)p, &g.peer_remote, mac1,
				       cookie) == 0) {
		memcpy(st.cookie, cookie, WG_MAC_LEN);
		st.have_cookie = 1;
	}
}

/* Everything the device sent since the last look; MAC1 is that of the
 * handshake message we sent last (for cookie replies). */
static void collect(const struct device *dev, const uint8_t *sent_mac1)
{
	int fds[2] = { g.h4, g.h6 };
	ssize_t n;

	for (int i = 0; i < 2; i++) {
		while (fds[i] >= 0 && (n = recv(fds[i], g.pkt, MAX_PACKET, 0)) >= 0) {
			static uint8_t msg[MAX_PACKET + 64];
			size_t len = (size_t)n;

			memcpy(msg, g.pkt, len);
			if (len < 4)
				fail("a datagram from the device shorter than a message type");
			switch (noise_le32(msg)) {
			case MSG_INITIATION:
				if (len != MSG_INITIATION_LEN)
					fail("an initiation of the wrong length");
				on_device_initiation(msg);
				memcpy(st.last_hs_mac1, msg + len - 2 * WG_MAC_LEN, WG_MAC_LEN);
				st.last_hs_sender = noise_le32(msg + 4);
				st.have_hs = 1;
				break;
			case MSG_RESPONSE:
				if (len != MSG_RESPONSE_LEN)
					fail("a response of the wrong length");
				on_device_response(msg);
				memcpy(st.last_hs_mac1, msg + len - 2 * WG_MAC_LEN, WG_MAC_LEN);
				st.last_hs_sender = noise_le32(msg + 4);
				st.have_hs = 1;
				break;
			case MSG_COOKIE_REPLY:
				if (len != MSG_COOKIE_REPLY_LEN)
					fail("a cookie reply of the wrong length");
				if (sent_mac1)
					on_device_cookie(msg, sent_mac1);
				break;
			case MSG_DATA:
				on_device_data(msg, len);
				break;
			default:
				fail("the device sent a message of an unknown type");
			}
		}
	}
	while ((n = recv(g.t1, g.pkt, MAX_PACKET, 0)) >= 0)
		check_tun_packet(dev->vnet, g.pkt, (size_t)n);
}

/* ---- what the harness sends ---- */

static void deliver(struct device *dev, int v6, const uint8_t *msg, size_t len,
		    const uint8_t *mac1)
{
	int fd = v6 && g.h6 >= 0 ? g.h6 : g.h4;

	if (send(fd, msg, len, 0) < 0 && errno != EMSGSIZE)
		fail("unable to send to the device");
	device_on_udp(dev->loop, v6 && g.d6 >= 0 ? g.d6 : g.d4, EPOLLIN, dev);
	collect(dev, mac1);
}

/* COUNT messages of SEGLEN bytes back to back, as one UDP GSO send (or
 * one by one where the kernel refuses that). */
static void deliver_batch(struct device *dev, int v6, const uint8_t *msgs, size_t seglen,
			  int count)
{
	int fd = v6 && g.h6 >= 0 ? g.h6 : g.h4;
	char control[CMSG_SPACE(sizeof(uint16_t))] = { 0 };
	struct iovec iov = { .iov_base = (void *)msgs, .iov_len = seglen * (size_t)count };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control, .msg_controllen = sizeof control,
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	uint16_t size = (uint16_t)seglen;

	cm->cmsg_level = SOL_UDP;
	cm->cmsg_type = UDP_SEGMENT;
	cm->cmsg_len = CMSG_LEN(sizeof size);
	memcpy(CMSG_DATA(cm), &size, sizeof size);
	if (seglen * (size_t)count > 65000 || sendmsg(fd, &mh, 0) < 0) {
		for (int i = 0; i < count; i++)
			(void)!send(fd, msgs + (size_t)i * seglen, seglen, 0);
	}
	device_on_udp(dev->loop, v6 && g.d6 >= 0 ? g.d6 : g.d4, EPOLLIN, dev);
	collect(dev, NULL);
}

static void add_macs(uint8_t *msg, size_t len, int want_mac2)
{
	noise_add_macs(msg, len, g.peer_remote.mac1_key,
		       want_mac2 && st.have_cookie ? st.cookie : NULL);
}

static void op_macs(struct device *dev, int v6, int want_mac2, const uint8_t *b, size_t n)
{
	uint8_t mac1[WG_MAC_LEN] = { 0 };

	memcpy(g.pkt, b, n);
	if (n >= 2 * WG_MAC_LEN) {
		add_macs(g.pkt, n, want_mac2);
		memcpy(mac1, g.pkt + n - 2 * WG_MAC_LEN, WG_MAC_LEN);
	}
	deliver(dev, v6, g.pkt, n, mac1);
}

/* Advance the TCP sequence number of an IPv4 or IPv6 TCP packet by its
 * payload, so that copies of it continue one flow (GRO merges them). */
static void next_segment(uint8_t *p, size_t n)
{
	size_t iphlen, hdrlen;
	uint32_t seq;

	if (n >= 20 && p[0] >> 4 == 4 && p[9] == 6)
		iphlen = (size_t)(p[0] & 15) * 4;
	else if (n >= 40 && p[0] >> 4 == 6 && p[6] == 6)
		iphlen = 40;
	else
		return;
	if (iphlen < 20 || n < iphlen + 20)
		return;
	hdrlen = iphlen + (size_t)(p[iphlen + 12] >> 4) * 4;
	if (hdrlen > n)
		return;
	seq = (uint32_t)p[iphlen + 4] << 24 | (uint32_t)p[iphlen + 5] << 16 |
	      (uint32_t)p[iphlen + 6] << 8 | p[iphlen + 7];
	seq += (uint32_t)(n - hdrlen);
	p[iphlen + 4] = (uint8_t)(seq >> 24), p[iphlen + 5] = (uint8_t)(seq >> 16);
	p[iphlen + 6] = (uint8_t)(seq >> 8), p[iphlen + 7] = (uint8_t)seq;
}

static void op_data(struct device *dev, int v6, const uint8_t *b, size_t n)
{
	static uint8_t msgs[MAX_BATCH * (MAX_PACKET + 64)];
	uint8_t flags = n ? b[0] : 0, *plain = g.pkt;
	struct hsess none = { .their = 0 }, *s = &none;
	uint32_t rx;
	uint64_t counter;
	size_t plen, seglen;
	int count = 1;

	if (n)
		b++, n--;
	if (st.nsess)
		s = &st.s[(flags & 7) % st.nsess];
	rx = s->their;
	if ((flags & 0x08) && n >= 4) {
		rx = noise_le32(b);
		b += 4, n -= 4;
	}
	counter = s->next_counter;
	if ((flags & 0x40) && n >= 8) {
		counter = noise_le64(b);
		b += 8, n -= 8;
	}
	if ((flags & 0x80) && n >= 1) {
		count = 2 + b[0] % (MAX_BATCH - 1);
		b++, n--;
	}
	plen = n;
	if (plen > MAX_PACKET - MSG_DATA_MIN_LEN)
		plen = MAX_PACKET - MSG_DATA_MIN_LEN;
	if (count > 1 && plen > 4000)
		plen = 4000; /* a GSO batch stays under 64 KiB */
	memcpy(plain, b, plen);
	if ((flags & 0x10) && !(flags & 0x20) && plen >= 20) {
		plain[0] = (uint8_t)(0x40 | (plain[0] & 0x0f));
		plain[2] = (uint8_t)(plen >> 8), plain[3] = (uint8_t)plen;
		plain[12] = 10, plain[13] = 0, plain[14] = 0;
	} else if ((flags & 0x10) && plen >= 40) {
		plain[0] = (uint8_t)(0x60 | (plain[0] & 0x0f));
		plain[4] = (uint8_t)((plen - 40) >> 8), plain[5] = (uint8_t)(plen - 40);
		plain[8] = 0xfd, plain[9] = 0, plain[10] = 0, plain[11] = 1;
		memset(plain + 12, 0, 4);
	}
	seglen = MSG_DATA_MIN_LEN + plen;
	for (int i = 0; i < count; i++) {
		uint8_t *msg = msgs + (size_t)i * seglen;

		noise_put_le32(msg, MSG_DATA);
		noise_put_le32(msg + 4, rx);
		noise_put_le64(msg + 8, counter + (uint64_t)i);
		if (wg_aead_seal(g.aead, msg + MSG_DATA_HEADER_LEN, s->send, counter + (uint64_t)i,
				 plain, plen, NULL, 0) < 0)
			fail("unable to seal");
		next_segment(plain, plen);
	}
	if (!(flags & 0x40))
		s->next_counter += (uint64_t)count;
	if (count == 1)
		deliver(dev, v6, msgs, seglen, NULL);
	else
		deliver_batch(dev, v6, msgs, seglen, count);
}

static void op_init(struct device *dev, int v6, int want_mac2, const uint8_t *b, size_t n)
{
	struct msg_initiation m;
	uint8_t ts[TAI64N_LEN];
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	/* Each of ours is newer than the last, unless the input replays one. */
	noise_tai64n(ts, (uint64_t)now.tv_sec * 1000000000u + (++st.ts_seq << 25));
	if (n >= 1 + TAI64N_LEN && (b[0] & 1))
		memcpy(ts, b + 1, TAI64N_LEN);
	if (noise_create_initiation(&g.peer_local, &g.peer_remote, &st.pending, our_index(), ts,
				    &m) < 0)
		fail("unable to create an initiation");
	add_macs((uint8_t *)&m, sizeof m, want_mac2);
	deliver(dev, v6, (uint8_t *)&m, sizeof m, m.mac1);
}

static void op_resp(struct device *dev, int v6, int want_mac2, const uint8_t *b, size_t n)
{
	struct noise_handshake hs = st.init_hs; /* a copy: RESP may answer it twice */
	struct msg_response m;
	struct noise_keys k;

	if (!st.have_init)
		return;
	if (noise_create_response(&g.peer_remote, &hs, our_index(), &m, &k) < 0)
		fail("unable to answer the device's initiation");
	add_session(&k);
	add_macs((uint8_t *)&m, sizeof m, want_mac2);
	if (n >= 2 && b[0])
		((uint8_t *)&m)[b[1] % sizeof m] ^= (uint8_t)(1u << (b[0] % 8));
	deliver(dev, v6, (uint8_t *)&m, sizeof m, m.mac1);
}

static void op_cookie(struct device *dev, int v6, const uint8_t *b, size_t n)
{
	struct msg_cookie_reply m;
	uint8_t cookie[WG_MAC_LEN] = { 0 };

	if (!st.have_hs)
		return;
	memcpy(cookie, b, n < WG_MAC_LEN ? n : WG_MAC_LEN);
	if (noise_create_cookie_reply(&m, &g.peer_local, st.last_hs_sender, cookie,
				      st.last_hs_mac1) < 0)
		fail("unable to create a cookie reply");
	deliver(dev, v6, (uint8_t *)&m, sizeof m, NULL);
}

static void op_tun(struct device *dev, const uint8_t *b, size_t n)
{
	if (send(g.t1, b, n, 0) < 0)
		return;
	device_on_tun(dev->loop, g.t0, EPOLLIN, dev);
	collect(dev, NULL);
}

static void age(struct session *s, uint64_t ms)
{
	if (s)
		s->created -= ms;
}

static void op_time(struct device *dev, struct peer *peer, const uint8_t *b, size_t n)
{
	uint8_t flags = n ? b[0] : 0;

	if (flags & 1) {
		dev->load_window_start = loop_now_ms();
		dev->load_count = UNDER_LOAD_HANDSHAKES;
	}
	if (flags & 2)
		peer->last_initiation_consumed = 0;
	if ((flags & 4) && n >= 2) {
		uint64_t ms = (uint64_t)b[1] * 1000;

		age(peer->current, ms);
		age(peer->previous, ms);
		age(peer->next_session, ms);
	}
}

/* ---- one input ---- */

static struct device *device_new(uint8_t flags, struct peer **peerp)
{
	struct device *dev = calloc(1, sizeof *dev);
	struct peer *peer, *peer2;
	struct prefix pfx;

	if (!dev)
		fail("out of memory");
	dev->mtu = MTU;
	dev->udp4 = g.d4;
	dev->udp6 = g.d6;
	dev->tun_fd = g.t0;
	dev->loop = loop_new();
	dev->aead = wg_aead_new();
	dev->buf = g.buf;
	dev->buf2 = g.buf2;
	dev->seg = g.seg;
	dev->gro.buf = g.gro_buf;
	dev->vnet = !!(flags & 4);
	dev->udp_gso = !(flags & 8);
	if (!dev->loop || !dev->aead || !dev->buf || !dev->buf2 || !dev->seg || !dev->gro.buf)
		fail("out of memory");
	/* The state "private_key=..., public_key=..., preshared_key=..." leaves,
	 * from structures computed once: three X25519 fewer per input. */
	peer2 = peer_create(dev, g.peer2_pub);
	peer = peer_create(dev, g.peer_local.pub);
	if (!peer || !peer2)
		fail("out of memory");
	dev->local = g.dev_local;
	peer->remote = g.dev_peer;
	peer2->remote = g.dev_peer2;
	if (prefix_parse("10.0.0.0/24", &pfx, 0, 0) < 0 ||
	    allowedips_insert(&dev->aips, &pfx, peer) < 0 ||
	    prefix_parse("fd00:1::/64", &pfx, 0, 0) < 0 ||
	    allowedips_insert(&dev->aips, &pfx, peer) < 0 ||
	    prefix_parse("10.0.1.0/24", &pfx, 0, 0) < 0 ||
	    allowedips_insert(&dev->aips, &pfx, peer2) < 0)
		fail("unable to set AllowedIPs");
	if (!(flags & 2)) {
		peer->endpoint = g.h4_addr;
		peer->has_endpoint = 1;
	}
	if (!(flags & 1)) {
		struct session *s = calloc(1, sizeof *s);
		struct noise_keys k;

		if (!s)
			fail("out of memory");
		s->peer = peer;
		s->created = loop_now_ms();
		replay_init(&s->replay);
		for (int i = 0; i < WG_KEY_LEN; i++) {
			s->keys.send[i] = (uint8_t)(0x30 + i);
			s->keys.recv[i] = (uint8_t)(0xc0 - i);
		}
		s->keys.local_index = index_add(dev, peer, s);
		s->keys.remote_index = REMOTE_INDEX0;
		s->keys.initiator = 1;
		if (!s->keys.local_index || session_bind_keys(s) < 0)
			fail("unable to set up the session");
		peer->current = s;
		/* The same session from PEER's side. */
		memcpy(k.send, s->keys.recv, WG_KEY_LEN);
		memcpy(k.recv, s->keys.send, WG_KEY_LEN);
		k.local_index = REMOTE_INDEX0;
		k.remote_index = s->keys.local_index;
		add_session(&k);
	}
	*peerp = peer;
	return dev;
}

static void device_free(struct device *dev)
{
	peer_remove_all(dev);
	allowedips_free(&dev->aips);
	wg_aead_free(dev->aead);
	free(dev->index);
	loop_free(dev->loop);
	free(dev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct device *dev;
	struct peer *peer;
	unsigned handshakes = 0;
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = data[0];
	data++, size--;
	memset(&st, 0, sizeof st);
	drain(g.d4), drain(g.d6), drain(g.h4), drain(g.h6), drain(g.t0), drain(g.t1);
	dev = device_new(flags, &peer);

	for (int r = 0; r < MAX_RECORDS && size >= 1; r++) {
		uint8_t op = data[0];
		size_t n = size >= 3 ? (size_t)data[1] | (size_t)data[2] << 8 : 0;
		const uint8_t *b = data + (size >= 3 ? 3 : size);
		int v6 = op & 0x80, mac2 = op & 0x40;

		size -= size >= 3 ? 3 : size;
		if (n > size)
			n = size;
		data = b + n;
		size -= n;
		if ((op % 8 == 3 || op % 8 == 4) && ++handshakes > MAX_HANDSHAKES)
			op = (uint8_t)(op & ~7); /* RAW: keep the slow ones few */
		switch (op % 8) {
		case 0: deliver(dev, v6, b, n, NULL); break;
		case 1: op_macs(dev, v6, mac2, b, n); break;
		case 2: op_data(dev, v6, b, n); break;
		case 3: op_init(dev, v6, mac2, b, n); break;
		case 4: op_resp(dev, v6, mac2, b, n); break;
		case 5: op_cookie(dev, v6, b, n); break;
		case 6: op_tun(dev, b, n); break;
		case 7: op_time(dev, peer, b, n); break;
		}
	}
	device_free(dev);
	memset(&st, 0, sizeof st);
	return 0;
}
