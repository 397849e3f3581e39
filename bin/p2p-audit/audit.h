/* audit.h: the parts of p2p-audit. The file format is p2p-audit(5); the
 * daemon, its socket and its forwarding are p2p-audit(8). */
#ifndef P2P_AUDIT_H
#define P2P_AUDIT_H

#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "loop.h"

/* A record line in a file, newline included. */
#define AUDIT_LINE_MAX 65536
#define AUDIT_HEX 64                   /* SHA-256 in lower-case hex */
#define AUDIT_TIME_LEN 27              /* 2026-11-22T10:11:12.123456Z */
#define AUDIT_HOST_MAX 253
#define AUDIT_CURRENT "audit.log"      /* the file being written */
/* Rotated files: audit-SEQ.log, SEQ the first record's, 20 digits, so that
 * the names sort in the order of the chain (and before audit.log). */
#define AUDIT_ROTATED_FMT "audit-%020llu.log"
#define AUDIT_ROTATED_LEN 30
/* The "hash" member closes every line: ,"hash":"<64 hex>"} */
#define AUDIT_HASH_TAIL (9 + AUDIT_HEX + 2)

extern const char audit_genesis[AUDIT_HEX + 1]; /* the "prev" of seq 1: 64 zeros */

/* ---- record.c: records in and out ---- */

/* What a valid line of a file says about itself. */
struct record_info {
	uint64_t seq;
	char time[AUDIT_TIME_LEN + 1];
	char host[AUDIT_HOST_MAX + 1];
	char type[16];
	int deny;                   /* "decision":"deny" */
	char prev[AUDIT_HEX + 1];
	char hash[AUDIT_HEX + 1];
};

enum { RECORD_OK = 0, RECORD_BAD = -1, RECORD_HASH = -2 };

/* Check a record as a sender gives it (the "record" of a "log" request, or
 * a line of standard input) and return a new object holding its members in
 * the order of the file, or NULL with a message in ERR that names the
 * member and never quotes its value. */
json_t *record_check(json_t *in, char *err, size_t errsize);
/* The same from text: one JSON object. */
json_t *record_check_text(const char *text, size_t len, char *err, size_t errsize);
/* The line of the file for a checked record: seq, time, host, the record's
 * members, prev, and the hash, ended by a newline. The hash goes to HASH.
 * NULL when the line would be over AUDIT_LINE_MAX (errno EMSGSIZE) or out
 * of memory. The caller frees the line. */
char *record_format(json_t *checked, uint64_t seq, const char *time, const char *host,
		    const char *prev, char hash[AUDIT_HEX + 1], size_t *len);
/* The members of a checked record as the file has them: its JSON without
 * the braces (malloc'd, *LEN bytes). */
char *record_body(json_t *checked, size_t *len);
/* The line for BODY (record_body's, or record_quick's) into OUT, which has
 * room for AUDIT_LINE_MAX + 1 bytes: its length, newline included, or 0
 * with errno (EMSGSIZE: over AUDIT_LINE_MAX). */
size_t record_line(const char *body, size_t bodylen, uint64_t seq, const char *time,
		   const char *host, const char *prev, char hash[AUDIT_HEX + 1], char *out);
/* The usual record read without jansson: 1 with what record_check() and
 * record_body() would make of TEXT in BODY (room for LEN bytes: it is
 * never longer), or 0 when TEXT is anything but plain (an escape, a byte
 * outside printable ASCII) and valid: record_check_text() then decides,
 * and says why it refuses. */
int record_quick(const char *text, size_t len, char *body, size_t *bodylen);
/* The same for a whole "log" request of audit.sock, {"id":N,"op":"log",
 * "record":{...}} in any order and nothing else: 1 with its id and the
 * record's body, or 0 to leave the line to the usual way (jansson,
 * ipc_parse_request(), record_check()). */
struct record_request {
	int id_null;                /* no id, or null */
	long long id;
	size_t bodylen;
};
int record_quick_request(const char *line, size_t len, struct record_request *r, char *body);
/* A line of a file (without its newline): every member known and well
 * typed, the hash at the end, and the hash right. RECORD_BAD or RECORD_HASH
 * with a message in ERR; INFO is filled as far as the line could be read. */
int record_parse_line(const char *line, size_t len, struct record_info *info, char *err,
		      size_t errsize);
/* The SHA-256 of the line without its hash member, in hex. -1 if the line
 * does not end with a hash member. */
int record_line_hash(const char *line, size_t len, char out[AUDIT_HEX + 1]);
/* Host names as in the file: letters, digits, '-', '_' in labels of 1..63
 * separated by dots, at most 253 characters (so also a safe directory name). */
