/* tlsterm.h: p2p-tlsterm's parts.
 *
 *   buf.c          bounded byte buffers
 *   http1.c        the strict HTTP/1.1 parser (request and response heads,
 *                  chunked bodies): no network, no state beyond its input
 *   certs.c        the certificate directory: certificates by name, reload
 *   tls.c          OpenSSL contexts (SNI, ALPN) and non-blocking reads/writes
 *   site.c         the resources of the map this connector serves, routes
 *   listen.c       the listening sockets, kept in step with the map
 *   client.c       a downstream connection: TLS handshake, then HTTP/1.1,
 *                  HTTP/2 (h2.c) or a TCP resource's bytes (tcp.c)
 *   proxy.c        one request from its head to its audit record (exchange)
 *   upstream.c     connections to upstreams and their pool
 *   jsonl.c        JSON-lines requests to a daemon's socket in the loop;
 *                  authz-client.c and audit-client.c use it
 *   main.c         options, setup, loop
 */
#ifndef P2P_TLSTERM_H
#define P2P_TLSTERM_H

#include <jansson.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "addr.h"
#include "loop.h"

/* ---- buf.c ---- */

struct buf {
	char *data;
	size_t start, end, cap;
	int failed;             /* a put did not fit (buf_put sets it, nothing clears it) */
};

int buf_init(struct buf *b, size_t cap);
void buf_free(struct buf *b);
/* Buffers of SIZE are pooled (the exchanges'); drain frees the pool. */
void buf_pool_size(size_t size);
void buf_pool_drain(void);
static inline size_t buf_len(const struct buf *b) { return b->end - b->start; }
static inline char *buf_head(const struct buf *b) { return b->data + b->start; }
/* Room at the tail after moving the content to the front if that helps. */
size_t buf_space(struct buf *b);
static inline char *buf_tail(const struct buf *b) { return b->data + b->end; }
static inline void buf_produced(struct buf *b, size_t n) { b->end += n; }
void buf_consume(struct buf *b, size_t n);
/* Append if it fits entirely: 0, or -1 when it does not (and FAILED is
 * set, so that a head made of many pieces is checked once at its end). */
int buf_put(struct buf *b, const void *p, size_t n);
/* A string, and an integer in decimal: the pieces of every head, without
 * printf's cost. */
int buf_puts(struct buf *b, const char *s);
int buf_put_u64(struct buf *b, uint64_t v);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- http1.c ---- */

#define HTTP_HEAD_MAX 16384      /* request or response head: 431 / 502 past it */
#define HTTP_LINE_MAX 8192       /* request line: 414 past it */
#define HTTP_HEADERS_MAX 100     /* header fields: 431 past it */

struct header {
	const char *name, *value;  /* inside the message's block, NUL-terminated */
	size_t name_len, value_len;
};

