/* p2p-audit: the durable audit trail. As a writer (the default), it takes
 * records on audit.sock and standard input, appends them to a hash-chained
 * JSON-lines file with group commit, acknowledges each once it is durable,
 * and forwards the chain to a collector or to syslog. As a collector (-L),
 * it takes the chains of many hosts over HTTPS. With -V, it verifies
 * chains. See p2p-audit(8) and p2p-audit(5). */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "decimal.h"
#include "file.h"
#include "ipc.h"
#include "log.h"
#include "loop.h"
#include "notify.h"
#include "privs.h"

#define USAGE \
	"p2p-audit [-inv] [-b max] [-d fd] [-r rundir] [-u user] [-D dir] [-H host] [-w ms] [-s size] " \
	"[-k count] [-c url] [-y host:port] [-F facility] [-A ca] [-C cert] [-K key]\n" \
	"       p2p-audit -L [-nv] [-d fd] [-r rundir] [-u user] [-D dir] [-w ms] [-s size] " \
	"[-k count] [-l addr:port -A ca -C cert -K key]\n" \
	"       p2p-audit -V path..."

#define STDIN_CHUNK 65536
/* record_quick's output is never longer than its input: a line of either. */
#define BODY_MAX (IPC_LINE_MAX > AUDIT_LINE_MAX ? IPC_LINE_MAX : AUDIT_LINE_MAX)
#define RETRY_WRITE_MS 1000

struct options {
	int check, verify, collector, read_stdin;
	int notify_fd;
	const char *rundir, *user, *dir, *host, *url, *syslog_dest, *listen;
	const char *ca, *cert, *key;
	unsigned wait_ms, keep, max_batch;
	uint64_t rotate_size;
	int facility;
};

/* A connection that waits for acknowledgements. */
struct peer {
	struct ipc_conn *conn;      /* NULL once it has gone */
	unsigned refs;
	size_t waiting;             /* replies queued behind a commit */
	uint64_t flushed;           /* the round of acknowledgements last written */
	int cut;                    /* too many replies waited: no more requests read */
};

/* Replies a connection may have queued behind a commit. While the log
 * cannot be written, the records it sends are refused, and each refusal
 * waits behind the acknowledgements before it: past this many the
 * connection is read no more (it closes once the commit comes). */
#define PEER_WAITING_MAX 100000

/* A reply that waits for the commit of SEQ: the acknowledgement of SEQ,
 * or (REPLY) an answer to a later request on the same connection, held
 * back so that replies keep the order of the requests. */
struct ack {
	struct peer *peer;
	int id_null;
	json_int_t id;
	json_t *reply;
	uint64_t seq;
};

struct writer {
	const struct options *o;
	struct loop *loop;
	struct store store;
	struct ipc_server *srv;
	char sock_path[PATH_MAX];
	char host[AUDIT_HOST_MAX + 1];
	struct loop_timer *commit_timer, *retry_timer, *stdin_timer;
	struct ack *acks;
	size_t nacks, capacks;
	uint64_t ack_rounds;
	char *body;                 /* a record read by record_quick */
	struct forwarder fwd[2];
	int nfwd;
	int stdin_on, stdin_paused, stdin_file, stdin_eof, stdin_skipping;
	char *inbuf;
	size_t inlen;
	uint64_t stdin_line;
	uint64_t records, refused, stdin_records, write_failures;
	char last_error[512];
	int stopping;
};

static void commit(struct writer *w);

/* ---- acknowledgements ---- */

static void peer_put(struct peer *p)
{
	if (--p->refs == 0)
		free(p);
}

static struct peer *peer_of(struct ipc_conn *c)
{
	struct peer *p = ipc_conn_data(c);

	if (!p) {
		p = calloc(1, sizeof *p);
		if (!p)
			return NULL;
		p->conn = c;
		p->refs = 1;
		ipc_conn_set_data(c, p);
	}
	return p;
}

static void on_close(struct ipc_conn *c, void *arg)
{
	struct peer *p = ipc_conn_data(c);

	(void)arg;
	if (p) {
		p->conn = NULL;
		peer_put(p);
	}
}

static int add_ack(struct writer *w, struct peer *p, int id_null, json_int_t id, json_t *reply,
		   uint64_t seq)
{
	if (w->nacks == w->capacks) {
		size_t cap = w->capacks ? 2 * w->capacks : 256;
		struct ack *more = realloc(w->acks, cap * sizeof *more);

		if (!more)
			return -1;
		w->acks = more;
		w->capacks = cap;
	}
	p->refs++;
	p->waiting++;
	ipc_conn_hold(p->conn);
	w->acks[w->nacks].peer = p;
	w->acks[w->nacks].id_null = id_null;
	w->acks[w->nacks].id = id;
	w->acks[w->nacks].reply = reply;
	w->acks[w->nacks].seq = seq;
	w->nacks++;
	return 0;
}