int record_host_ok(const char *host);
/* RFC 3339 in UTC ending in Z, with an optional fraction of 1..9 digits. */
int record_time_ok(const char *text);
/* The time now, as "time" in the file. */
void record_time_now(char out[AUDIT_TIME_LEN + 1]);
void audit_hex(const unsigned char *bytes, size_t n, char *out);

/* ---- lines.c: a file read line by line ---- */

struct lines {
	int fd;
	char *buf;
	size_t start, end;
	uint64_t offset;      /* file offset of buf[start] */
	uint64_t lineno;      /* the number of the last line returned */
	int owns_fd;
};

enum { LINES_LINE = 1, LINES_END = 0, LINES_ERROR = -1, LINES_LONG = -2 };

/* 0, or -1 with errno. */
int lines_open(struct lines *r, const char *path);
int lines_open_fd(struct lines *r, int fd);
void lines_close(struct lines *r);
/* LINES_LINE with LINE/LEN (no newline; valid until the next call), or
 * LINES_END at the end of what is in the file now (lines_partial() bytes of
 * an unfinished line are kept for a later call), LINES_ERROR (errno), or
 * LINES_LONG for a line over AUDIT_LINE_MAX. */
int lines_next(struct lines *r, const char **line, size_t *len);
size_t lines_partial(const struct lines *r);

/* ---- chain.c: the files of one chain in a directory ---- */

struct chain_file {
	char name[AUDIT_ROTATED_LEN + 1];
	uint64_t first;       /* from a rotated file's name; 0 for audit.log */
};

/* The rotated files in order, then audit.log if it exists. The caller frees
 * *FILES. 0, or -1 with errno. */
int chain_list(const char *dir, struct chain_file **files, size_t *n);
/* Whether NAME is a rotated file's name, and its first seq. */
int chain_rotated_name(const char *name, uint64_t *first);

/* Where recovery stands in the last bytes of a file: BUF holds the last LEN
 * bytes; WHOLE says LEN is the whole file. TORN is the length of an
 * unfinished last line (no newline), START/LINELEN the last complete line.
 * 1: a complete line found; 0: none (the file is empty or one unfinished
 * line); -1: no newline where one must be (a line over the limit). */
int chain_tail(const char *buf, size_t len, int whole, size_t *torn, size_t *start,
	       size_t *linelen);

/* ---- store.c: an append-only chain with group commit ---- */

struct store {
	char dir[PATH_MAX];
	int dirfd, fd;              /* fd: audit.log, -1 between a rotation and the next file */
	uint64_t size;              /* of audit.log, committed bytes */
	uint64_t first;             /* seq of audit.log's first record, 0 while empty */
	uint64_t seq;               /* the last committed record, 0 for none */
	char hash[AUDIT_HEX + 1];
	uint64_t pseq;              /* the last record added, committed or not */
	char phash[AUDIT_HEX + 1];
	uint64_t pfirst;            /* the first record waiting */
	char *buf;                  /* lines added and not yet committed */
	size_t len, cap;
	uint64_t rotate_size;       /* 0: never */
	unsigned keep;              /* rotated files kept, 0: all */
	size_t torn;                /* bytes of an unfinished line cut at open */
	uint64_t commits, rotations;
};

#define STORE_PENDING_MAX (16u << 20)

enum { STORE_OK = 0, STORE_SYSTEM = -1, STORE_CORRUPT = -2, STORE_SYNC = -3 };

/* Open (creating DIR, mode 0750, and audit.log, 0640) and recover: an
 * unfinished last line is cut off, the last record is checked, and the
 * chain goes on from it (or from the newest rotated file when audit.log is
 * empty). STORE_OK, STORE_SYSTEM or STORE_CORRUPT with a message in ERR
 * naming the file and line. READONLY (for -n) looks without changing. */
int store_open(struct store *s, const char *dir, uint64_t rotate_size, unsigned keep,
	       int readonly, char *err, size_t errsize);
void store_close(struct store *s);
/* Add a checked record (its line is made here): SEQ gets its number. -1
 * with errno ENOBUFS when STORE_PENDING_MAX bytes wait, EMSGSIZE when the
 * line is too long. */
int store_add(struct store *s, json_t *checked, const char *host, const char *time,
	      uint64_t *seq);
/* The same for a record's BODY (record_body's or record_quick's). */
int store_add_body(struct store *s, const char *body, size_t bodylen, const char *host,
		   const char *time, uint64_t *seq);
/* Add a line made elsewhere (the collector), whose INFO comes from
 * record_parse_line; its seq must be pseq + 1 and its prev phash, unless
 * the store is empty. 0, or -1 with errno (ENOBUFS, EINVAL). */
int store_add_line(struct store *s, const char *line, size_t len,
		   const struct record_info *info);
