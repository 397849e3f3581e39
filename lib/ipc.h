/* ipc.h: JSON-lines IPC over Unix stream sockets (see p2p-ipc.7).
 *
 * One compact JSON object per line, at most IPC_LINE_MAX bytes. A request is
 * {"id":N,"op":"...",...}; a reply {"id":N,"ok":true,...} or
 * {"id":N,"ok":false,"error":"..."}. The server parses and checks every line
 * itself and hands only well-formed requests to the daemon. */
#ifndef P2P_IPC_H
#define P2P_IPC_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "loop.h"

#define IPC_LINE_MAX 65536
/* A peer that lets this much output pile up is too slow and is dropped. */
#define IPC_OUTPUT_MAX (64u << 20)

struct ipc_server;
struct ipc_conn;

/* REQ is the whole request (borrowed); OP is its "op". */
typedef void ipc_request_fn(struct ipc_conn *conn, const char *op, json_t *req, void *arg);
/* A line (no newline, never blank) before it is parsed: 1 when the daemon
 * has handled it itself (a fast way for its busiest request), 0 to have it
 * parsed and given to the ipc_request_fn as usual. */
typedef int ipc_line_fn(struct ipc_conn *conn, const char *line, size_t len, void *arg);
/* Called once when a connection goes away, before it is freed. */
typedef void ipc_close_fn(struct ipc_conn *conn, void *arg);

/* Bind PATH (a stale socket left by a dead daemon is replaced; a live one or
 * a non-socket file is an error), listen, and serve from LOOP. */
struct ipc_server *ipc_server_new(struct loop *loop, const char *path, mode_t mode,
				  ipc_request_fn *on_request, ipc_close_fn *on_close,
				  void *arg);
/* Close every connection, stop listening, unlink the socket. */
void ipc_server_free(struct ipc_server *srv);
/* Give the socket to UID/GID (before dropping privileges); peers whose uid or
 * groups match are let in as well as root and our own uid. */
int ipc_server_chown(struct ipc_server *srv, uid_t uid, gid_t gid);
/* Offer every line to ON_LINE first. */
void ipc_server_set_line_fn(struct ipc_server *srv, ipc_line_fn *on_line);
size_t ipc_server_nconns(const struct ipc_server *srv);
/* Call FN for every connection (e.g. to stream a change to watchers). */
void ipc_server_foreach(struct ipc_server *srv, void (*fn)(struct ipc_conn *, void *), void *arg);

/* Queue MSG (borrowed) as one line; 0, or -1 when the peer is gone, too slow
 * or MSG does not encode. */
int ipc_send(struct ipc_conn *conn, json_t *msg);
/* Queue LINE (LEN bytes, its newline included) without writing it yet;
 * ipc_flush writes what is queued. Both 0, or -1 when the peer is gone or
 * too slow (it is then closed). A closing connection with nothing left to
 * write and no hold is closed by ipc_flush. */
int ipc_queue_line(struct ipc_conn *conn, const char *line, size_t len);
int ipc_flush(struct ipc_conn *conn);
/* {"id":ID,"ok":true} plus the members of FIELDS (stolen, may be NULL). */
int ipc_reply_ok(struct ipc_conn *conn, json_t *req, json_t *fields);
int ipc_reply_error(struct ipc_conn *conn, json_t *req, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Like ipc_reply_error, with extra members (stolen, may be NULL). */
int ipc_reply_error_with(struct ipc_conn *conn, json_t *req, json_t *fields,
			 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Close after what is queued has been written. */
void ipc_conn_close(struct ipc_conn *conn);
/* A reply will come later (p2p-audit acknowledges after its fsync): a
 * connection whose peer has finished sending stays open until every hold
 * is released and the replies are written. Release after sending. */
void ipc_conn_hold(struct ipc_conn *conn);
void ipc_conn_release(struct ipc_conn *conn);
void ipc_conn_set_data(struct ipc_conn *conn, void *data);
void *ipc_conn_data(const struct ipc_conn *conn);
pid_t ipc_conn_pid(const struct ipc_conn *conn);

/* Client side: blocking calls with a timeout, for tools and tests. */
struct ipc_client {
	int fd;
	size_t len;
	char buf[IPC_LINE_MAX + 1];
};

/* "mapd" → RUNDIR/mapd.sock; a name with a '/' is taken as a path. */
int ipc_socket_path(char *out, size_t size, const char *rundir, const char *name);
/* 0 or -1 with errno. */
int ipc_client_connect(struct ipc_client *c, const char *path);
void ipc_client_close(struct ipc_client *c);
int ipc_client_send(struct ipc_client *c, json_t *msg);
/* Next line as JSON: 0 ok, -1 error (errno; EPROTO for a bad line,
 * ETIMEDOUT, ECONNRESET on EOF). TIMEOUT_MS < 0 waits for ever. */
int ipc_client_recv(struct ipc_client *c, json_t **msg, int timeout_ms);
/* Send REQ and return the reply whose "id" matches. */
int ipc_client_call(struct ipc_client *c, json_t *req, json_t **reply, int timeout_ms);

/* Parse one request line (no newline): NULL and a message in ERR on a bad
 * line. Exposed for the fuzz target and the tests. */
json_t *ipc_parse_request(const char *line, size_t len, char *err, size_t errsize);

#endif
