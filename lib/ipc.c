/* ipc.c: the JSON-lines server and client. Each connection has a bounded
 * input buffer (one line) and an output queue; a line over the limit is
 * answered with an error and skipped up to its newline, so one bad peer
 * never costs the daemon more than IPC_LINE_MAX bytes or a crash. */
#include "ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

struct ipc_conn {
	struct ipc_server *srv;
	struct ipc_conn *prev, *next;
	int fd;
	pid_t pid;
	int closing;    /* close once the output is written */
	unsigned holds; /* replies still to come: closing waits for them */
	int dead;       /* close now (after the current callback returns) */
	int skipping;   /* inside an over-long line, discarding to its end */
	int in_dispatch;
	int eof;
	uint32_t events; /* what epoll watches for now */
	void *data;
	size_t inlen;
	char in[IPC_LINE_MAX + 1];
	char *out;
	size_t outlen, outoff, outcap;
};

struct ipc_server {
	struct loop *loop;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	ipc_request_fn *on_request;
	ipc_close_fn *on_close;
	ipc_line_fn *on_line;
	void *arg;
	struct ipc_conn *conns;
	size_t nconns;
	uid_t uid;
	gid_t gid;
};

static void conn_free(struct ipc_conn *c);

static int fill_sockaddr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa->sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa->sun_path, path);
	return 0;
}

/* A socket file nobody listens on is left by a daemon that died: replace it.
 * One that answers belongs to a running daemon, and anything else is not
 * ours to delete. */
static int remove_stale_socket(const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	if (fill_sockaddr(&sa, path) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	close(fd);
	if (rc == 0) {
		errno = EADDRINUSE;
		return -1;
	}
	if (errno != ECONNREFUSED)
		return -1;
	return unlink(path);
}

static void on_accept(struct loop *loop, int fd, uint32_t events, void *arg);

struct ipc_server *ipc_server_new(struct loop *loop, const char *path, mode_t mode,
				  ipc_request_fn *on_request, ipc_close_fn *on_close,
				  void *arg)
{
	struct ipc_server *srv = calloc(1, sizeof *srv);
	struct sockaddr_un sa;
	int saved;

	if (!srv)
		return NULL;
	srv->fd = -1;
	srv->loop = loop;
	srv->on_request = on_request;
	srv->on_close = on_close;
	srv->arg = arg;
	srv->uid = geteuid();
	srv->gid = getegid();
	if (fill_sockaddr(&sa, path) < 0 || remove_stale_socket(path) < 0)
		goto fail;
	strcpy(srv->path, path);
	srv->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->fd < 0)
		goto fail;
	if (bind(srv->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		goto fail;
	if (chmod(path, mode) < 0 || listen(srv->fd, 128) < 0 ||
	    loop_add_fd(loop, srv->fd, EPOLLIN, on_accept, srv) < 0) {
		saved = errno;
		unlink(path);
		errno = saved;
		goto fail;
	}
	return srv;
fail:
	saved = errno;
	if (srv->fd >= 0)
		close(srv->fd);
	free(srv);
	errno = saved;
	return NULL;
}

void ipc_server_free(struct ipc_server *srv)
{
	if (!srv)
		return;
	while (srv->conns)
		conn_free(srv->conns);
	loop_del_fd(srv->loop, srv->fd);
	close(srv->fd);
	unlink(srv->path);
	free(srv);
}

int ipc_server_chown(struct ipc_server *srv, uid_t uid, gid_t gid)
{
	if (chown(srv->path, uid, gid) < 0)
		return -1;
	srv->uid = uid;
	srv->gid = gid;
	return 0;
}

void ipc_server_set_line_fn(struct ipc_server *srv, ipc_line_fn *on_line)
{
	srv->on_line = on_line;
}

size_t ipc_server_nconns(const struct ipc_server *srv)
{
	return srv->nconns;
}

void ipc_server_foreach(struct ipc_server *srv, void (*fn)(struct ipc_conn *, void *), void *arg)
{
	struct ipc_conn *c, *next;

	for (c = srv->conns; c; c = next) {
		next = c->next;
		if (!c->dead)
			fn(c, arg);
	}
}

/* Root, the daemon's own user, and members of the socket's group may talk
 * to it; the file mode says the same, this is the second lock. */
static int peer_allowed(struct ipc_server *srv, int fd, pid_t *pid)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	gid_t groups[256];
	socklen_t glen = sizeof groups;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return 0;
	*pid = cred.pid;
	if (cred.uid == 0 || cred.uid == geteuid() || cred.uid == srv->uid ||
	    cred.gid == srv->gid)
		return 1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0)
		for (size_t i = 0; i < glen / sizeof groups[0]; i++)
			if (groups[i] == srv->gid)
				return 1;
	log_warning("%s: refused peer pid %ld uid %ld: not root, not our user, not in our group",
		    srv->path, (long)cred.pid, (long)cred.uid);
	return 0;
}

