/* server.c: a query's path. Parse strictly (FORMERR or silence for what
 * does not parse); a name under a private zone is answered from the map
 * and never leaves; anything else goes to libunbound, and its answer goes
 * back with the client's id and the question's case, truncated to what the
 * client takes over UDP (TC tells it to retry over TCP). */
#include "dnsd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#define TCP_IDLE_MS 10000
#define TCP_MAX_CONNS 256
#define TCP_OUT_MAX (1u << 20)
#define MAX_LISTENERS 16
/* UDP in batches: one recvmmsg takes up to UDP_BATCH queries and one
 * sendmmsg sends their answers, UDP_BURSTS times per wake-up (then the
 * loop serves its other fds). Each system call costs about as much as the
 * answer itself, so this is most of what a query costs us. */
#define UDP_BATCH 32
#define UDP_BURSTS 2
/* Room for one immediate UDP answer: those are capped at DNS_EDNS_SIZE
 * (dns_udp_limit), error answers at a header, a question and an OPT. */
#define UDP_REPLY_MAX 2048

union sa_any {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

struct tcp_conn {
	struct server *srv;
	struct tcp_conn *prev, *next;
	int fd;
	int refs;          /* the connection, and each query in flight */
	int closed;
	uint8_t in[2 + DNSD_MAX_MSG];
	size_t inlen;
	uint8_t *out;
	size_t outlen, outcap;
	struct loop_timer *idle;
};

/* A forwarded query waiting for its answer. */
struct waiting {
	struct server *srv;
	struct dns_query q;
	size_t limit;
	int udp_fd;
	union sa_any client;
	socklen_t client_len;
	struct tcp_conn *conn;   /* NULL for UDP */
};

/* The buffers of one UDP batch, kept for the server's life. */
struct udp_batch {
	struct mmsghdr in[UDP_BATCH], out[UDP_BATCH];
	struct iovec in_iov[UDP_BATCH], out_iov[UDP_BATCH];
	union sa_any from[UDP_BATCH];
	uint8_t *in_buf;                          /* UDP_BATCH slots of DNSD_MAX_MSG */
	uint8_t out_buf[UDP_BATCH][UDP_REPLY_MAX];
};

struct server {
	struct loop *loop;
	struct zones *zones;
	struct forwarder *fwd;
	struct dnsd_stats *st;
	int fds[2 * MAX_LISTENERS];
	int nfds;
	struct tcp_conn *conns;
	size_t nconns;
	uint8_t reply[DNSD_MAX_MSG + 2];
	struct udp_batch *udp;
	struct answer_cache *cache;        /* libunbound's answers (cache.c) */
	uint8_t cached[CACHE_ANSWER_MAX];  /* one of them, its TTLs brought down */
};

/* ---- answers from libunbound ---- */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The answer as the client must see it: its id, its question's case, an
 * OPT when it sent one, and no more than it accepts. Returns the length. */
static size_t finish_forwarded(uint8_t *out, size_t cap, const uint8_t *answer, size_t len,
			       const struct dns_query *q, size_t limit)
{
	size_t qend = DNS_HEADER_LEN + q->wire_name_len + 4;
	int add_opt;

	if (len < qend || len > cap - 11 || get16(answer + 4) != 1 ||
	    strncasecmp((const char *)answer + DNS_HEADER_LEN, (const char *)q->wire_name,
			q->wire_name_len) != 0)
		return 0;
	/* libunbound's own OPT is not the client's business: it gets ours
	 * when it sent one, none when it did not (RFC 6891 7); and DNSSEC
	 * records only when it set DO (RFC 4035 3.2.1). */
	len = dns_strip_answer(answer, len, out, cap - 11, !q->edns_do);
	if (len < qend)
		return 0;
	put16(out, q->id);
	memcpy(out + DNS_HEADER_LEN, q->wire_name, q->wire_name_len);
	/* RD as the client asked, RA since we recurse for it; AD (set by
	 * forward.c when validated) only to a client that asked with AD or DO
	 * (RFC 6840 5.7); CD echoed. */
	out[2] = (uint8_t)((out[2] & ~0x01) | (q->rd ? 0x01 : 0));
	out[3] |= 0x80;
	if (!q->ad && !q->edns_do)
		out[3] &= (uint8_t)~0x20;
	out[3] = (uint8_t)((out[3] & ~0x10) | (q->cd ? 0x10 : 0));
	add_opt = q->edns;
	if (len + (add_opt ? 11 : 0) > limit) {
		/* Too big for the client: the header and question, TC set. */
		len = qend;
		out[2] |= 0x02;
		put16(out + 6, 0);
		put16(out + 8, 0);
		put16(out + 10, 0);
	}
	if (add_opt) {
		static const uint8_t opt[11] = { 0, 0, 41, DNS_EDNS_SIZE >> 8, DNS_EDNS_SIZE & 0xff,
						 0, 0, 0, 0, 0, 0 };

		memcpy(out + len, opt, sizeof opt);
		if (q->edns_do)
			out[len + 7] = 0x80;
		len += sizeof opt;
		put16(out + 10, (uint16_t)(get16(out + 10) + 1));
	}
	return len;
}

static void tcp_send(struct tcp_conn *c, const uint8_t *msg, size_t len);
static void conn_unref(struct tcp_conn *c);

/* Whether FD is still one of our listening sockets: the map may have moved
 * the address a query came to while its answer was on the way, and the
 * number of the socket closed then may now be another's (an accepted TCP
 * connection's, whose stream would take a bare DNS message). */
static int listening_on(const struct server *s, int fd)
{
	for (int i = 0; i < s->nfds; i++)
		if (s->fds[i] == fd)
			return 1;
	return 0;
}

static int owner_private(const char *name, void *zones)
{
	return zones_private(zones, name);
}

static void on_forwarded(void *ctx, const uint8_t *answer, size_t len, int rcode)
{
	struct waiting *w = ctx;
	struct server *s = w->srv;
	size_t n = 0;

	/* Data for a private name from outside (x.evil.test CNAME to a
	 * private name, and the upstream's address for it) never reaches a
	 * client's cache: the whole answer is refused (SERVFAIL). */
	if (answer && dns_any_owner(answer, len, owner_private, s->zones) != 0) {
		log_info("an answer for %s held records for private names: refused", w->q.name);
		answer = NULL;
	}
	if (answer)
		n = finish_forwarded(s->reply, sizeof s->reply, answer, len, &w->q, w->limit);
	if (n)
		cache_put(s->cache, &w->q, answer, len, loop_now_ms());
	if (!n) {
		s->st->servfail++;
		n = dns_build_error(s->reply, sizeof s->reply, NULL, 0, &w->q,
				    rcode ? rcode : DNS_RCODE_SERVFAIL);
	}
	if (w->conn) {
		if (!w->conn->closed)
			tcp_send(w->conn, s->reply, n);
		conn_unref(w->conn);
	} else if (n && listening_on(s, w->udp_fd)) {
		(void)!sendto(w->udp_fd, s->reply, n, 0, &w->client.sa, w->client_len);
	}
	free(w);
}

/* ---- one query, from either transport ---- */

/* Returns the length of an immediate reply in OUT (CAP bytes), 0 for none
 * (a drop, or a forwarded query whose answer comes later). */
static size_t handle_query(struct server *s, const uint8_t *msg, size_t len, size_t limit_tcp,
			   int udp_fd, const union sa_any *client, socklen_t client_len,
			   struct tcp_conn *conn, uint8_t *out, size_t cap)
{
	struct dns_query q;
	enum dns_verdict v = dns_parse_query(msg, len, &q);
	size_t limit, n;
	struct waiting *w;

