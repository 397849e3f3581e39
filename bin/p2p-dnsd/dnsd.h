/* dnsd.h: p2p-dnsd's parts. dns-wire.c reads and writes messages, zone.c
 * answers the private zones from the map, forward.c sends everything else
 * through libunbound, cache.c keeps its answers, server.c serves UDP and
 * TCP, main.c ties them up. */
#ifndef P2P_DNSD_H
#define P2P_DNSD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "dns-wire.h"
#include "loop.h"

#define DNSD_NEGATIVE_TTL 10
#define DNSD_MAX_MSG 65535

struct dnsd_stats {
	uint64_t queries, private_answers, forwarded, nxdomain, servfail, formerr, dropped,
		tcp_connections, truncated;
};

/* zone.c: the private zones, rebuilt at every map version. */
struct zones;
struct zones *zones_new(void);
void zones_free(struct zones *z);
/* Rebuild from the map's settings and resources (from lib/mapwatch). */
int zones_load(struct zones *z, json_t *settings, json_t *resources, json_int_t version);
/* Is NAME (presentation, any case) under a private zone or the overlay's
 * reverse zones? Then zones_answer must answer it: it never leaves. */
int zones_private(const struct zones *z, const char *name);
/* Answer Q (private) into BUF; returns the message length. */
size_t zones_answer(const struct zones *z, const struct dns_query *q, uint8_t *buf, size_t cap,
		    size_t limit, struct dnsd_stats *st);
/* Both at once, the name lower-cased and its zone found once: when Q's
 * name is private, *PRIVATE is 1 and the answer is as zones_answer's;
 * otherwise *PRIVATE is 0, nothing is written, and 0 is returned. */
size_t zones_try_answer(const struct zones *z, const struct dns_query *q, uint8_t *buf,
			size_t cap, size_t limit, struct dnsd_stats *st, int *private);
/* The zone names, for unbound's refuse list and the status op. */
json_t *zones_list(const struct zones *z);
size_t zones_count_names(const struct zones *z);

/* forward.c: libunbound, asynchronously in the loop. */
struct forwarder;
typedef void forward_done_fn(void *ctx, const uint8_t *answer, size_t len, int rcode);
struct forwarder *forwarder_new(struct loop *loop, json_t *upstreams, int recursion,
				const char *trust_anchor, json_t *refuse_zones, char *err,
				size_t errsize);
void forwarder_free(struct forwarder *f);
/* Resolve Q; DONE gets the whole answer (its id and question not yet the
 * client's) or, with ANSWER NULL, the rcode to send (SERVFAIL on timeout). */
int forwarder_query(struct forwarder *f, const struct dns_query *q, forward_done_fn *done,
		    void *ctx);
/* Cancel every query whose context is CTX (its client went away). */
void forwarder_cancel(struct forwarder *f, void *ctx);
size_t forwarder_pending(const struct forwarder *f);

/* cache.c: libunbound's answers kept in front of it (see there). */
#define CACHE_ANSWER_MAX DNS_EDNS_SIZE /* larger answers are not kept */
#define CACHE_ENTRIES 4096
struct answer_cache;
struct answer_cache *cache_new(size_t entries);
void cache_free(struct answer_cache *c);
void cache_clear(struct answer_cache *c);
size_t cache_count(const struct answer_cache *c);
/* Keep ANSWER, libunbound's whole answer to Q's question, received at
 * NOW_MS, unless it is not to be kept. */
void cache_put(struct answer_cache *c, const struct dns_query *q, const uint8_t *answer,
	       size_t len, uint64_t now_ms);
/* The answer kept for Q's question (in any case) into OUT (CAP bytes), its
 * TTLs less the whole seconds since; its length, or 0 when there is none. */
size_t cache_get(struct answer_cache *c, const struct dns_query *q, uint64_t now_ms, uint8_t *out,
		 size_t cap);

/* server.c: the listeners, UDP and TCP (RFC 7766: pipelining, idle
 * timeout), and the path of each query. */
struct server;
struct server *server_new(struct loop *loop, struct zones *zones, struct dnsd_stats *st);
/* Listen on ADDR (UDP and TCP); 0 or -1 with errno. */
/* IFACE (or NULL): only queries that came in on that interface. */
int server_listen(struct server *s, const char *addr, uint16_t port, const char *iface);
/* Close the UDP and TCP listeners on ADDR (as inet_ntop writes it) and
 * PORT; connections already accepted stay. 0, or -1 if there were none. */
int server_unlisten(struct server *s, const char *addr, uint16_t port);
void server_set_forwarder(struct server *s, struct forwarder *f);
size_t server_tcp_connections(const struct server *s);
void server_free(struct server *s);

#endif