/* Send REPLY (stolen) now, or after the replies the connection waits for. */
static void reply(struct writer *w, struct ipc_conn *c, json_t *reply)
{
	struct peer *p = ipc_conn_data(c);

	if (p && p->waiting >= PEER_WAITING_MAX) {
		if (!p->cut) {
			log_error("a client has %d replies waiting for a commit that does not come: "
				  "reading no more of its requests", PEER_WAITING_MAX);
			p->cut = 1;
			ipc_conn_close(c);
		}
		json_decref(reply);
		return;
	}
	if (p && p->waiting && add_ack(w, p, 1, 0, reply, w->store.pseq) == 0)
		return;
	ipc_send(c, reply);
	json_decref(reply);
}

static void reply_error(struct writer *w, struct ipc_conn *c, json_t *req, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void reply_error(struct writer *w, struct ipc_conn *c, json_t *req, const char *fmt, ...)
{
	json_t *id = json_object_get(req, "id");
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	reply(w, c, json_pack("{s:O,s:b,s:s}", "id", id ? id : json_null(), "ok", 0, "error", text));
}

/* {"id":ID,"ok":true} and FIELDS (stolen). */
static void reply_ok(struct writer *w, struct ipc_conn *c, json_t *req, json_t *fields)
{
	json_t *id = json_object_get(req, "id");
	json_t *msg = json_pack("{s:O,s:b}", "id", id ? id : json_null(), "ok", 1);

	json_object_update_missing(msg, fields);
	json_decref(fields);
	reply(w, c, msg);
}

/* The line of an acknowledgement, as jansson would write
 * {"id":ID,"ok":true,"seq":SEQ}. */
static size_t ack_line(const struct ack *a, char *out, size_t size)
{
	char *o = out;

	/* written by hand, as it runs for every record: at most 68 bytes */
	if (size < 72)
		return 0;
	memcpy(o, "{\"id\":", 6);
	o += 6;
	if (a->id_null) {
		memcpy(o, "null", 4);
		o += 4;
	} else {
		o = decimal_i64(o, a->id);
	}
	memcpy(o, ",\"ok\":true,\"seq\":", 17);
	o = decimal_u64(o + 17, a->seq);
	memcpy(o, "}\n", 2);
	return (size_t)(o + 2 - out);
}

/* Acknowledge every record now durable: the replies of a connection are
 * queued, then written with one send. */
static void send_acks(struct writer *w)
{
	size_t i, kept = 0;
	uint64_t round = ++w->ack_rounds;

	for (i = 0; i < w->nacks; i++) {
		struct ack *a = &w->acks[i];
		char line[96];
		size_t len;

		if (a->seq > w->store.seq || !a->peer->conn)
			continue;
		if (a->reply) {
			char *text = json_dumps(a->reply, JSON_COMPACT | JSON_ENSURE_ASCII);

			if (text && ipc_queue_line(a->peer->conn, text, strlen(text)) == 0)
				ipc_queue_line(a->peer->conn, "\n", 1);
			free(text);
		} else if ((len = ack_line(a, line, sizeof line)) > 0) {
			ipc_queue_line(a->peer->conn, line, len);
		}
	}
	for (i = 0; i < w->nacks; i++) {
		struct ack *a = &w->acks[i];

		if (a->seq > w->store.seq) {
			w->acks[kept++] = *a;
			continue;
		}
		if (a->peer->conn && a->peer->flushed != round) {
			a->peer->flushed = round;
			ipc_flush(a->peer->conn);
		}
		/* A peer that went away was freed by the write. */
		if (a->peer->conn)
			ipc_conn_release(a->peer->conn);
		a->peer->waiting--;
		json_decref(a->reply);
		peer_put(a->peer);
	}
	w->nacks = kept;
}

/* ---- group commit ---- */

static uint64_t safe_seq(const struct writer *w)
{
	uint64_t safe = UINT64_MAX;

	for (int i = 0; i < w->nfwd; i++)
		if (w->fwd[i].acked < safe)
			safe = w->fwd[i].acked;
	return safe;
}

static void stdin_resume(struct writer *w);

static void on_retry_write(struct loop *loop, void *arg)
{
	struct writer *w = arg;

	(void)loop;
	w->retry_timer = NULL;
	commit(w);
}

static void commit(struct writer *w)
{
	char err[500];
	int rc;

	if (w->commit_timer) {
		loop_timer_cancel(w->loop, w->commit_timer);
		w->commit_timer = NULL;
	}
	rc = store_commit(&w->store, safe_seq(w), err, sizeof err);
	if (rc == STORE_SYNC)
		log_fatal(EXIT_SYSTEM, "%s (exiting: nothing since the last sync was acknowledged, "
			  "and the next start recovers the file)", err);
	if (rc != STORE_OK) {
		/* The records stay added and unacknowledged; try again. */
		if (strcmp(err, w->last_error) != 0)
			log_error("%s (%zu bytes of records wait; trying again every second)", err,
				  store_pending(&w->store));
		snprintf(w->last_error, sizeof w->last_error, "%s", err);
		w->write_failures++;
		if (!w->retry_timer)
			w->retry_timer = loop_timer_add(w->loop, RETRY_WRITE_MS, on_retry_write, w);
		return;
	}
	if (w->last_error[0]) {
		log_info("writing again: %s/%s is at seq %llu", w->store.dir, AUDIT_CURRENT,
			 (unsigned long long)w->store.seq);
		w->last_error[0] = '\0';
	}
	send_acks(w);
	for (int i = 0; i < w->nfwd; i++)
		forwarder_kick(&w->fwd[i]);
	stdin_resume(w);
	if (w->stdin_eof && !store_pending(&w->store)) {
		log_info("end of standard input: exiting");
		loop_stop(w->loop);
	}
}

static void on_commit(struct loop *loop, void *arg)
{
	struct writer *w = arg;

	(void)loop;
	w->commit_timer = NULL;
	commit(w);
}

static void schedule_commit(struct writer *w)
{
	if (w->commit_timer || w->retry_timer)
		return;
	w->commit_timer = loop_timer_add(w->loop, w->o->wait_ms, on_commit, w);
	if (!w->commit_timer)
		commit(w);
}

/* A checked record (CHECKED, or the BODY record_quick made) into the chain:
 * its seq, or 0 with a message in ERR. */
static uint64_t add_record(struct writer *w, json_t *checked, const char *body, size_t bodylen,
			   char *err, size_t errsize)
{
	char now[AUDIT_TIME_LEN + 1];
	uint64_t seq;
	int rc;

	record_time_now(now);
	if (checked)
		rc = store_add(&w->store, checked, w->host, now, &seq);
	else
		rc = store_add_body(&w->store, body, bodylen, w->host, now, &seq);
	if (rc < 0) {
		if (errno == ENOBUFS)
			snprintf(err, errsize, "the audit log cannot be written (%s): not taking records",
				 w->last_error[0] ? w->last_error : "too much waiting");
		else if (errno == EMSGSIZE)
			snprintf(err, errsize, "the record is longer than %d bytes as a line",
				 AUDIT_LINE_MAX);
		else
			snprintf(err, errsize, "unable to add the record: %s", strerror(errno));
		return 0;
	}
	w->records++;
	return seq;
}

/* After a record is added (and its acknowledgement queued): commit now if
 * the group is full (-b), or soon. */
static void commit_soon(struct writer *w)
{
	if (w->o->max_batch && w->store.pseq - w->store.seq >= w->o->max_batch && !w->retry_timer)
		commit(w);
	else
		schedule_commit(w);
}

/* ---- audit.sock ---- */

static void op_log(struct writer *w, struct ipc_conn *c, json_t *req)
{
	json_t *rec = json_object_get(req, "record"), *checked, *id;
	struct peer *p;
	char err[700];
	uint64_t seq;

	if (w->stopping) {
		reply_error(w, c, req, "p2p-audit is stopping");
		return;
	}
	if (!rec) {
		reply_error(w, c, req, ".record: missing");
		return;
	}
	checked = record_check(rec, err, sizeof err);
	if (!checked) {
		w->refused++;
		reply_error(w, c, req, ".record%s%s", err[0] == '.' ? "" : ": ", err);
		return;
	}
	p = peer_of(c);
	seq = p ? add_record(w, checked, NULL, 0, err, sizeof err) : 0;
	json_decref(checked);
	if (!p) {
		reply_error(w, c, req, "out of memory");
		return;
	}
	if (!seq) {
		reply_error(w, c, req, "%s", err);
		return;
	}
	id = json_object_get(req, "id");
	if (add_ack(w, p, !json_is_integer(id), json_integer_value(id), NULL, seq) < 0)
		log_error("out of memory: record %llu will not be acknowledged",
			  (unsigned long long)seq);
	commit_soon(w);
}

static json_t *writer_status(struct writer *w)
{
	json_t *fwd = json_object();

	for (int i = 0; i < w->nfwd; i++)
		json_object_set_new(fwd, w->fwd[i].name, forwarder_status(&w->fwd[i]));
	return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:s?}",
			 "prog", "p2p-audit", "mode", "writer", "dir", w->store.dir, "host", w->host,
			 "seq", (json_int_t)w->store.seq, "hash", w->store.hash,
			 "size", (json_int_t)w->store.size, "records", (json_int_t)w->records,
			 "refused", (json_int_t)w->refused, "commits", (json_int_t)w->store.commits,
			 "rotations", (json_int_t)w->store.rotations,
			 "waiting", (json_int_t)w->nacks,
			 "connections", (json_int_t)ipc_server_nconns(w->srv),
			 "stdin", (json_int_t)w->stdin_records, "forward", fwd,
			 "last_error", w->last_error[0] ? w->last_error : NULL);
}