/* Write what was added with one write and make it durable with one
 * fdatasync, then rotate if the file reached its size. STORE_OK;
 * STORE_SYSTEM when the write failed (the file is cut back and the lines
 * stay added, to try again); STORE_SYNC when fdatasync failed (what is on
 * disk is unknown: the caller exits and recovery decides). ERR says why.
 * SAFE_SEQ: rotated files whose records are all <= SAFE_SEQ may be removed
 * beyond KEEP. */
int store_commit(struct store *s, uint64_t safe_seq, char *err, size_t errsize);
/* Forget the lines added since the last commit (the collector, whose
 * senders send them again). */
void store_discard(struct store *s);
static inline size_t store_pending(const struct store *s)
{
	return s->len;
}

/* ---- verify.c: -V ---- */

struct verify {
	FILE *errs;                 /* problems go here, one line each */
	uint64_t records;
	uint64_t first, seq;        /* first and last seq seen */
	char hash[AUDIT_HEX + 1];   /* of the last record seen */
	char host[AUDIT_HOST_MAX + 1];
	unsigned problems;
	int started;
	int resync;                 /* after a line that is not a record */
};

void verify_init(struct verify *v, FILE *errs);
/* One line of FILE (number LINENO). */
void verify_line(struct verify *v, const char *file, uint64_t lineno, const char *line,
		 size_t len);
/* A file's end, with PARTIAL bytes of an unfinished line. */
void verify_file_end(struct verify *v, const char *file, uint64_t lineno, size_t partial);
/* Verify the files and directories in PATHS as one chain: directories
 * give their chain files in order; files are put in the order of their
 * first records. 0: the chain verifies; 1: it does not (each problem on
 * v->errs, naming file and line); -1: a file could not be read (errno). */
int verify_paths(struct verify *v, char **paths, int n);

/* ---- reader.c: the chain read from a given seq on, across rotations ---- */

struct reader {
	char dir[PATH_MAX];
	struct lines lines;
	int open;
	dev_t dev;
	ino_t ino;
	uint64_t next;              /* seq of the next record to return */
};

/* Position R so the next record returned is SEQ. When SEQ is no longer in
 * the files (removed), the first record there is; *SKIPPED says how many
 * were missing. 0, or -1 with a message. */
int reader_seek(struct reader *r, const char *dir, uint64_t seq, uint64_t *skipped, char *err,
		size_t errsize);
void reader_close(struct reader *r);
/* The next record, if its seq <= UPTO: 1 with LINE/LEN (no newline) and
 * INFO; 0 when there is none yet; -1 with a message (a broken chain). */
int reader_next(struct reader *r, uint64_t upto, const char **line, size_t *len,
		struct record_info *info, char *err, size_t errsize);

/* ---- tls.c: OpenSSL contexts and errors ---- */

#include <openssl/ssl.h>

/* The OpenSSL error queue (drained) as text, after PREFIX. */
const char *tls_errors(char *buf, size_t size);
/* A server context demanding a client certificate issued by CA. NULL with
 * a message. */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, const char *ca, char *err,
			size_t errsize);
/* A client context verifying servers against CA, presenting CERT/KEY when
 * given. */
SSL_CTX *tls_client_ctx(const char *ca, const char *cert, const char *key, char *err,
			size_t errsize);

/* ---- syslog.c: RFC 5424 over TLS (RFC 5425) ---- */

/* One record line as an RFC 5424 message framed by octet counting (RFC
 * 6587): "LEN <PRI>1 TIME HOST p2p-audit - TYPE - LINE". Appended to *BUF.
 * FACILITY 0..23. 0, or -1 out of memory. */
int syslog_frame(char **buf, size_t *len, size_t *cap, int facility, const char *line,
		 size_t linelen, const struct record_info *info);

/* ---- http.c: the collector's HTTP/1.1 requests ---- */

#define HTTP_HEAD_MAX 16384
#define HTTP_BODY_MAX (8u << 20)

struct http_request {
	char method[16];
	char target[256];
	int minor;                  /* HTTP/1.x */
	long long content_length;   /* -1 when absent */
	int keep_alive;
	int expect_continue;
	int chunked;
	size_t head_len;            /* bytes of the head, blank line included */
};

enum { HTTP_INCOMPLETE = 0, HTTP_DONE = 1, HTTP_BAD = -1 };

/* Parse the head of a request from BUF: HTTP_DONE, HTTP_INCOMPLETE (need
 * more bytes), or HTTP_BAD with a message (and the status to answer in
 * *STATUS). */
int http_parse_head(const char *buf, size_t len, struct http_request *req, int *status,
		    char *err, size_t errsize);

/* ---- forward.c: at-least-once forwarding from a persisted offset ---- */