enum body_kind { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

struct http_msg {
	char *block;                 /* the head, copied, with NULs put in */
	const char *method, *target; /* requests */
	int status;                  /* responses */
	const char *reason;
	int minor;                   /* HTTP/1.MINOR */
	struct header *h;            /* inside BLOCK, after the head (http_msg_alloc) */
	size_t nh, hcap;
	size_t nconnection;          /* Connection fields among them */
	/* what they list (http_note_connection): close, keep-alive, others */
	unsigned conn_close : 1, conn_keep_alive : 1, conn_other : 1;
	enum body_kind body;
	uint64_t length;             /* BODY_LENGTH */
	unsigned keep_alive : 1;     /* by version and Connection */
	unsigned upgrade : 1;        /* Upgrade with Connection: upgrade */
	unsigned expect_continue : 1;
	const char *host;            /* the one Host field (requests) */
};

/* Parse a head from DATA (LEN bytes so far). 1: complete, *USED bytes long;
 * 0: more input needed; -1: refused, *STATUS the code to answer (400, 414,
 * 431, 501, 505) and WHY a reason for the log. */
int http_parse_request(const char *data, size_t len, struct http_msg *m, size_t *used,
		       int *status, const char **why);
/* The same for a response to a request of METHOD (HEAD: no body). */
int http_parse_response(const char *data, size_t len, const char *method, struct http_msg *m,
			size_t *used, const char **why);
void http_msg_free(struct http_msg *m);
/* A Connection field of M with VALUE: counted, and its tokens noted. */
void http_note_connection(struct http_msg *m, const char *value);
/* M's block: SIZE bytes for the head, then room for NFIELDS fields (at most
 * HTTP_HEADERS_MAX), in one allocation, so that a message costs no more
 * than its head (an exchange is created and zeroed for every request).
 * 0, or -1 when out of memory. */
int http_msg_alloc(struct http_msg *m, size_t size, size_t nfields);
/* The first field NAME (any case), or NULL; and how many there are. */
const struct header *http_find(const struct http_msg *m, const char *name);
size_t http_count(const struct http_msg *m, const char *name);
/* Whether NAME is one of the comma-separated tokens of the Connection fields. */
int http_connection_has(const struct http_msg *m, const char *token);
int http_is_hop_by_hop(const char *name, size_t len);
const char *http_reason(int status);

/* A chunked body being decoded (RFC 9112 7.1), trailers read and dropped. */
struct chunked {
	int state;
	uint64_t left;          /* of the current chunk */
	size_t line;            /* length of the size line or trailer so far */
	size_t trailers;        /* bytes of trailers so far */
};
/* Take what can be taken of IN (LEN bytes): *USED bytes consumed, and when
 * chunk data is at hand, *DATA and *DLEN point at up to MAXDATA bytes of it
 * (inside IN, consumed too). 1: the body ended; 0: go on (with more input
 * if nothing was used); -1: malformed, *WHY says how. */
int chunked_step(struct chunked *c, const char *in, size_t len, size_t maxdata, size_t *used,
		 const char **data, size_t *dlen, const char **why);

/* ---- certs.c ---- */

struct certstore;
struct cert_info {
	const char *file, *names, *type;
	time_t not_after;
};
/* Read every DIR/NAME.crt (leaf then chain, PEM) with DIR/NAME.key. A file
 * that does not load is logged and, when OLD had it, kept as it was.
 * CONFIGURE sets up each new SSL_CTX. NULL only when DIR cannot be read. */
struct certstore *certs_load(const char *dir, struct certstore *old,
			     int (*configure)(SSL_CTX *ctx));
void certs_free(struct certstore *s);
/* The context for server name NAME (exact, then a wildcard of one label),
 * or NULL. */
SSL_CTX *certs_find(const struct certstore *s, const char *name);
size_t certs_count(const struct certstore *s);
int certs_info(const struct certstore *s, size_t i, struct cert_info *out);

/* ---- tls.c ---- */

struct io {
	int fd;
	SSL *ssl;
	uint32_t read_need, write_need;  /* EPOLLIN or EPOLLOUT to retry */
	uint32_t registered;             /* events in epoll now */
	int handshake_done;
	int drained;                     /* nothing to read until the next event */
};
#define IO_AGAIN (-2)
#define IO_ERROR (-1)

int tls_init(const char *certdir, int h2, const char *upstream_ca, int upstream_insecure);
void tls_shutdown(void);
/* Read the directory again (SIGHUP, inotify, the reload op). */
int tls_reload(void);
const struct certstore *tls_certs(void);
unsigned long tls_reloads(void);
/* A server-side SSL for an accepted connection; DEFAULT_NAME (the dialled
 * resource's first name) serves a client without SNI. */
SSL *tls_server_new(int fd, const char *default_name);
SSL *tls_client_new(int fd, const char *host, int verify);
/* 1 done, IO_AGAIN, IO_ERROR (logged at debug with OpenSSL's queue). */
int io_handshake(struct io *io, char *err, size_t errsize);
/* >0 bytes, 0 end of stream, IO_AGAIN, IO_ERROR. */
ssize_t io_read(struct io *io, void *p, size_t n);
ssize_t io_write(struct io *io, const void *p, size_t n);
/* After a read of GOT bytes out of ASKED: whether another read would only
 * say "again" (the kernel had no more; TLS holds nothing back), so that
 * the loop waits for the next event instead of asking. */
int io_drained(const struct io *io, ssize_t got, size_t asked);
/* The name the client sent (SNI), or NULL; the ALPN protocol agreed. */
const char *io_sni(const struct io *io);
int io_alpn_h2(const struct io *io);
void io_close(struct loop *loop, struct io *io);
/* Put the events the io needs in epoll: reading if WANT_READ, writing if
 * WANT_WRITE (each as the TLS layer asks). */
int io_update(struct loop *loop, struct io *io, int want_read, int want_write);

/* ---- site.c ---- */

struct origin {
	int https;
	char host[256];        /* as in the URL (for SNI, Host and verification) */
	struct addr addr;      /* resolved when the map was loaded */
	uint16_t port;
	char base[1024];       /* the URL's path without a trailing '/', or "" */
	char key[320];         /* "https://host:port": the pool's key */
};

struct route {
	char path[1024];
	int strip;
	struct origin up;
};

struct resource {
	char name[64];
	int tcp;
	struct addr addr;
	char **names;
	size_t nnames;
	struct origin up;         /* https resources */
	struct addr tcp_addr;     /* tcp resources: host:port */
	uint16_t tcp_port;
	uint16_t *ports;
	size_t nports;
	struct route *routes;
	size_t nroutes;
};

struct site {
	struct resource *res;
	size_t nres;
	json_int_t version;
};

/* The resources of RESOURCES (lib/mapwatch's section) served by CONNECTOR
 * (every one when NULL). */
struct site *site_build(json_t *resources, const char *connector, json_int_t version);
void site_free(struct site *s);
const struct resource *site_by_name(const struct site *s, const char *host);
const struct resource *site_by_addr(const struct site *s, const struct addr *a);
const struct resource *site_by_resource(const struct site *s, const char *name);
/* The route for PATH (longest matching prefix, on segment boundaries). */
const struct route *site_route(const struct resource *r, const char *path);
/* URL -> origin; 0 or -1. Exposed for the tests. */
int origin_parse(const char *url, struct origin *o);
/* Whether prefix P matches PATH at a segment boundary. */
int route_matches(const char *p, const char *path);

#endif

/* ---- jsonl.c ---- */

struct jsonl;
/* REPLY is the reply (borrowed), or NULL with ERR saying why there is none. */
typedef void jsonl_fn(void *ctx, json_t *reply, const char *err);

struct jsonl *jsonl_new(struct loop *loop, const char *path);
void jsonl_free(struct jsonl *j);
/* For requests nothing waits on (audit records): while requests sent are
 * unanswered, new ones wait and go together when the answers come (or at
 * 64 KiB); those never sent when the connection goes are sent on the next. */
void jsonl_set_batching(struct jsonl *j, int on);
/* Connect now if not connected: 0 when connected. */
int jsonl_ready(struct jsonl *j);
/* Send REQ (an "id" is added; REQ is stolen); FN is called once with the
 * reply, or with NULL when the daemon is gone or TIMEOUT_MS passes. -1
 * (FN not called) when the daemon cannot be reached now. */
int jsonl_call(struct jsonl *j, json_t *req, uint64_t timeout_ms, jsonl_fn *fn, void *ctx);
/* The same with the request already written: MEMBERS is what follows
 * {"id":N, up to the closing brace (not included). */
int jsonl_call_raw(struct jsonl *j, const char *members, size_t len, uint64_t timeout_ms,
		   jsonl_fn *fn, void *ctx);

/* A JSON object written straight into a growing string (no tree): the
 * requests sent for every HTTP request. */
/* SRC into DST of SIZE bytes, cut to fit, always ended: snprintf's "%s"
 * without its cost, for what is copied on every request. */
static inline void str_copy(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

struct jw {
	char *p;
	size_t len, cap;
	int failed;
};
void jw_str(struct jw *w, const char *key, const char *value, size_t max);
void jw_strn(struct jw *w, const char *key, const char *value, size_t len);
void jw_int(struct jw *w, const char *key, long long value);
/* A member whose key, with what goes before it, is the JSON text LIT of
 * LITLEN bytes (as ",\"status\":"), written with one look at the room:
 * for the writers that run once a request. */
void jw_member(struct jw *w, const char *lit, size_t litlen, const char *value, size_t n);
void jw_member_int(struct jw *w, const char *lit, size_t litlen, long long value);
/* a raw piece: "key": already-JSON */
void jw_raw(struct jw *w, const char *key, const char *json, size_t len);
void jw_free(struct jw *w);
/* Empty W to write again, its memory kept (up to JW_KEEP_MAX): for the
 * writers that run once a request. */
#define JW_KEEP_MAX 65536
void jw_reset(struct jw *w);
/* A request whose reply only matters when it is not {"ok":true}: FN is
 * called (with a NULL context) for failures only. */
int jsonl_send(struct jsonl *j, const char *members, size_t len, uint64_t timeout_ms, jsonl_fn *fn);
/* A watch: FN(CTX) hears the reply within TIMEOUT_MS, then every event
 * line with the same id, until the connection goes (then once with NULL). */
int jsonl_watch(struct jsonl *j, const char *members, size_t len, uint64_t timeout_ms, jsonl_fn *fn,
		void *ctx);
/* FN will not be called for CTX any more. */
void jsonl_cancel(struct jsonl *j, void *ctx);
/* Fail the calls past their time (those never sent are kept for the next
 * connection), and connect again for kept calls; called by the sweep. */
void jsonl_sweep(struct jsonl *j, uint64_t now);
/* At exit, the loop stopped: what is queued is sent and the replies read,
 * for at most TIMEOUT_MS. How many calls are left unanswered. */
size_t jsonl_finish(struct jsonl *j, unsigned timeout_ms);
size_t jsonl_pending(const struct jsonl *j);
/* Whether what waits to be sent is at most half of what may wait (the
 * daemon may be slow to read; the queue is bounded): the other half is
 * room for the lines of the work in flight. */
int jsonl_has_room(const struct jsonl *j);
int jsonl_connected(const struct jsonl *j);

/* ---- the daemon's state (main.c) ---- */

struct options {
	unsigned header_timeout_ms, idle_timeout_ms, connect_timeout_ms, response_timeout_ms,
		body_timeout_ms, authz_timeout_ms, pool_idle_ms;
	unsigned max_connections, pool_max;
	unsigned reuse_max;        /* p2p-authz decisions kept for reuse; 0: none */
	size_t buffer;             /* each direction of each exchange */
	int audit_fail_open;       /* -F: serve when p2p-audit cannot be reached */
	int upstream_insecure;     /* -k */
	uint16_t https_port, http_port;
	const char *iface;         /* -i: SO_BINDTODEVICE */
};

struct stats {
	uint64_t accepted, open, handshakes, handshake_failures, requests, h2_requests,
		status[6], denied, authz_unavailable, audit_unavailable, audit_records,
		audit_failures, upstream_connects, upstream_reused, upstream_failures,
		tcp_sessions, bytes_in, bytes_out, timeouts, refused_parse, authz_reused;
};

struct tlsterm {
	struct loop *loop;
	struct site *site;
	struct jsonl *authz, *audit;
	struct options o;
	struct stats st;
	const char *host;          /* for request ids */
	int draining;              /* SIGTERM: finish what is in flight, take nothing new */
};
extern struct tlsterm tt;

/* ---- client.c: downstream connections ---- */

enum listener_kind { LK_HTTPS, LK_REDIRECT, LK_TCP };

struct exchange;
struct h2conn;

struct client {
	struct io io;
	int kind, h2;
	struct buf in, out;
	struct addr local, peer;
	uint16_t lport, pport;
	char src[ADDR_STRLEN + 8];      /* "addr:port" for audit */
	char peer_ip[ADDR_STRLEN];
	char local_ip[ADDR_STRLEN];     /* the overlay address dialled */
	char resource[64];              /* the dialled resource */
	char default_name[256];         /* its first name not a wildcard, else its first
					 * wildcard: the certificate without SNI */
	struct exchange *ex;            /* HTTP/1.1: the request being served */
	struct h2conn *h2c;
	uint64_t deadline;              /* of the phase it is in */
	uint64_t requests;
	unsigned dead : 1, close_after : 1, read_eof : 1, got_bytes : 1, kicked : 1, in_pump : 1,
		write_eof : 1,
		read_fired : 1;         /* EPOLLIN came with the event being handled */
	struct client *prev, *next, *kick_next;
};

/* The name for a request without a Host (HTTP/1.0) or a redirect: the
 * default name, a wildcard without its "*." */
static inline const char *client_default_host(const struct client *c)
{
	return c->default_name[0] == '*' && c->default_name[1] == '.' ? c->default_name + 2 : c->default_name;
}

int client_accept(int fd, int kind, const char *resource, const struct addr *local, uint16_t lport,
		  const struct addr *peer, uint16_t pport);
/* C's input and output buffers, taken again after an idle spell; 0 or -1. */
int client_buffers(struct client *c);
/* Make every possible step on C and its exchanges, then set its events. */
void client_pump(struct client *c);
/* The same from an event of another descriptor (an upstream's), with
 * nothing of C held up the stack: C is freed if that ended it. */
void client_pump_event(struct client *c);
/* Pump C soon, from the loop (from callbacks that must not recurse). */
void client_kick(struct client *c);
void client_sweep(uint64_t now);
void clients_close_all(void);
size_t clients_open(void);

/* ---- verdict.c: p2p-authz's answer, looked at once ---- */

/* The members of a check's reply (p2p-ipc(7)) that requests read, looked
 * up when it comes; the strings and JSON values are REPLY's. Shared by
 * the requests a kept verdict serves (reuse.c), hence counted. */
struct verdict {
	unsigned refs;
	json_t *reply;
	int ok;                         /* "ok":true */
	int status;                     /* 0 when missing or out of range */
	int allow;                      /* "decision":"allow" */
	const char *path, *reason, *resource, *rule, *error, *www_authenticate;
	json_t *identity, *strip, *set, *strip_cookies;
	/* the audit record's members from the identity to the reason, for a
	 * request allowed and forwarded, as written for the first such request
	 * (audit-client.c): NULL until then */
	char *audit_allow;
	size_t audit_allow_len;
};

/* A verdict for REPLY (a reference to it is taken), or NULL: no memory. */
struct verdict *verdict_new(json_t *reply);
struct verdict *verdict_ref(struct verdict *v);
void verdict_unref(struct verdict *v);

struct exchange;
/* V is the verdict (the callee takes a reference to keep it), or NULL with
 * ERR saying why there is none. */
typedef void verdict_fn(struct exchange *ex, struct verdict *v, const char *err);

/* ---- proxy.c: one request ---- */

enum phase { PH_AUTHZ, PH_UPSTREAM, PH_DONE };

struct exchange {
	struct client *c;
	int32_t stream;                 /* HTTP/2 stream, 0 on HTTP/1.1 */
	int phase;
	struct http_msg req;
	char resource[64];
	struct origin up_origin;
	char *up_head;                  /* the head for the upstream */
	size_t up_head_len;
	struct verdict *verdict;        /* p2p-authz's answer, NULL before it */
	char *check;                    /* the check sent to p2p-authz, kept to reuse its answer */
	size_t check_len;
	verdict_fn *on_check;
	struct upstream *up;
	/* the request's body, decoded (or a tunnel's bytes toward the upstream) */
	struct buf reqb;
	uint64_t req_left;
	struct chunked req_ck;
	unsigned req_done : 1, send_continue : 1, continue_sent : 1, local : 1, tunnel : 1,
		resp_ready : 1, resp_head_sent : 1, resp_done : 1, resp_chunked_out : 1,
		client_gone : 1, up_eof : 1, down_eof : 1, audited : 1, keep_alive : 1,
		tcp : 1, h2_submitted : 1, h2_deferred : 1, broken : 1, redirect : 1, retry : 1,
		retried : 1;
	/* the response: from the upstream or made here */
	struct http_msg resp;
	int status;
	struct buf respb;
	uint64_t resp_left;
	struct chunked resp_ck;
	json_t *local_headers;           /* local responses: name -> value */
	uint64_t start_ms, progress_ms, bytes_in, bytes_out;
	struct timespec start_wall;
	char request_id[40];
	char reason[160];                /* why it failed here, for the audit */
	struct exchange *next;           /* HTTP/2: the connection's streams */
};

/* A new exchange for the request REQ (taken over) on C. */
struct exchange *exchange_new(struct client *c, struct http_msg *req, int32_t stream);
/* Ask p2p-authz, then forward or answer. */
void exchange_start(struct exchange *ex);
/* Answer here with STATUS and a small body (deny, errors, redirects). */
void exchange_local(struct exchange *ex, int status, const char *why);
/* Take what the client sent of the body from IN (LEN bytes); how much was
 * used, or -1 when it is malformed (the connection is closed). */
ssize_t exchange_request_body(struct exchange *ex, const char *in, size_t len);
/* The head for the upstream (METHOD PATH, the client's fields that pass,
 * ours) into ex->up_head, for the allowed request EX (its verdict set);
 * -1 when it does not fit. */
int exchange_build_head(struct exchange *ex, const char *path);
/* The upstream side failed with STATUS (502/504) before the response. */
void exchange_upstream_failed(struct exchange *ex, int status, const char *why);
/* Done: the audit record is sent, the upstream pooled or closed, EX freed. */
void exchange_finish(struct exchange *ex);
/* The client went away first. */
void exchange_abort(struct exchange *ex, const char *why);
/* Step the upstream side of EX; whether anything moved. */
int exchange_pump_upstream(struct exchange *ex);
/* Whether the exchange still waits for request body bytes. */
int exchange_wants_body(const struct exchange *ex);
void exchange_sweep(struct exchange *ex, uint64_t now);
/* TCP resources: an exchange of raw bytes, checked against p2p-authz. */
struct exchange *exchange_tcp(struct client *c);

/* ---- upstream.c: connections to upstreams, and the pool ---- */

struct upstream {
	struct io io;
	struct buf in, out;
	struct origin o;
	int state;
	struct exchange *ex;
	uint64_t deadline, idle_since;
	unsigned dead : 1, reused : 1, head_queued : 1, got_response_bytes : 1, body_end_queued : 1,
		keep : 1, shut_wr : 1, write_broken : 1;
	struct upstream *next, *prev;
};

enum { UP_CONNECTING, UP_TLS, UP_OPEN, UP_IDLE };

/* A connection to O for EX: an idle one from the pool or a new one (NULL
 * with *STATUS 502 when it cannot even be started). */
struct upstream *upstream_get(const struct origin *o, struct exchange *ex, int *status,
			      const char *why[1]);
/* EX is done with UP: back to the pool when REUSABLE, else closed. */
void upstream_release(struct upstream *up, int reusable);
/* Step UP: connect, handshake, write the head and body, read the response
 * into its exchange. Whether anything moved. */
int upstream_pump(struct upstream *up);
void upstream_update_events(struct upstream *up);
void upstream_sweep(uint64_t now);
void upstreams_close_all(void);
size_t upstreams_idle(void);
/* A TCP resource's connection to ADDR:PORT. */
struct upstream *upstream_tcp(const struct addr *a, uint16_t port, struct exchange *ex, int *status);

/* ---- listen.c ---- */

/* Open the sockets the site needs and close the others. */
void listen_sync(void);
/* Accepting again after a pause for want of descriptors; called by the sweep. */
void listen_resume(void);
void listen_close_all(void);
json_t *listen_status(void);

/* ---- audit-client.c, authz-client.c ---- */

/* Whether a request may start: p2p-audit reachable (or -F). */
int audit_available(void);
void audit_exchange(struct exchange *ex);
/* Ask p2p-authz about EX; FN hears the verdict, at once when a decision
 * for the very same check may be reused (reuse.c). 0, or -1: unreachable. */
int authz_ask(struct exchange *ex, verdict_fn *fn);
/* The verdicts kept (status) and whether p2p-authz tells us of changes. */
size_t authz_reuse_entries(void);
int authz_watching(void);

/* ---- reuse.c ---- */

/* p2p-authz's answers kept by the exact check they answer (the bytes sent),
 * each until its reuse_ms ends or p2p-authz says its decisions changed. */
#define REUSE_KEY_MAX 8192
void reuse_init(size_t max);
struct verdict *reuse_get(const char *key, size_t len, uint64_t now_ms);   /* borrowed */
void reuse_put(const char *key, size_t len, struct verdict *v, uint64_t expires_ms);
void reuse_clear(void);
size_t reuse_size(void);

/* ---- h2.c ---- */

int h2_start(struct client *c);
void h2_free(struct client *c);
/* Read, process and write on an HTTP/2 connection; whether anything moved. */
int h2_pump(struct client *c);
int h2_wants_read(struct client *c);
int h2_wants_write(struct client *c);
/* No stream open and nothing for nghttp2 to send. */
int h2_idle(struct client *c);
void h2_sweep(struct client *c, uint64_t now);