/* The usual "log" request, read without jansson (record_quick_request).
 * Anything else, and anything that would be refused, goes the usual way,
 * which answers as it always did. */
static int on_line(struct ipc_conn *c, const char *line, size_t len, void *arg)
{
	struct writer *w = arg;
	struct record_request r;
	struct peer *p;
	char err[700];
	uint64_t seq;

	if (w->stopping || !record_quick_request(line, len, &r, w->body))
		return 0;
	p = peer_of(c);
	if (!p)
		return 0;
	seq = add_record(w, NULL, w->body, r.bodylen, err, sizeof err);
	if (!seq)
		return 0; /* the usual way says why */
	if (add_ack(w, p, r.id_null, r.id, NULL, seq) < 0)
		log_error("out of memory: record %llu will not be acknowledged",
			  (unsigned long long)seq);
	commit_soon(w);
	return 1;
}

static void on_request(struct ipc_conn *c, const char *op, json_t *req, void *arg)
{
	struct writer *w = arg;

	if (strcmp(op, "log") == 0)
		op_log(w, c, req);
	else if (strcmp(op, "status") == 0)
		reply_ok(w, c, req, writer_status(w));
	else
		reply_error(w, c, req, "unknown op '%s'", op);
}

/* ---- standard input ---- */

static void stdin_line(struct writer *w, const char *line, size_t len)
{
	char err[700];
	json_t *checked = NULL;
	size_t bodylen = 0;

	w->stdin_line++;
	if (len && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return;
	if (!record_quick(line, len, w->body, &bodylen)) {
		checked = record_check_text(line, len, err, sizeof err);
		if (!checked) {
			w->refused++;
			log_warning("standard input: line %llu: %s: not written",
				    (unsigned long long)w->stdin_line, err);
			return;
		}
	}
	if (add_record(w, checked, w->body, bodylen, err, sizeof err)) {
		w->stdin_records++;
		commit_soon(w);
	} else
		log_error("standard input: line %llu: %s", (unsigned long long)w->stdin_line, err);
	json_decref(checked);
}

static void stdin_lines(struct writer *w)
{
	size_t start = 0;
	char *nl;

	while ((nl = memchr(w->inbuf + start, '\n', w->inlen - start))) {
		size_t len = (size_t)(nl - (w->inbuf + start));

		if (w->stdin_skipping) {
			w->stdin_skipping = 0;
			w->stdin_line++;
		} else {
			stdin_line(w, w->inbuf + start, len);
		}
		start += len + 1;
	}
	memmove(w->inbuf, w->inbuf + start, w->inlen - start);
	w->inlen -= start;
	if (w->inlen >= AUDIT_LINE_MAX) {
		if (!w->stdin_skipping)
			log_warning("standard input: line %llu: longer than %d bytes: not written",
				    (unsigned long long)(w->stdin_line + 1), AUDIT_LINE_MAX);
		w->stdin_skipping = 1;
		w->inlen = 0;
	}
}

static void stdin_stop(struct writer *w)
{
	if (!w->stdin_on)
		return;
	if (!w->stdin_file)
		loop_del_fd(w->loop, STDIN_FILENO);
	if (w->stdin_timer)
		loop_timer_cancel(w->loop, w->stdin_timer);
	w->stdin_timer = NULL;
	w->stdin_on = 0;
}

static void stdin_read(struct writer *w)
{
	ssize_t n = read(STDIN_FILENO, w->inbuf + w->inlen, AUDIT_LINE_MAX - w->inlen);

	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return;
		log_error("unable to read standard input: %s", strerror(errno));
		n = 0;
	}
	if (n == 0) {
		if (w->inlen && !w->stdin_skipping)
			stdin_line(w, w->inbuf, w->inlen); /* a last line without newline */
		w->inlen = 0;
		stdin_stop(w);
		w->stdin_eof = 1;
		schedule_commit(w);
		if (!store_pending(&w->store) && !w->commit_timer && !w->retry_timer)
			commit(w);
		return;
	}
	w->inlen += (size_t)n;
	stdin_lines(w);
	/* Stop reading while the disk is behind: the pipe holds the rest. */
	if (store_pending(&w->store) >= STORE_PENDING_MAX / 2 && w->stdin_on) {
		w->stdin_paused = 1;
		if (!w->stdin_file)
			loop_mod_fd(w->loop, STDIN_FILENO, 0);
	}
}