	s->st->queries++;
	if (v == DNS_DROP) {
		s->st->dropped++;
		return 0;
	}
	if (v != DNS_OK) {
		s->st->formerr += v == DNS_FORMERR;
		return dns_build_error(out, cap, msg, len, &q, (int)v);
	}
	if (q.edns && q.edns_version != 0)
		return dns_build_error(out, cap, msg, len, &q, DNS_RCODE_BADVERS);
	limit = conn ? limit_tcp : dns_udp_limit(&q);
	/* A private name never leaves, whatever its class: IN and ANY are
	 * answered from the map, other classes refused here. */
	if (q.qclass == DNS_CLASS_IN || q.qclass == DNS_CLASS_ANY) {
		int private;

		n = zones_try_answer(s->zones, &q, out, cap, limit, s->st, &private);
		if (private)
			return n;
	} else if (zones_private(s->zones, q.name)) {
		return dns_build_error(out, cap, NULL, 0, &q, DNS_RCODE_REFUSED);
	}
	if (!s->fwd)
		return dns_build_error(out, cap, NULL, 0, &q, DNS_RCODE_REFUSED);
	/* Asked before: the answer libunbound gave then, if still fresh. It is
	 * kept as libunbound gave it, whoever asked: what a client's own
	 * query changes in it (id, case, EDNS, truncation) is done by
	 * finish_forwarded, for this answer as for a fresh one. */
	if ((n = cache_get(s->cache, &q, loop_now_ms(), s->cached, sizeof s->cached)) &&
	    (n = finish_forwarded(out, cap, s->cached, n, &q, limit))) {
		s->st->forwarded++;
		return n;
	}
	w = calloc(1, sizeof *w);
	if (!w)
		return dns_build_error(out, cap, NULL, 0, &q, DNS_RCODE_SERVFAIL);
	w->srv = s;
	w->q = q;
	w->limit = limit;
	w->udp_fd = udp_fd;
	if (client) {
		w->client = *client;
		w->client_len = client_len;
	}
	w->conn = conn;
	if (conn)
		conn->refs++;
	s->st->forwarded++;
	if (forwarder_query(s->fwd, &q, on_forwarded, w) < 0) {
		if (conn)
			conn->refs--;
		free(w);
		s->st->servfail++;
		return dns_build_error(out, cap, NULL, 0, &q, DNS_RCODE_SERVFAIL);
	}
	return 0;
}

/* ---- UDP ---- */

/* Send the N answers of a batch. An answer the kernel refuses is dropped,
 * as a lost datagram would be, and the rest still go. */
static void udp_send_all(int fd, struct mmsghdr *out, unsigned n)
{
	unsigned done = 0;

	while (done < n) {
		int k = sendmmsg(fd, out + done, n - done, MSG_DONTWAIT);

		done += k > 0 ? (unsigned)k : 1;
	}
}

static void on_udp(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct server *s = arg;
	struct udp_batch *b = s->udp;

	(void)loop;
	(void)events;
	for (int burst = 0; burst < UDP_BURSTS; burst++) {
		unsigned nout = 0;
		int n;

		for (int i = 0; i < UDP_BATCH; i++) {
			b->in_iov[i].iov_base = b->in_buf + (size_t)i * DNSD_MAX_MSG;
			b->in_iov[i].iov_len = DNSD_MAX_MSG;
			b->in[i].msg_hdr = (struct msghdr){ .msg_name = &b->from[i],
							    .msg_namelen = sizeof b->from[i],
							    .msg_iov = &b->in_iov[i],
							    .msg_iovlen = 1 };
		}
		n = recvmmsg(fd, b->in, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			uint8_t *out = b->out_buf[nout];
			size_t r = handle_query(s, b->in_iov[i].iov_base, b->in[i].msg_len, 0, fd,
						&b->from[i], b->in[i].msg_hdr.msg_namelen, NULL, out,
						UDP_REPLY_MAX);

			if (!r)
				continue;
			b->out_iov[nout].iov_base = out;
			b->out_iov[nout].iov_len = r;
			b->out[nout].msg_hdr = (struct msghdr){ .msg_name = &b->from[i],
								.msg_namelen = b->in[i].msg_hdr.msg_namelen,
								.msg_iov = &b->out_iov[nout],
								.msg_iovlen = 1 };
			nout++;
		}
		udp_send_all(fd, b->out, nout);
		if (n < UDP_BATCH)
			return; /* drained */
	}
}

/* ---- TCP ---- */

static void conn_free(struct tcp_conn *c)
{
	struct server *s = c->srv;

	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	free(c->out);
	free(c);
}

static void conn_unref(struct tcp_conn *c)
{
	if (--c->refs == 0)
		conn_free(c);
}

static void conn_close(struct tcp_conn *c)
{
	if (c->closed)
		return;
	c->closed = 1;
	if (c->idle)
		loop_timer_cancel(c->srv->loop, c->idle);
	c->idle = NULL;
	loop_del_fd(c->srv->loop, c->fd);
	close(c->fd);
	conn_unref(c);
}

static void on_idle(struct loop *loop, void *arg)
{
	struct tcp_conn *c = arg;

	(void)loop;
	c->idle = NULL;
	conn_close(c);
}

static void touch(struct tcp_conn *c)
{
	if (c->idle)
		loop_timer_cancel(c->srv->loop, c->idle);
	c->idle = loop_timer_add(c->srv->loop, TCP_IDLE_MS, on_idle, c);
}

static void tcp_flush(struct tcp_conn *c)
{
	while (c->outlen) {
		ssize_t n = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			conn_close(c);
			return;
		}
		memmove(c->out, c->out + n, c->outlen - (size_t)n);
		c->outlen -= (size_t)n;
	}
	loop_mod_fd(c->srv->loop, c->fd, EPOLLIN | (c->outlen ? EPOLLOUT : 0));
}

