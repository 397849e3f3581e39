/* record.c: the records, as senders give them and as the file holds them
 * (p2p-audit(5)). Checking is strict: every member known, of its type and
 * within its size; messages name the member and never quote its value, so
 * that no record content reaches a log line. */
#include "audit.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "decimal.h"
#include "jsonbyte.h"
#include "rfc3339.h"

const char audit_genesis[AUDIT_HEX + 1] =
	"0000000000000000000000000000000000000000000000000000000000000000";

/* JSON integers that every reader of the file can hold exactly (2^53 - 1). */
#define COUNT_MAX 9007199254740991LL
#define GROUPS_MAX 64

enum kind {
	K_TYPE,        /* "request", "session.start", "session.end" */
	K_DECISION,    /* "allow", "deny" */
	K_TEXT,        /* any string of 0..max bytes */
	K_NAME,        /* a string of 1..max bytes */
	K_TOKEN,       /* 1..max of [a-z0-9._-] */
	K_METHOD,      /* 1..max of HTTP token characters */
	K_TIME,        /* RFC 3339, UTC */
	K_SRC,         /* ADDR, ADDR:PORT or [ADDR6]:PORT */
	K_COUNT,       /* integer 0..max */
	K_GROUPS,      /* array of 0..64 names of 1..max bytes */
};

struct field {
	const char *name;
	enum kind kind;
	long long max;
	size_t len;     /* strlen(name) */
};

/* The members a sender may give, in the order of the file. */
#define F(name, kind, max) { name, kind, max, sizeof name - 1 }
static const struct field fields[] = {
	F("type", K_TYPE, 0),
	F("start", K_TIME, 0),
	F("resource", K_NAME, 253),
	F("method", K_METHOD, 32),
	F("path", K_TEXT, 8192),
	F("query", K_TEXT, 8192),
	F("src", K_SRC, 0),
	F("client", K_NAME, 253),
	F("user", K_NAME, 256),
	F("groups", K_GROUPS, 256),
	F("auth", K_TOKEN, 32),
	F("decision", K_DECISION, 0),
	F("rule", K_NAME, 256),
	F("reason", K_TEXT, 1024),
	F("status", K_COUNT, 999),
	F("bytes_in", K_COUNT, COUNT_MAX),
	F("bytes_out", K_COUNT, COUNT_MAX),
	F("duration_ms", K_COUNT, COUNT_MAX),
	F("upstream", K_NAME, 1024),
	F("request_id", K_NAME, 128),
	F("session_id", K_NAME, 128),
};
#undef F
#define NFIELDS (sizeof fields / sizeof fields[0])
/* Places in fields[] of the members check_required() asks for. */
enum { F_TYPE = 0, F_RESOURCE = 2, F_METHOD = 3, F_PATH = 4, F_DECISION = 11 };

/* Members only p2p-audit writes. */
static const char *const written[] = { "seq", "time", "host", "prev", "hash" };

static void say(char *err, size_t errsize, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
}

void audit_hex(const unsigned char *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}

static int is_hex64(const char *p)
{
	for (int i = 0; i < AUDIT_HEX; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return 1;
}

static int digits(const char *p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

int record_time_ok(const char *t)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, s, dim;
	const char *p;

	if (strlen(t) < 20 || digits(t, 4, &y) || t[4] != '-' || digits(t + 5, 2, &mo) ||
	    t[7] != '-' || digits(t + 8, 2, &d) || t[10] != 'T' || digits(t + 11, 2, &h) ||
	    t[13] != ':' || digits(t + 14, 2, &mi) || t[16] != ':' || digits(t + 17, 2, &s))
		return 0;
	if (mo < 1 || mo > 12 || h > 23 || mi > 59 || s > 60)
		return 0;
	dim = mdays[mo - 1] + (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));
	if (d < 1 || d > dim)
		return 0;
	p = t + 19;
	if (*p == '.') {
		int n = 0;

		for (p++; *p >= '0' && *p <= '9'; p++)
			n++;
		if (n < 1 || n > 9)
			return 0;
	}
	return p[0] == 'Z' && p[1] == '\0';
}