static void on_stdin(struct loop *loop, int fd, uint32_t events, void *arg)
{
	(void)loop;
	(void)fd;
	(void)events;
	stdin_read(arg);
}

/* A regular file or /dev/null cannot be polled: a chunk per loop turn. */
static void on_stdin_timer(struct loop *loop, void *arg)
{
	struct writer *w = arg;

	w->stdin_timer = NULL;
	stdin_read(w);
	if (w->stdin_on && !w->stdin_paused)
		w->stdin_timer = loop_timer_add(loop, 0, on_stdin_timer, w);
}

static void stdin_resume(struct writer *w)
{
	if (!w->stdin_on || !w->stdin_paused || store_pending(&w->store) >= STORE_PENDING_MAX / 2)
		return;
	w->stdin_paused = 0;
	if (w->stdin_file)
		w->stdin_timer = loop_timer_add(w->loop, 0, on_stdin_timer, w);
	else
		loop_mod_fd(w->loop, STDIN_FILENO, EPOLLIN);
}

static int stdin_start(struct writer *w)
{
	w->inbuf = malloc(AUDIT_LINE_MAX);
	if (!w->inbuf)
		return -1;
	w->stdin_on = 1;
	if (loop_add_fd(w->loop, STDIN_FILENO, EPOLLIN, on_stdin, w) == 0)
		return 0;
	if (errno != EPERM)
		return -1;
	w->stdin_file = 1;
	w->stdin_timer = loop_timer_add(w->loop, 0, on_stdin_timer, w);
	return w->stdin_timer ? 0 : -1;
}