static void on_conn_event(struct loop *loop, int fd, uint32_t events, void *arg);

static void on_accept(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct ipc_server *srv = arg;

	(void)events;
	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ipc_conn *c;
		pid_t pid = 0;

		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_error("unable to accept on %s: %s", srv->path, strerror(errno));
			return;
		}
		if (!peer_allowed(srv, cfd, &pid)) {
			close(cfd);
			continue;
		}
		c = calloc(1, sizeof *c);
		if (!c || loop_add_fd(loop, cfd, EPOLLIN, on_conn_event, c) < 0) {
			log_error("unable to take a connection on %s: %s", srv->path, strerror(errno));
			free(c);
			close(cfd);
			continue;
		}
		c->srv = srv;
		c->fd = cfd;
		c->events = EPOLLIN;
		c->pid = pid;
		c->next = srv->conns;
		if (srv->conns)
			srv->conns->prev = c;
		srv->conns = c;
		srv->nconns++;
	}
}

static void conn_free(struct ipc_conn *c)
{
	struct ipc_server *srv = c->srv;

	if (srv->on_close)
		srv->on_close(c, srv->arg);
	loop_del_fd(srv->loop, c->fd);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
	free(c->out);
	free(c);
}

static void conn_kill(struct ipc_conn *c)
{
	c->dead = 1;
	if (!c->in_dispatch)
		conn_free(c);
}

/* Write what is queued; keep EPOLLOUT only while something is left (and
 * tell epoll only when that changes). */
static int conn_flush(struct ipc_conn *c)
{
	uint32_t events;

	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -1;
		}
		c->outoff += (size_t)n;
	}
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	events = (c->eof ? 0 : EPOLLIN) | (c->outlen ? EPOLLOUT : 0);
	if (events == c->events)
		return 0;
	if (loop_mod_fd(c->srv->loop, c->fd, events) < 0)
		return -1;
	c->events = events;
	return 0;
}

static int queue_output(struct ipc_conn *c, const char *data, size_t len)
{
	if (c->outlen + len > IPC_OUTPUT_MAX) {
		log_warning("%s: dropping peer pid %ld: %zu bytes of replies unread",
			    c->srv->path, (long)c->pid, c->outlen);
		return -1;
	}
	if (c->outoff && c->outlen + len > c->outcap) {
		memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
		c->outlen -= c->outoff;
		c->outoff = 0;
	}
	if (c->outlen + len > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 4096;
		char *p;

		while (cap < c->outlen + len)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p)
			return -1;
		c->out = p;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, data, len);
	c->outlen += len;
	return 0;
}