void record_time_now(char out[AUDIT_TIME_LEN + 1])
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	rfc3339_utc(out, &ts, 6);   /* AUDIT_TIME_LEN: 21 + 6 */
}

int record_host_ok(const char *host)
{
	size_t len = strlen(host), label = 0;

	if (len == 0 || len > AUDIT_HOST_MAX)
		return 0;
	for (const char *p = host; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0;
}

static int token_ok(const char *s, int method)
{
	if (!*s)
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (method) {
			/* RFC 9110 tchar */
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c)))
				return 0;
		} else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
			     c == '_' || c == '-')) {
			return 0;
		}
	}
	return 1;
}

/* An address with its port (as p2p-tlsterm writes it: looked for first,
 * as addr_parse() would refuse it only after inet_pton() has) or without. */
static int src_ok(const char *s)
{
	struct addr a;
	uint16_t port;

	return endpoint_parse(s, &a, &port) == 0 || addr_parse(s, &a) == 0;
}

static const struct field *find_field(const char *name)
{
	for (size_t i = 0; i < NFIELDS; i++)
		if (strcmp(fields[i].name, name) == 0)
			return &fields[i];
	return NULL;
}

static int is_written(const char *name)
{
	for (size_t i = 0; i < sizeof written / sizeof written[0]; i++)
		if (strcmp(written[i], name) == 0)
			return 1;
	return 0;
}

/* One member against its field: 0, or -1 with a message. */
static int check_member(const struct field *f, json_t *v, char *err, size_t errsize)
{
	const char *s;
	size_t len;

	if (f->kind == K_COUNT) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > f->max) {
			say(err, errsize, ".%s: not an integer from 0 to %lld", f->name, f->max);
			return -1;
		}
		return 0;
	}
	if (f->kind == K_GROUPS) {
		size_t i;
		json_t *g;

		if (!json_is_array(v) || json_array_size(v) > GROUPS_MAX) {
			say(err, errsize, ".%s: not an array of at most %d names", f->name, GROUPS_MAX);
			return -1;
		}
		json_array_foreach(v, i, g) {
			if (!json_is_string(g) || json_string_length(g) == 0 ||
			    json_string_length(g) > (size_t)f->max) {
				say(err, errsize, ".%s[%zu]: not a string of 1 to %lld bytes", f->name, i,
				    f->max);
				return -1;
			}
		}
		return 0;
	}
	if (!json_is_string(v)) {
		say(err, errsize, ".%s: not a string", f->name);
		return -1;
	}
	s = json_string_value(v);
	len = json_string_length(v);
	switch (f->kind) {
	case K_TYPE:
		if (strcmp(s, "request") && strcmp(s, "session.start") && strcmp(s, "session.end")) {
			say(err, errsize, ".%s: not \"request\", \"session.start\" or \"session.end\"",
			    f->name);
			return -1;
		}
		return 0;
	case K_DECISION:
		if (strcmp(s, "allow") && strcmp(s, "deny")) {
			say(err, errsize, ".%s: not \"allow\" or \"deny\"", f->name);
			return -1;
		}
		return 0;
	case K_TIME:
		if (!record_time_ok(s)) {
			say(err, errsize, ".%s: not an RFC 3339 time in UTC (2026-11-22T10:11:12.5Z)",
			    f->name);
			return -1;
		}
		return 0;
	case K_SRC:
		if (!src_ok(s)) {
			say(err, errsize, ".%s: not an address, address:port or [address]:port",
			    f->name);
			return -1;
		}
		return 0;
	case K_TOKEN:
	case K_METHOD:
		if (len > (size_t)f->max || !token_ok(s, f->kind == K_METHOD)) {
			say(err, errsize, ".%s: not a token of 1 to %lld %s", f->name, f->max,
			    f->kind == K_METHOD ? "HTTP token characters" : "of a-z 0-9 . _ -");
			return -1;
		}
		return 0;
	case K_NAME:
		if (len == 0 || len > (size_t)f->max) {
			say(err, errsize, ".%s: not a string of 1 to %lld bytes", f->name, f->max);
			return -1;
		}
		return 0;
	case K_TEXT:
		if (len > (size_t)f->max) {
			say(err, errsize, ".%s: longer than %lld bytes", f->name, f->max);
			return -1;
		}
		return 0;
	default:
		return 0;
	}
}