/* ---- signals ---- */

static void on_sigterm(struct loop *loop, int signo, void *arg)
{
	struct writer *w = arg;

	log_info("exiting on signal %d", signo);
	w->stopping = 1;
	stdin_stop(w);
	if (store_pending(&w->store))
		commit(w);
	loop_stop(loop);
}

/* ---- options ---- */

static unsigned long parse_number(const char *opt, const char *arg, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || *arg == '\0' || *arg == '-' || *end != '\0' || v > max) {
		log_error("-%s %s: a number from 0 to %lu", opt, arg, max);
		log_usage(USAGE);
	}
	return v;
}

/* "SIZE" with an optional k, M or G (powers of 1024). */
static uint64_t parse_size(const char *arg)
{
	char *end;
	unsigned long long v;
	uint64_t unit = 1;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (*end == 'k')
		unit = 1024;
	else if (*end == 'M')
		unit = 1024 * 1024;
	else if (*end == 'G')
		unit = 1024 * 1024 * 1024;
	if (unit != 1)
		end++;
	if (errno || *arg == '\0' || *arg == '-' || *end != '\0' || v > (1ULL << 40) / unit ||
	    (v && v * unit < 4096)) {
		log_error("-s %s: a size in bytes (k, M, G allowed), 0 or at least 4096, at most 1T",
			  arg);
		log_usage(USAGE);
	}
	return v * unit;
}

static void parse_options(int argc, char **argv, struct options *o)
{
	int opt;

	while ((opt = getopt(argc, argv, "invVLb:d:r:u:D:H:w:s:k:c:y:F:A:C:K:l:")) != -1) {
		switch (opt) {
		case 'i': o->read_stdin = 1; break;
		case 'n': o->check = 1; break;
		case 'v': log_set_verbosity(2); break;
		case 'V': o->verify = 1; break;
		case 'L': o->collector = 1; break;
		case 'd':
			o->notify_fd = notify_parse_fd(optarg);
			if (o->notify_fd < 0)
				log_fatal(EXIT_USAGE, "-d %s: not an open file descriptor above 2", optarg);
			break;
		case 'r': o->rundir = optarg; break;
		case 'u': o->user = optarg; break;
		case 'D': o->dir = optarg; break;
		case 'H': o->host = optarg; break;
		case 'w': o->wait_ms = (unsigned)parse_number("w", optarg, 1000); break;
		case 'b': o->max_batch = (unsigned)parse_number("b", optarg, 1000000); break;
		case 's': o->rotate_size = parse_size(optarg); break;
		case 'k': o->keep = (unsigned)parse_number("k", optarg, 100000); break;
		case 'c': o->url = optarg; break;
		case 'y': o->syslog_dest = optarg; break;
		case 'F': o->facility = (int)parse_number("F", optarg, 23); break;
		case 'A': o->ca = optarg; break;
		case 'C': o->cert = optarg; break;
		case 'K': o->key = optarg; break;
		case 'l': o->listen = optarg; break;
		default: log_usage(USAGE);
		}
	}
}