int ipc_send(struct ipc_conn *c, json_t *msg)
{
	char *text;
	int rc;

	if (c->dead)
		return -1;
	text = json_dumps(msg, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (!text)
		return -1;
	rc = queue_output(c, text, strlen(text));
	if (rc == 0)
		rc = queue_output(c, "\n", 1);
	free(text);
	if (rc == 0 && conn_flush(c) == 0)
		return 0;
	conn_kill(c);
	return -1;
}

int ipc_queue_line(struct ipc_conn *c, const char *line, size_t len)
{
	if (c->dead)
		return -1;
	if (queue_output(c, line, len) == 0)
		return 0;
	conn_kill(c);
	return -1;
}

int ipc_flush(struct ipc_conn *c)
{
	if (c->dead)
		return -1;
	if (conn_flush(c) < 0) {
		conn_kill(c);
		return -1;
	}
	if (c->closing && c->outlen == 0 && !c->holds)
		conn_kill(c);
	return 0;
}

static json_t *reply_base(json_t *req, int ok)
{
	json_t *id = req ? json_object_get(req, "id") : NULL;

	return json_pack("{s:O,s:b}", "id", id ? id : json_null(), "ok", ok);
}

int ipc_reply_ok(struct ipc_conn *c, json_t *req, json_t *fields)
{
	json_t *msg = reply_base(req, 1);
	int rc;

	if (fields)
		json_object_update_missing(msg, fields);
	json_decref(fields);
	rc = ipc_send(c, msg);
	json_decref(msg);
	return rc;
}

static int reply_error_v(struct ipc_conn *c, json_t *req, json_t *fields,
			 const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static int reply_error_v(struct ipc_conn *c, json_t *req, json_t *fields,
			 const char *fmt, va_list ap)
{
	char text[1024];
	json_t *msg = reply_base(req, 0);
	int rc;

	vsnprintf(text, sizeof text, fmt, ap);
	json_object_set_new(msg, "error", json_string(text));
	if (fields)
		json_object_update_missing(msg, fields);
	json_decref(fields);
	rc = ipc_send(c, msg);
	json_decref(msg);
	return rc;
}

int ipc_reply_error(struct ipc_conn *c, json_t *req, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = reply_error_v(c, req, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int ipc_reply_error_with(struct ipc_conn *c, json_t *req, json_t *fields, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = reply_error_v(c, req, fields, fmt, ap);
	va_end(ap);
	return rc;
}

void ipc_conn_close(struct ipc_conn *c)
{
	c->closing = 1;
	if (c->outlen == 0 && !c->holds)
		conn_kill(c);
}

void ipc_conn_hold(struct ipc_conn *c)
{
	c->holds++;
}

void ipc_conn_release(struct ipc_conn *c)
{
	if (c->holds)
		c->holds--;
	if (!c->holds && c->closing && c->outlen == 0)
		conn_kill(c);
}

void ipc_conn_set_data(struct ipc_conn *c, void *data)
{
	c->data = data;
}

void *ipc_conn_data(const struct ipc_conn *c)
{
	return c->data;
}

pid_t ipc_conn_pid(const struct ipc_conn *c)
{
	return c->pid;
}

json_t *ipc_parse_request(const char *line, size_t len, char *err, size_t errsize)
{
	json_error_t jerr;
	json_t *req, *id, *op;

	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req) {
		snprintf(err, errsize, "bad request: column %d: %s", jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(req)) {
		snprintf(err, errsize, "bad request: not a JSON object");
		goto fail;
	}
	id = json_object_get(req, "id");
	if (id && !json_is_integer(id) && !json_is_null(id)) {
		snprintf(err, errsize, "bad request: .id: not an integer");
		goto fail;
	}
	op = json_object_get(req, "op");
	if (!json_is_string(op)) {
		snprintf(err, errsize, "bad request: .op: %s", op ? "not a string" : "missing");
		goto fail;
	}
	return req;
fail:
	json_decref(req);
	return NULL;
}

/* A bad line still gets an answer; with its id when one can be read. */
static void reply_bad_line(struct ipc_conn *c, const char *line, size_t len, const char *err)
{
	json_t *loose = json_loadb(line, len, 0, NULL);
	json_t *req = json_is_object(loose) ? loose : NULL;

	if (req && !json_is_integer(json_object_get(req, "id")))
		json_object_del(req, "id");
	ipc_reply_error(c, req, "%s", err);
	json_decref(loose);
}

static void handle_line(struct ipc_conn *c, char *line, size_t len)
{
	char err[256];
	json_t *req;

	if (len && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return; /* blank lines are allowed between requests */
	if (c->srv->on_line && c->srv->on_line(c, line, len, c->srv->arg))
		return;
	req = ipc_parse_request(line, len, err, sizeof err);
	if (!req) {
		reply_bad_line(c, line, len, err);
		return;
	}
	c->srv->on_request(c, json_string_value(json_object_get(req, "op")), req, c->srv->arg);
	json_decref(req);
}

/* Split the input into lines and dispatch each one. */
static void handle_input(struct ipc_conn *c)
{
	size_t start = 0;
	char *nl;

	while (!c->dead && !c->closing &&
	       (nl = memchr(c->in + start, '\n', c->inlen - start))) {
		size_t len = (size_t)(nl - (c->in + start));

		if (c->skipping)
			c->skipping = 0;
		else
			handle_line(c, c->in + start, len);
		start += len + 1;
	}
	if (start) {
		memmove(c->in, c->in + start, c->inlen - start);
		c->inlen -= start;
	}
	if (c->inlen == IPC_LINE_MAX) {
		if (!c->skipping)
			ipc_reply_error(c, NULL, "line too long (limit %d bytes)", IPC_LINE_MAX);
		c->skipping = 1;
		c->inlen = 0;
	}
}

/* A few reads per wakeup: a peer that sends again as soon as it has a
 * reply would otherwise keep the loop on its connection for ever. epoll is
 * level-triggered, so what is left is read at the next turn. */
#define READS_PER_EVENT 8

static void conn_read(struct ipc_conn *c)
{
	for (int reads = 0; reads < READS_PER_EVENT; reads++) {
		ssize_t n = read(c->fd, c->in + c->inlen, IPC_LINE_MAX - c->inlen);

		if (n < 0) {
			if (errno == EINTR) {
				reads--;
				continue;
			}
			if (errno != EAGAIN)
				c->dead = 1;
			return;
		}
		if (n == 0) {
			/* The peer is done sending: a last line without its newline
			 * still counts, then we close once the replies are out. */
			if (c->inlen && !c->skipping) {
				c->in[c->inlen] = '\n';
				c->inlen++;
				handle_input(c);
			}
			c->eof = 1;
			c->closing = 1;
			return;
		}
		c->inlen += (size_t)n;
		handle_input(c);
		if (c->dead || c->closing)
			return;
	}
}

static void on_conn_event(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct ipc_conn *c = arg;

	(void)loop;
	(void)fd;
	c->in_dispatch = 1;
	if (events & EPOLLIN)
		conn_read(c);
	if (!c->dead && (events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN))
		c->dead = 1;
	if (!c->dead && conn_flush(c) < 0)
		c->dead = 1;
	c->in_dispatch = 0;
	if (c->dead || (c->closing && c->outlen == 0 && !c->holds))
		conn_free(c);
}

/* ---- client ---- */

int ipc_socket_path(char *out, size_t size, const char *rundir, const char *name)
{
	int n;

	if (strchr(name, '/'))
		n = snprintf(out, size, "%s", name);
	else if (strlen(name) > 5 && strcmp(name + strlen(name) - 5, ".sock") == 0)
		n = snprintf(out, size, "%s/%s", rundir, name);
	else
		n = snprintf(out, size, "%s/%s.sock", rundir, name);
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int ipc_client_connect(struct ipc_client *c, const char *path)
{
	struct sockaddr_un sa;

	c->len = 0;
	c->fd = -1;
	if (fill_sockaddr(&sa, path) < 0)
		return -1;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int saved = errno;

		close(c->fd);
		c->fd = -1;
		errno = saved;
		return -1;
	}
	return 0;
}

void ipc_client_close(struct ipc_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int ipc_client_send(struct ipc_client *c, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT | JSON_ENSURE_ASCII);
	size_t len, off = 0;

	if (!text) {
		errno = EINVAL;
		return -1;
	}
	len = strlen(text);
	text[len++] = '\n'; /* json_dumps's NUL becomes the newline */
	while (off < len) {
		ssize_t n = send(c->fd, text + off, len - off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(text);
			return -1;
		}
		off += (size_t)n;
	}
	free(text);
	return 0;
}

int ipc_client_recv(struct ipc_client *c, json_t **msg, int timeout_ms)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		ssize_t n;
		int pr;

		if (nl) {
			size_t len = (size_t)(nl - c->buf);

			*msg = json_loadb(c->buf, len, 0, NULL);
			memmove(c->buf, nl + 1, c->len - len - 1);
			c->len -= len + 1;
			if (!json_is_object(*msg)) {
				json_decref(*msg);
				*msg = NULL;
				errno = EPROTO;
				return -1;
			}
			return 0;
		}
		if (c->len == IPC_LINE_MAX) {
			errno = EPROTO;
			return -1;
		}
		pr = poll(&pfd, 1, timeout_ms);
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (pr == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = read(c->fd, c->buf + c->len, IPC_LINE_MAX - c->len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = ECONNRESET;
			return -1;
		}
		c->len += (size_t)n;
	}
}

int ipc_client_call(struct ipc_client *c, json_t *req, json_t **reply, int timeout_ms)
{
	json_t *want = json_object_get(req, "id");

	if (ipc_client_send(c, req) < 0)
		return -1;
	for (;;) {
		json_t *msg;

		if (ipc_client_recv(c, &msg, timeout_ms) < 0)
			return -1;
		if (!want || json_equal(json_object_get(msg, "id"), want)) {
			*reply = msg;
			return 0;
		}
		json_decref(msg); /* a stream line for another request */
	}
}