/* What a record of its type must have, beyond type and decision. */
static int check_required(json_t *rec, char *err, size_t errsize)
{
	static const char *const always[] = { "type", "resource", "decision" };
	static const char *const request[] = { "method", "path" };
	const char *type;

	for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
		if (!json_object_get(rec, always[i])) {
			say(err, errsize, ".%s: missing", always[i]);
			return -1;
		}
	type = json_string_value(json_object_get(rec, "type"));
	if (strcmp(type, "request") == 0)
		for (size_t i = 0; i < sizeof request / sizeof request[0]; i++)
			if (!json_object_get(rec, request[i])) {
				say(err, errsize, ".%s: missing (a request has one)", request[i]);
				return -1;
			}
	return 0;
}

json_t *record_check(json_t *in, char *err, size_t errsize)
{
	const char *key;
	json_t *v, *out;

	if (!json_is_object(in)) {
		say(err, errsize, "not a JSON object");
		return NULL;
	}
	json_object_foreach(in, key, v) {
		const struct field *f = find_field(key);

		if (!f) {
			if (is_written(key))
				say(err, errsize, ".%s: written by p2p-audit, not by senders", key);
			else
				say(err, errsize, ".%.64s: unknown member", key);
			return NULL;
		}
		if (check_member(f, v, err, errsize) < 0)
			return NULL;
	}
	if (check_required(in, err, errsize) < 0)
		return NULL;
	out = json_object();
	if (!out) {
		say(err, errsize, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < NFIELDS; i++) {
		v = json_object_get(in, fields[i].name);
		if (v && json_object_set(out, fields[i].name, v) < 0) {
			json_decref(out);
			say(err, errsize, "out of memory");
			return NULL;
		}
	}
	return out;
}

/* jansson's message without the "near '...'" that quotes the input. */
static const char *json_problem(json_error_t *jerr)
{
	char *near = strstr(jerr->text, " near ");

	if (near)
		*near = '\0';
	return jerr->text;
}

json_t *record_check_text(const char *text, size_t len, char *err, size_t errsize)
{
	json_error_t jerr;
	json_t *in = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), *out;

	if (!in) {
		say(err, errsize, "not JSON: column %d: %s", jerr.column, json_problem(&jerr));
		return NULL;
	}
	out = record_check(in, err, errsize);
	json_decref(in);
	return out;
}

/* SHA-256 of A then B (B may be empty) in hex. Fetched once and one
 * context kept: OpenSSL 3's SHA256() and EVP_Digest() look the algorithm
 * up again (under a lock) at every call, which cost as much as the
 * hashing of a record. */
static int sha256_hex(const void *a, size_t alen, const void *b, size_t blen,
		      char out[AUDIT_HEX + 1])
{
	static EVP_MD *sha256;
	static EVP_MD_CTX *ctx;
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (!sha256 && !(sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)))
		return -1;
	if (!ctx && !(ctx = EVP_MD_CTX_new()))
		return -1;
	if (!EVP_DigestInit_ex2(ctx, sha256, NULL) || !EVP_DigestUpdate(ctx, a, alen) ||
	    (blen && !EVP_DigestUpdate(ctx, b, blen)) || !EVP_DigestFinal_ex(ctx, md, &mdlen) ||
	    mdlen != 32)
		return -1;
	audit_hex(md, 32, out);
	return 0;
}

static int has_hash_tail(const char *line, size_t len)
{
	return len >= AUDIT_HASH_TAIL + 2 && memcmp(line + len - AUDIT_HASH_TAIL, ",\"hash\":\"", 9) == 0 &&
	       is_hex64(line + len - AUDIT_HEX - 2) && memcmp(line + len - 2, "\"}", 2) == 0;
}