static void check_options(int argc, const struct options *o)
{
	if (o->verify) {
		if (optind >= argc || o->collector)
			log_usage(USAGE);
		return;
	}
	if (optind != argc)
		log_usage(USAGE);
	if (o->collector && (o->read_stdin || o->url || o->syslog_dest || o->host || o->max_batch)) {
		log_error("-L: a collector takes no -i, -b, -c, -y or -H");
		log_usage(USAGE);
	}
	if (!o->collector && o->listen) {
		log_error("-l: only a collector (-L) listens");
		log_usage(USAGE);
	}
	if ((o->cert != NULL) != (o->key != NULL)) {
		log_error("-C and -K go together");
		log_usage(USAGE);
	}
	if ((o->url || o->listen) && (!o->ca || !o->cert)) {
		log_error("%s needs -A, -C and -K", o->url ? "-c" : "-l");
		log_usage(USAGE);
	}
	if (o->syslog_dest && !o->ca) {
		log_error("-y needs -A (the CA that issued the syslog server's certificate)");
		log_usage(USAGE);
	}
	if (o->url && strncmp(o->url, "https://", 8) != 0) {
		log_error("-c %s: not an https:// URL", o->url);
		log_usage(USAGE);
	}
}

/* ---- the modes ---- */

static int run_verify(char **paths, int n)
{
	struct verify v;
	int rc;

	verify_init(&v, stderr);
	rc = verify_paths(&v, paths, n);
	if (rc < 0)
		return EXIT_SYSTEM;
	if (rc > 0) {
		fprintf(stderr, "p2p-audit: the chain does not verify: %u problem%s\n", v.problems,
			v.problems == 1 ? "" : "s");
		return EXIT_NEGATIVE;
	}
	if (v.records == 0)
		printf("no records\n");
	else
		printf("%llu records, seq %llu to %llu, host %s, last hash %s: the chain verifies%s\n",
		       (unsigned long long)v.records, (unsigned long long)v.first,
		       (unsigned long long)v.seq, v.host, v.hash,
		       v.first > 1 ? " (from a record after the start of the chain)" : "");
	return EXIT_OK;
}

static struct passwd *lookup_user(const char *user)
{
	struct passwd *pw;

	if (!user)
		return NULL;
	pw = getpwnam(user);
	if (!pw)
		log_fatal(EXIT_CONFIG, "unknown user %s", user);
	return pw;
}

static struct ipc_server *serve(struct loop *loop, const struct options *o, const char *name,
				char *path, ipc_request_fn *fn, ipc_close_fn *close_fn, void *arg)
{
	struct ipc_server *srv;

	if (ipc_socket_path(path, PATH_MAX, o->rundir, name) < 0)
		log_fatal(EXIT_USAGE, "%s: path too long", o->rundir);
	if (file_mkdir(o->rundir, 0755) < 0)
		log_fatal(EXIT_SYSTEM, "unable to create %s: %s", o->rundir, strerror(errno));
	srv = ipc_server_new(loop, path, 0660, fn, close_fn, arg);
	if (!srv)
		log_fatal(EXIT_SYSTEM, "unable to serve %s: %s", path,
			  errno == EADDRINUSE ? "another p2p-audit is serving it" : strerror(errno));
	return srv;
}

static void become(struct ipc_server *srv, const char *path, const struct passwd *pw)
{
	if (!pw)
		return;
	if (ipc_server_chown(srv, pw->pw_uid, pw->pw_gid) < 0)
		log_fatal(EXIT_SYSTEM, "unable to chown %s: %s", path, strerror(errno));
	if (privs_drop(pw, NULL, 0) < 0)
		log_fatal(EXIT_SYSTEM, "unable to become user %s: %s", pw->pw_name, strerror(errno));
}

static void set_signals(struct loop *loop, loop_signal_fn *fn, void *arg)
{
	if (loop_add_signal(loop, SIGTERM, fn, arg) < 0 || loop_add_signal(loop, SIGINT, fn, arg) < 0)
		log_fatal(EXIT_SYSTEM, "unable to set up signals: %s", strerror(errno));
}

static void ready(const struct options *o)
{
	if (notify_ready(o->notify_fd) < 0)
		log_warning("unable to signal readiness on fd %d: %s", o->notify_fd, strerror(errno));
}

/* The transports load their certificates and keys now, before p2p-audit
 * drops privileges; the forwarders start once the store is open. */