struct forwarder;

struct transport {
	const char *name;
	/* Send the batch f->batch (f->blen bytes of record lines, f->bcount
	 * of them from f->bfirst to f->blast); report with forwarder_done(). */
	void (*send)(struct forwarder *f);
	/* Drop the connection (after an error, or at exit). */
	void (*reset)(struct forwarder *f);
	void (*free)(struct forwarder *f);
	/* How long a delivery must stand before it is persisted: the time a
	 * receiver without acknowledgements had to read what its TCP took. */
	unsigned settle_ms;
};

struct forwarder {
	const char *name;           /* "collector" or "syslog" */
	struct loop *loop;
	struct store *store;
	char state_path[PATH_MAX];
	uint64_t acked;             /* persisted: everything <= acked was delivered */
	uint64_t settled;           /* delivered and settled, not yet persisted */
	uint64_t delivered;         /* delivered, perhaps not settled */
	struct reader reader;
	int positioned;
	char *batch;
	size_t blen, bcap, bcount, max_records, max_bytes;
	uint64_t bfirst, blast;
	int busy;
	struct loop_timer *retry_timer, *persist_timer, *settle_timer;
	unsigned backoff_ms;
	struct settle { uint64_t seq, at_ms; } *unsettled;
	size_t nunsettled, capunsettled;
	uint64_t batches, records, failures;
	char last_error[256];
	const struct transport *t;
	void *ctx;
	int stopping;
};

/* Set up F for STORE: read the persisted offset from DIR/forward-NAME.json
 * (a missing file means from the start). 0, or -1 with a message. */
int forwarder_init(struct forwarder *f, const char *name, struct loop *loop, struct store *s,
		   const struct transport *t, void *ctx, char *err, size_t errsize);
/* New records were committed: send if idle. */
void forwarder_kick(struct forwarder *f);
/* The transport's answer for the batch in flight. OK: delivered up to
 * f->blast. Otherwise ERROR says why, and the batch is sent again after a
 * pause; RESTART_AT, when not 0, is where the receiver wants the stream to
 * start again. */
void forwarder_done(struct forwarder *f, int ok, uint64_t restart_at, const char *error);
/* The connection broke: resend what is delivered but not settled. */
void forwarder_broken(struct forwarder *f, const char *why);
/* Persist what is settled now (at exit). */
void forwarder_flush(struct forwarder *f);
void forwarder_free(struct forwarder *f);
json_t *forwarder_status(const struct forwarder *f);

/* ---- send-https.c and send-syslog.c: the two transports ---- */

struct https_options {
	const char *url, *ca, *cert, *key;
};
/* NULL with a message. */
void *https_new(struct loop *loop, const struct https_options *o, char *err, size_t errsize);
extern const struct transport https_transport;

struct syslog_options {
	const char *dest;           /* host:port */
	const char *ca, *cert, *key;
	int facility;
};
void *syslogtls_new(struct loop *loop, const struct syslog_options *o, char *err,
		    size_t errsize);
extern const struct transport syslog_transport;

/* ---- collector.c: the receiving end ---- */

struct collector;
struct collector_options {
	const char *dir, *listen, *ca, *cert, *key;
	uint64_t rotate_size;
	unsigned keep;
	unsigned commit_wait_ms;
};
/* NULL with a message. Listening starts with collector_listen. */
struct collector *collector_new(struct loop *loop, const struct collector_options *o,
				char *err, size_t errsize);
int collector_listen(struct collector *c, char *err, size_t errsize);
/* Open (and recover) the chain of every host already in the directory.
 * -1 with errno when the directory cannot be read. */
int collector_open_hosts(struct collector *c);
json_t *collector_status(const struct collector *c);
void collector_free(struct collector *c);
/* The records of one POST body (record lines, one host's): each checked
 * (a valid line, its hash right, the host one the peer may send for),
 * duplicates (seq already held) dropped, the rest added to that host's
 * store if they continue its chain. Exposed for the fuzz target. */
struct collector_result {
	int status;                 /* the HTTP status to answer */
	uint64_t stored, duplicates;
	uint64_t next;              /* the seq the collector wants next, 0: unknown */
	struct store *store;        /* the host's store, if one was touched */
	char host[AUDIT_HOST_MAX + 1];
	char error[300];
};
/* Whether the peer may send HOST's records. */
typedef int collector_peer_fn(void *arg, const char *host);
/* HOST's store, opened and recovered on first use; NULL with a message. */
typedef struct store *collector_store_fn(void *arg, const char *host, char *err,
					  size_t errsize);
void collector_take(const char *body, size_t len, collector_peer_fn *may,
		    collector_store_fn *get, void *arg, struct collector_result *res);

#endif