/* The hashed bytes are the line without its hash member: everything before
 * ,"hash":"..." and the closing brace. */
int record_line_hash(const char *line, size_t len, char out[AUDIT_HEX + 1])
{
	if (!has_hash_tail(line, len))
		return -1;
	return sha256_hex(line, len - AUDIT_HASH_TAIL, "}", 1, out);
}

/* {"seq":N,"time":"T","host":"H", at OUT (room for 64 + AUDIT_TIME_LEN +
 * AUDIT_HOST_MAX bytes): its length, or -1 when TIME or HOST is too long.
 * Written by hand: this runs for every record. */
static int line_head(char *out, uint64_t seq, const char *time, const char *host)
{
	size_t tl = strlen(time), hl = strlen(host);
	char *o = out;

	if (tl > AUDIT_TIME_LEN || hl > AUDIT_HOST_MAX)
		return -1;
	memcpy(o, "{\"seq\":", 7);
	o = decimal_u64(o + 7, seq);
	memcpy(o, ",\"time\":\"", 9);
	o += 9;
	memcpy(o, time, tl);
	o += tl;
	memcpy(o, "\",\"host\":\"", 10);
	o += 10;
	memcpy(o, host, hl);
	o += hl;
	memcpy(o, "\",", 2);
	o += 2;
	*o = '\0';
	return (int)(o - out);
}

size_t record_line(const char *body, size_t bodylen, uint64_t seq, const char *time,
		   const char *host, const char *prev, char hash[AUDIT_HEX + 1], char *out)
{
	size_t n, len;
	char *p;
	int hn;

	if (bodylen == 0) {
		errno = EINVAL; /* a checked record has at least type, resource, decision */
		return 0;
	}
	/* {"seq":N,"time":"T","host":"H", + the record's members + ,"prev":"P"}
	 * then ,"hash":"H"} and the newline: time and host need no escaping
	 * (their characters are checked). */
	hn = line_head(out, seq, time, host);
	if (hn < 0) {
		errno = EINVAL;
		return 0;
	}
	n = (size_t)hn + bodylen + 9 + AUDIT_HEX + 2;
	len = n - 1 + AUDIT_HASH_TAIL + 1;
	if (bodylen > AUDIT_LINE_MAX || len > AUDIT_LINE_MAX) {
		errno = EMSGSIZE;
		return 0;
	}
	p = out + hn;
	memcpy(p, body, bodylen);
	p += bodylen;
	memcpy(p, ",\"prev\":\"", 9);
	memcpy(p + 9, prev, AUDIT_HEX);
	memcpy(p + 9 + AUDIT_HEX, "\"}", 2);
	if (sha256_hex(out, n, NULL, 0, hash) < 0) {
		errno = EIO;
		return 0;
	}
	/* ...,"prev":"P"} becomes ...,"prev":"P","hash":"H"}\n */
	p = out + n - 1;
	memcpy(p, ",\"hash\":\"", 9);
	memcpy(p + 9, hash, AUDIT_HEX);
	memcpy(p + 9 + AUDIT_HEX, "\"}\n", 3);
	out[len] = '\0';
	return len;
}