static void tcp_send(struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	if (c->outlen + len + 2 > TCP_OUT_MAX) {
		conn_close(c); /* a client that does not read its answers */
		return;
	}
	if (c->outlen + len + 2 > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 4096;
		uint8_t *p;

		while (cap < c->outlen + len + 2)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p) {
			conn_close(c);
			return;
		}
		c->out = p;
		c->outcap = cap;
	}
	put16(c->out + c->outlen, (uint16_t)len);
	memcpy(c->out + c->outlen + 2, msg, len);
	c->outlen += len + 2;
	tcp_flush(c);
}

static void on_tcp(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct tcp_conn *c = arg;
	struct server *s = c->srv;

	(void)loop;
	c->refs++; /* hold it while we work */
	if (events & EPOLLOUT)
		tcp_flush(c);
	while (!c->closed && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		ssize_t n = read(fd, c->in + c->inlen, sizeof c->in - c->inlen);
		size_t msglen;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			conn_close(c);
			break;
		}
		c->inlen += (size_t)n;
		/* Pipelined: every whole message in the buffer. Only a whole
		 * message restarts the idle timer: a client that trickles half a
		 * message a byte at a time is cut like one that says nothing. */
		while (!c->closed && c->inlen >= 2 && c->inlen >= 2 + (msglen = get16(c->in))) {
			size_t r = handle_query(s, c->in + 2, msglen, DNSD_MAX_MSG, -1, NULL, 0, c,
						s->reply, sizeof s->reply);

			touch(c);
			if (r)
				tcp_send(c, s->reply, r);
			memmove(c->in, c->in + 2 + msglen, c->inlen - 2 - msglen);
			c->inlen -= 2 + msglen;
		}
	}
	conn_unref(c);
}