static int make_transports(struct writer *w, void *ctx[2], char *err, size_t errsize)
{
	const struct options *o = w->o;

	ctx[0] = ctx[1] = NULL;
	if (o->url) {
		struct https_options ho = { o->url, o->ca, o->cert, o->key };

		ctx[0] = https_new(w->loop, &ho, err, errsize);
		if (!ctx[0])
			return -1;
	}
	if (o->syslog_dest) {
		struct syslog_options so = { o->syslog_dest, o->ca, o->cert, o->key, o->facility };

		ctx[1] = syslogtls_new(w->loop, &so, err, errsize);
		if (!ctx[1])
			return -1;
	}
	return 0;
}

static int add_forwarders(struct writer *w, void *ctx[2], char *err, size_t errsize)
{
	static const struct transport *const transports[2] = { &https_transport, &syslog_transport };

	for (int i = 0; i < 2; i++) {
		if (!ctx[i])
			continue;
		if (forwarder_init(&w->fwd[w->nfwd], transports[i]->name, w->loop, &w->store,
				   transports[i], ctx[i], err, errsize) < 0)
			return -1;
		w->nfwd++;
	}
	return 0;
}

/* One chain, read-only: 0, or -1 having said why. */
static int check_chain(const struct options *o, const char *dir)
{
	char err[1024];
	struct store s;

	if (store_open(&s, dir, o->rotate_size, o->keep, 1, err, sizeof err) != STORE_OK) {
		fprintf(stderr, "p2p-audit: error: %s\n", err);
		return -1;
	}
	if (s.torn)
		fprintf(stderr, "p2p-audit: warning: %s/%s ends with an unfinished line of %zu bytes "
			"(a crash during a write): it is cut at the next start\n", dir, AUDIT_CURRENT,
			s.torn);
	store_close(&s);
	return 0;
}