char *record_body(json_t *checked, size_t *bodylen)
{
	char *text = json_dumps(checked, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
	size_t n;

	if (!text)
		return NULL;
	n = strlen(text);
	if (n < 2) {
		free(text);
		errno = EINVAL;
		return NULL;
	}
	/* without its braces */
	memmove(text, text + 1, n - 2);
	text[n - 2] = '\0';
	*bodylen = n - 2;
	return text;
}

char *record_format(json_t *checked, uint64_t seq, const char *time, const char *host,
		    const char *prev, char hash[AUDIT_HEX + 1], size_t *lenp)
{
	size_t bodylen, len;
	char *body = record_body(checked, &bodylen), *line;

	if (!body)
		return NULL;
	line = malloc(AUDIT_LINE_MAX + 1);
	if (line) {
		len = record_line(body, bodylen, seq, time, host, prev, hash, line);
		if (len) {
			*lenp = len;
		} else {
			free(line);
			line = NULL;
		}
	}
	free(body);
	return line;
}

static int copy_string(json_t *v, char *out, size_t size)
{
	if (!json_is_string(v) || json_string_length(v) >= size)
		return -1;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* The members only p2p-audit writes, into INFO. */
static int check_written(const char *key, json_t *v, struct record_info *info, char *err,
			 size_t errsize)
{
	if (strcmp(key, "seq") == 0) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > COUNT_MAX) {
			say(err, errsize, ".seq: not an integer from 1 to %lld", COUNT_MAX);
			return -1;
		}
		info->seq = (uint64_t)json_integer_value(v);
	} else if (strcmp(key, "time") == 0) {
		if (copy_string(v, info->time, sizeof info->time) < 0 || !record_time_ok(info->time)) {
			say(err, errsize, ".time: not an RFC 3339 time in UTC");
			return -1;
		}
	} else if (strcmp(key, "host") == 0) {
		if (copy_string(v, info->host, sizeof info->host) < 0 || !record_host_ok(info->host)) {
			say(err, errsize, ".host: not a host name");
			return -1;
		}
	} else {
		char *dst = strcmp(key, "prev") == 0 ? info->prev : info->hash;

		if (copy_string(v, dst, AUDIT_HEX + 1) < 0 || strlen(dst) != AUDIT_HEX ||
		    !is_hex64(dst)) {
			say(err, errsize, ".%s: not 64 lower-case hex digits", key);
			return -1;
		}
	}
	return 0;
}

int record_parse_line(const char *line, size_t len, struct record_info *info, char *err,
		      size_t errsize)
{
	json_error_t jerr;
	json_t *rec, *v;
	const char *key;
	char want[AUDIT_HEX + 1];
	int rc = RECORD_BAD;

	memset(info, 0, sizeof *info);
	if (!has_hash_tail(line, len)) {
		say(err, errsize, "does not end with the hash member ,\"hash\":\"<64 hex digits>\"}");
		return RECORD_BAD;
	}
	rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!rec) {
		say(err, errsize, "not JSON: column %d: %s", jerr.column, json_problem(&jerr));
		return RECORD_BAD;
	}
	if (!json_is_object(rec)) {
		say(err, errsize, "not a JSON object");
		goto out;
	}
	json_object_foreach(rec, key, v) {
		const struct field *f;

		if (is_written(key)) {
			if (check_written(key, v, info, err, errsize) < 0)
				goto out;
			continue;
		}
		f = find_field(key);
		if (!f) {
			say(err, errsize, ".%.64s: unknown member", key);
			goto out;
		}
		if (check_member(f, v, err, errsize) < 0)
			goto out;
	}
	for (size_t i = 0; i < sizeof written / sizeof written[0]; i++)
		if (!json_object_get(rec, written[i])) {
			say(err, errsize, ".%s: missing", written[i]);
			goto out;
		}
	if (check_required(rec, err, errsize) < 0)
		goto out;
	snprintf(info->type, sizeof info->type, "%s",
		 json_string_value(json_object_get(rec, "type")));
	info->deny = strcmp(json_string_value(json_object_get(rec, "decision")), "deny") == 0;
	/* The hash member is the last and only one (duplicates are refused),
	 * so it is the one at the end of the line. */
	if (memcmp(info->hash, line + len - AUDIT_HEX - 2, AUDIT_HEX) != 0) {
		say(err, errsize, ".hash: not the last member");
		goto out;
	}
	if (record_line_hash(line, len, want) < 0) {
		say(err, errsize, "unable to compute SHA-256");
		goto out;
	}
	if (strcmp(want, info->hash) != 0) {
		say(err, errsize, "seq %llu: the hash does not match the line (the line was changed)",
		    (unsigned long long)info->seq);
		rc = RECORD_HASH;
		goto out;
	}
	rc = RECORD_OK;