static void on_accept(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct server *s = arg;

	(void)events;
	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct tcp_conn *c;

		if (cfd < 0)
			return;
		if (s->nconns >= TCP_MAX_CONNS || !(c = calloc(1, sizeof *c))) {
			close(cfd);
			continue;
		}
		c->srv = s;
		c->fd = cfd;
		c->refs = 1;
		if (loop_add_fd(loop, cfd, EPOLLIN, on_tcp, c) < 0) {
			close(cfd);
			free(c);
			continue;
		}
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
		s->st->tcp_connections++;
		touch(c); /* a client that connects and says nothing is cut too */
	}
}

/* ---- set-up ---- */

struct server *server_new(struct loop *loop, struct zones *zones, struct dnsd_stats *st)
{
	struct server *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->udp = calloc(1, sizeof *s->udp);
	if (s->udp)
		s->udp->in_buf = malloc((size_t)UDP_BATCH * DNSD_MAX_MSG);
	s->cache = cache_new(CACHE_ENTRIES);
	if (!s->udp || !s->udp->in_buf || !s->cache) {
		server_free(s);
		return NULL;
	}
	s->loop = loop;
	s->zones = zones;
	s->st = st;
	return s;
}

void server_set_forwarder(struct server *s, struct forwarder *f)
{
	/* Other upstreams, or other zones refused: the answers kept are the
	 * old resolver's. */
	cache_clear(s->cache);
	s->fwd = f;
}