/* The chains of a collector's hosts. */
static int check_hosts(const struct options *o)
{
	DIR *d = opendir(o->dir);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d))) {
		char path[PATH_MAX];

		if (de->d_type != DT_DIR || !record_host_ok(de->d_name))
			continue;
		snprintf(path, sizeof path, "%s/%s", o->dir, de->d_name);
		if (check_chain(o, path) < 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

/* -n: everything p2p-audit would load, nothing written or bound. */
static int check_config(const struct options *o)
{
	char err[1024];
	SSL_CTX *ctx = NULL;

	if (o->collector ? check_hosts(o) < 0 : check_chain(o, o->dir) < 0)
		return EXIT_CONFIG;
	if ((o->url || o->syslog_dest || o->listen) &&
	    !(ctx = o->listen ? tls_server_ctx(o->cert, o->key, o->ca, err, sizeof err)
			      : tls_client_ctx(o->ca, o->cert, o->key, err, sizeof err))) {
		fprintf(stderr, "p2p-audit: error: %s\n", err);
		return EXIT_CONFIG;
	}
	SSL_CTX_free(ctx);
	printf("configuration OK\n");
	return EXIT_OK;
}

static int run_writer(const struct options *o)
{
	struct writer w = { .o = o };
	struct passwd *pw = lookup_user(o->user);
	char err[1024];
	void *ctx[2];

	if (o->host) {
		snprintf(w.host, sizeof w.host, "%s", o->host);
	} else if (gethostname(w.host, sizeof w.host) < 0) {
		log_fatal(EXIT_SYSTEM, "unable to get the host name: %s", strerror(errno));
	}
	w.host[sizeof w.host - 1] = '\0';
	if (!record_host_ok(w.host))
		log_fatal(EXIT_CONFIG, "%s: not a host name for the records (give one with -H)", w.host);
	if (o->check)
		return check_config(o);
	w.loop = loop_new();
	if (!w.loop)
		log_fatal(EXIT_SYSTEM, "unable to create the event loop: %s", strerror(errno));
	set_signals(w.loop, on_sigterm, &w);
	w.body = malloc(BODY_MAX);
	if (!w.body)
		log_fatal(EXIT_SYSTEM, "out of memory");
	w.srv = serve(w.loop, o, "audit", w.sock_path, on_request, on_close, &w);
	ipc_server_set_line_fn(w.srv, on_line);
	if (make_transports(&w, ctx, err, sizeof err) < 0)
		log_fatal(EXIT_CONFIG, "%s", err);
	become(w.srv, w.sock_path, pw);
	switch (store_open(&w.store, o->dir, o->rotate_size, o->keep, 0, err, sizeof err)) {
	case STORE_OK: break;
	case STORE_CORRUPT: log_fatal(EXIT_CONFIG, "%s", err);
	default: log_fatal(EXIT_SYSTEM, "%s", err);
	}
	if (w.store.torn)
		log_warning("%s/%s: cut an unfinished last line of %zu bytes (a crash during a "
			    "write; it was never acknowledged)", o->dir, AUDIT_CURRENT, w.store.torn);
	if (add_forwarders(&w, ctx, err, sizeof err) < 0)
		log_fatal(EXIT_CONFIG, "%s", err);
	if (o->read_stdin && stdin_start(&w) < 0)
		log_fatal(EXIT_SYSTEM, "unable to read standard input: %s", strerror(errno));
	log_info("serving %s: %s/%s at seq %llu, host %s%s%s%s%s", w.sock_path, o->dir,
		 AUDIT_CURRENT, (unsigned long long)w.store.seq, w.host,
		 o->url ? ", forwarding to " : "", o->url ? o->url : "",
		 o->syslog_dest ? ", syslog to " : "", o->syslog_dest ? o->syslog_dest : "");
	ready(o);
	for (int i = 0; i < w.nfwd; i++)
		forwarder_kick(&w.fwd[i]);
	if (loop_run(w.loop) < 0)
		log_fatal(EXIT_SYSTEM, "event loop failed: %s", strerror(errno));
	for (int i = 0; i < w.nfwd; i++) {
		forwarder_flush(&w.fwd[i]);
		forwarder_free(&w.fwd[i]);
	}
	ipc_server_free(w.srv);
	for (size_t i = 0; i < w.nacks; i++) {
		json_decref(w.acks[i].reply);
		peer_put(w.acks[i].peer);
	}
	free(w.acks);
	free(w.inbuf);
	free(w.body);
	store_close(&w.store);
	loop_free(w.loop);
	return EXIT_OK;
}

/* ---- collector ---- */

struct collector_main {
	struct collector *c;
	struct ipc_server *srv;
	char sock_path[PATH_MAX];
};

static void on_collector_request(struct ipc_conn *c, const char *op, json_t *req, void *arg)
{
	struct collector_main *m = arg;

	if (strcmp(op, "status") == 0) {
		json_t *st = collector_status(m->c);

		json_object_set_new(st, "prog", json_string("p2p-audit"));
		ipc_reply_ok(c, req, st);
	} else {
		ipc_reply_error(c, req, "unknown op '%s'", op);
	}
}

static void on_collector_term(struct loop *loop, int signo, void *arg)
{
	(void)arg;
	log_info("exiting on signal %d", signo);
	loop_stop(loop);
}

static int run_collector(const struct options *o)
{
	struct collector_options co = { o->dir, o->listen, o->ca, o->cert, o->key, o->rotate_size,
					o->keep, o->wait_ms };
	struct collector_main m = { 0 };
	struct passwd *pw = lookup_user(o->user);
	struct loop *loop;
	char err[1024];

	if (o->check)
		return check_config(o);
	loop = loop_new();
	if (!loop)
		log_fatal(EXIT_SYSTEM, "unable to create the event loop: %s", strerror(errno));
	set_signals(loop, on_collector_term, &m);
	m.c = collector_new(loop, &co, err, sizeof err);
	if (!m.c)
		log_fatal(EXIT_CONFIG, "%s", err);
	if (collector_listen(m.c, err, sizeof err) < 0)
		log_fatal(EXIT_SYSTEM, "%s", err);
	m.srv = serve(loop, o, "audit-collector", m.sock_path, on_collector_request, NULL, &m);
	become(m.srv, m.sock_path, pw);
	if (file_mkdir(o->dir, 0750) < 0 || collector_open_hosts(m.c) < 0)
		log_fatal(EXIT_SYSTEM, "unable to open %s: %s", o->dir, strerror(errno));
	if (o->listen)
		log_info("collecting on %s into %s; serving %s", o->listen, o->dir, m.sock_path);
	else
		log_warning("no -l: not collecting (no certificate configured?); serving %s only",
			    m.sock_path);
	ready(o);
	if (loop_run(loop) < 0)
		log_fatal(EXIT_SYSTEM, "event loop failed: %s", strerror(errno));
	ipc_server_free(m.srv);
	collector_free(m.c);
	loop_free(loop);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct options o = { .notify_fd = -1, .rundir = "/run/p2p", .facility = 13 };
	int rc;

	log_init("p2p-audit");
	parse_options(argc, argv, &o);
	check_options(argc, &o);
	if (o.verify)
		return run_verify(argv + optind, argc - optind);
	if (!o.dir)
		o.dir = o.collector ? "/var/lib/p2p/collector" : "/var/lib/p2p/audit";
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		log_fatal(EXIT_SYSTEM, "unable to initialise libcurl");
	rc = o.collector ? run_collector(&o) : run_writer(&o);
	curl_global_cleanup();
	return rc;
}