out:
	json_decref(rec);
	return rc;
}

/* ---- the usual record, read without jansson ----
 *
 * p2p-tlsterm sends a record per request, so this is p2p-audit's busiest
 * path. The reader below takes the common case: compact or spaced JSON
 * whose strings are printable ASCII without escapes, numbers plain digits,
 * every member known, once, and valid. Then the JSON that record_check()
 * and json_dumps() would make is the input's own bytes, members put in the
 * order of the file, and it is written directly. Anything else (an escape,
 * a byte outside 0x20..0x7e, a refusal of any kind) is left to jansson and
 * record_check(), which take it or refuse it with their message as
 * before: this reader never refuses, it only declines. */

struct scan {
	const char *p, *end;
	int spaced;           /* whitespace was skipped somewhere */
};

struct span {
	const char *p;
	size_t len;
};

static void skip_space_run(struct scan *s)
{
	const char *from = s->p;

	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
	s->spaced |= s->p != from;
}

/* Past any whitespace at S: compact JSON has none, which is seen at once. */
static inline void skip_space(struct scan *s)
{
	if (s->p >= s->end || (unsigned char)*s->p <= ' ')
		skip_space_run(s);
}

static int take(struct scan *s, char c)
{
	skip_space(s);
	if (s->p < s->end && *s->p == c) {
		s->p++;
		return 1;
	}
	return 0;
}

/* A string of printable ASCII without '"' or '\': its bytes, quotes
 * excluded. */
static int plain_string(struct scan *s, struct span *out)
{
	const unsigned char *p, *end = (const unsigned char *)s->end;

	skip_space(s);
	if (s->p >= s->end || *s->p != '"')
		return 0;
	/* JSON's plain bytes less DEL: anything else goes the jansson way */
	p = (const unsigned char *)s->p + 1;
	p += json_plain_len((const char *)p, (size_t)(end - p), JSON_PRINTABLE);
	if (p >= end || *p != '"')
		return 0;
	out->p = s->p + 1;
	out->len = (size_t)((const char *)p - out->p);
	s->p = (const char *)p + 1;
	return 1;
}

/* The digits at S (no sign), at most MAX of them, no leading zero and no
 * fraction or exponent after them: their value in *V, S moved past them;
 * 0, S unmoved, when they are not such digits. */
static int plain_digits(struct scan *s, int max, long long *v)
{
	const char *p;

	for (p = s->p; p < s->end && *p >= '0' && *p <= '9'; p++)
		;
	if (p == s->p || p - s->p > max || (*s->p == '0' && p - s->p > 1))
		return 0;
	if (p < s->end && (*p == '.' || *p == 'e' || *p == 'E'))
		return 0;
	*v = 0;
	for (const char *q = s->p; q < p; q++)
		*v = *v * 10 + (*q - '0');
	s->p = p;
	return 1;
}

/* Digits that jansson reads as an integer: no sign, no leading zero, and
 * no fraction or exponent after them (those make a real). At most 15
 * digits, below COUNT_MAX; a longer one is declined. */
static int plain_count(struct scan *s, struct span *out, long long *value)
{
	const char *start;

	skip_space(s);
	start = s->p;
	if (!plain_digits(s, 15, value))
		return 0;
	out->p = start;
	out->len = (size_t)(s->p - start);
	return 1;
}

/* Whether the span SP holds the string literal LIT: its length first, then
 * its bytes, compared inline (a call to strncmp for each was a tenth of
 * the reader's time). */
#define SPAN_IS(sp, lit) ((sp)->len == sizeof lit - 1 && memcmp((sp)->p, lit, sizeof lit - 1) == 0)

static int span_token_ok(const struct span *sp, int method)
{
	char buf[40];

	if (sp->len >= sizeof buf)
		return 0;
	memcpy(buf, sp->p, sp->len);
	buf[sp->len] = '\0';
	return token_ok(buf, method);
}