size_t server_tcp_connections(const struct server *s)
{
	return s->nconns;
}

static int open_listener(int type, const union sa_any *sa, socklen_t len, const char *iface)
{
	int fd = socket(sa->sa.sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	/* The overlay address may appear only once the tunnel is up. */
	setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
	/* With IFACE, only packets that came in on it: with Linux's weak host
	 * model a neighbour on the LAN could otherwise send to the overlay
	 * address through this host's MAC address. */
	if ((iface && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, iface, (socklen_t)strlen(iface)) < 0) ||
	    bind(fd, &sa->sa, len) < 0 || (type == SOCK_STREAM && listen(fd, 64) < 0)) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int server_listen(struct server *s, const char *addr, uint16_t port, const char *iface)
{
	union sa_any sa;
	socklen_t len;
	int u, t;

	if (s->nfds + 2 > 2 * MAX_LISTENERS) {
		errno = ENOSPC;
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	if (inet_pton(AF_INET, addr, &sa.in.sin_addr) == 1) {
		sa.in.sin_family = AF_INET;
		sa.in.sin_port = htons(port);
		len = sizeof sa.in;
	} else if (inet_pton(AF_INET6, addr, &sa.in6.sin6_addr) == 1) {
		sa.in6.sin6_family = AF_INET6;
		sa.in6.sin6_port = htons(port);
		len = sizeof sa.in6;
	} else {
		errno = EINVAL;
		return -1;
	}
	u = open_listener(SOCK_DGRAM, &sa, len, iface);
	if (u < 0)
		return -1;
	t = open_listener(SOCK_STREAM, &sa, len, iface);
	if (t < 0 || loop_add_fd(s->loop, u, EPOLLIN, on_udp, s) < 0) {
		int saved = errno;

		close(u);
		if (t >= 0)
			close(t);
		errno = saved;
		return -1;
	}
	if (loop_add_fd(s->loop, t, EPOLLIN, on_accept, s) < 0) {
		int saved = errno;

		loop_del_fd(s->loop, u);
		close(u);
		close(t);
		errno = saved;
		return -1;
	}
	s->fds[s->nfds++] = u;
	s->fds[s->nfds++] = t;
	return 0;
}

/* Is FD bound to ADDR (text) and PORT? */
static int bound_to(int fd, const char *addr, uint16_t port)
{
	union sa_any sa;
	socklen_t len = sizeof sa;
	char text[INET6_ADDRSTRLEN];
	const void *a;

	if (getsockname(fd, &sa.sa, &len) < 0)
		return 0;
	if (sa.sa.sa_family == AF_INET) {
		a = &sa.in.sin_addr;
		if (ntohs(sa.in.sin_port) != port)
			return 0;
	} else if (sa.sa.sa_family == AF_INET6) {
		a = &sa.in6.sin6_addr;
		if (ntohs(sa.in6.sin6_port) != port)
			return 0;
	} else {
		return 0;
	}
	return inet_ntop(sa.sa.sa_family, a, text, sizeof text) && !strcmp(text, addr);
}

int server_unlisten(struct server *s, const char *addr, uint16_t port)
{
	int found = 0;

	for (int i = 0; i < s->nfds;) {
		if (!bound_to(s->fds[i], addr, port)) {
			i++;
			continue;
		}
		loop_del_fd(s->loop, s->fds[i]);
		close(s->fds[i]);
		s->fds[i] = s->fds[--s->nfds];
		found = 1;
	}
	return found ? 0 : -1;
}

void server_free(struct server *s)
{
	if (!s)
		return;
	while (s->conns) {
		struct tcp_conn *c = s->conns;

		/* Forwarded queries of this connection are cancelled by the
		 * forwarder's free, which comes first. */
		conn_close(c);
		if (s->conns == c)
			conn_free(c);
	}
	for (int i = 0; i < s->nfds; i++) {
		loop_del_fd(s->loop, s->fds[i]);
		close(s->fds[i]);
	}
	if (s->udp)
		free(s->udp->in_buf);
	free(s->udp);
	cache_free(s->cache);
	free(s);
}