/* One member's value, checked as check_member() does: 1 valid, 0 decline. */
static int plain_member(struct scan *s, const struct field *f, struct span *v)
{
	char buf[64];
	long long n;

	if (f->kind == K_COUNT)
		return plain_count(s, v, &n) && n <= f->max;
	if (f->kind == K_GROUPS) {
		struct span g;
		int count = 0;

		skip_space(s);
		v->p = s->p;
		if (!take(s, '['))
			return 0;
		if (!take(s, ']')) {
			do {
				if (!plain_string(s, &g) || g.len == 0 || g.len > (size_t)f->max ||
				    ++count > GROUPS_MAX)
					return 0;
			} while (take(s, ','));
			if (!take(s, ']'))
				return 0;
		}
		v->len = (size_t)(s->p - v->p);
		return 1;
	}
	if (!plain_string(s, v))
		return 0;
	switch (f->kind) {
	case K_TYPE:
		return SPAN_IS(v, "request") || SPAN_IS(v, "session.start") || SPAN_IS(v, "session.end");
	case K_DECISION:
		return SPAN_IS(v, "allow") || SPAN_IS(v, "deny");
	case K_TIME:
	case K_SRC:
		if (v->len >= sizeof buf)
			return 0;
		memcpy(buf, v->p, v->len);
		buf[v->len] = '\0';
		return f->kind == K_TIME ? record_time_ok(buf) : src_ok(buf);
	case K_TOKEN:
	case K_METHOD:
		return v->len <= (size_t)f->max && span_token_ok(v, f->kind == K_METHOD);
	case K_NAME:
		return v->len > 0 && v->len <= (size_t)f->max;
	case K_TEXT:
		return v->len <= (size_t)f->max;
	default:
		return 0;
	}
}

#define ALWAYS (1u << F_TYPE | 1u << F_RESOURCE | 1u << F_DECISION)
#define REQUEST (1u << F_METHOD | 1u << F_PATH)

/* The field named KEY, looked for from FROM on and then from the start:
 * a sender that writes the members in the file's order (p2p-tlsterm does)
 * finds each at the first look. */
static const struct field *find_field_span(const struct span *key, size_t from, size_t *index)
{
	for (size_t k = 0; k < NFIELDS; k++) {
		size_t i = (from + k) % NFIELDS;

		if (fields[i].len == key->len && !memcmp(fields[i].name, key->p, key->len)) {
			*index = i;
			return &fields[i];
		}
	}
	return NULL;
}

/* The key at S when it is the name of a field after *INDEX, as a sender
 * writing in the file's order has it: that field (*INDEX its place), S
 * past the key; NULL, S unmoved, when it is not (then the key is read and
 * looked for). A field's name has no byte to escape, so a key whose bytes
 * between the quotes equal it is that field's. */
static const struct field *next_key(struct scan *s, size_t *index)
{
	skip_space(s);
	for (size_t i = (*index + 1) % NFIELDS; i < NFIELDS; i++) {
		size_t n = fields[i].len;

		if ((size_t)(s->end - s->p) >= n + 2 && s->p[n + 1] == '"' && s->p[0] == '"' &&
		    memcmp(s->p + 1, fields[i].name, n) == 0) {
			s->p += n + 2;
			*index = i;
			return &fields[i];
		}
	}
	return NULL;
}

/* The record object at S into OUT (the members in the file's order,
 * compact, no braces): 1, or 0 to decline. OUT has room for as many bytes
 * as the input has left: the output is never longer. */
static int plain_record(struct scan *s, char *out, size_t *outlen)
{
	struct span v[NFIELDS], key;
	uint32_t seen = 0;
	size_t i = NFIELDS - 1;   /* the field found last: the next is looked for after it */
	char *o = out;
	const char *members;
	int in_order = 1;

	if (!take(s, '{') || take(s, '}'))
		return 0;
	members = s->p;
	s->spaced = 0;
	do {
		const struct field *f;
		size_t last = i;

		if (!(f = next_key(s, &i)) &&
		    (!plain_string(s, &key) || !(f = find_field_span(&key, i + 1, &i))))
			return 0;
		if ((seen >> i & 1) || !take(s, ':') || !plain_member(s, f, &v[i]))
			return 0;
		in_order &= seen == 0 || i > last;
		seen |= 1u << i;
	} while (take(s, ','));
	if (!take(s, '}'))
		return 0;
	/* check_required(): type, resource and decision; a request's method
	 * and path */
	if ((seen & ALWAYS) != ALWAYS ||
	    (SPAN_IS(&v[F_TYPE], "request") && (seen & REQUEST) != REQUEST))
		return 0;
	if (in_order && !s->spaced) {
		/* compact, in the file's order (p2p-tlsterm's records): what
		 * would be written is the members as they came */
		*outlen = (size_t)(s->p - 1 - members);
		memcpy(out, members, *outlen);
		return 1;
	}
	for (i = 0; i < NFIELDS; i++) {
		size_t n = fields[i].len;

		if (!(seen >> i & 1))
			continue;
		if (o != out)
			*o++ = ',';
		*o++ = '"';
		memcpy(o, fields[i].name, n);
		o += n;
		*o++ = '"';
		*o++ = ':';
		if (fields[i].kind == K_COUNT) {
			memcpy(o, v[i].p, v[i].len);
			o += v[i].len;
		} else if (fields[i].kind == K_GROUPS) {
			/* as it came, without the spaces between strings */
			int quoted = 0;

			for (size_t j = 0; j < v[i].len; j++) {
				char c = v[i].p[j];

				if (c == '"')
					quoted = !quoted;
				else if (!quoted && (c == ' ' || c == '\t' || c == '\n' || c == '\r'))
					continue;
				*o++ = c;
			}
		} else {
			*o++ = '"';
			memcpy(o, v[i].p, v[i].len);
			o += v[i].len;
			*o++ = '"';
		}
	}
	*outlen = (size_t)(o - out);
	return 1;
}

int record_quick(const char *text, size_t len, char *body, size_t *bodylen)
{
	struct scan s = { text, text + len, 0 };

	if (!plain_record(&s, body, bodylen))
		return 0;
	skip_space(&s);
	return s.p == s.end;
}

/* An id: null, or an integer of at most 18 digits (a longer one is left to
 * jansson, which refuses what does not fit). */
static int plain_id(struct scan *s, struct record_request *r)
{
	const char *start;
	int neg;
	long long v;

	skip_space(s);
	if (s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0) {
		s->p += 4;
		r->id_null = 1;
		return 1;
	}
	start = s->p;
	neg = s->p < s->end && *s->p == '-';
	s->p += neg;
	if (!plain_digits(s, 18, &v)) {
		s->p = start;
		return 0;
	}
	r->id_null = 0;
	r->id = neg ? -v : v;
	return 1;
}

int record_quick_request(const char *line, size_t len, struct record_request *r, char *body)
{
	struct scan s = { line, line + len, 0 };
	struct span key, op;
	int seen_id = 0, seen_op = 0, seen_record = 0;

	r->id_null = 1;
	r->id = 0;
	if (!take(&s, '{'))
		return 0;
	do {
		if (!plain_string(&s, &key) || !take(&s, ':'))
			return 0;
		if (SPAN_IS(&key, "id") && !seen_id) {
			if (!plain_id(&s, r))
				return 0;
			seen_id = 1;
		} else if (SPAN_IS(&key, "op") && !seen_op) {
			if (!plain_string(&s, &op) || !SPAN_IS(&op, "log"))
				return 0;
			seen_op = 1;
		} else if (SPAN_IS(&key, "record") && !seen_record) {
			if (!plain_record(&s, body, &r->bodylen))
				return 0;
			seen_record = 1;
		} else {
			return 0;
		}
	} while (take(&s, ','));
	if (!take(&s, '}') || !seen_op || !seen_record)
		return 0;
	skip_space(&s);
	return s.p == s.end;
}
