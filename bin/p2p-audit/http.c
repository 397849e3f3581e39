/* http.c: the head of an HTTP/1.1 request (RFC 9112), as the collector
 * needs it: method, target, version, Content-Length, Connection, Expect,
 * and Transfer-Encoding (refused). Strict: lines end in CRLF, no obsolete
 * line folding, one Content-Length, at most 100 fields. */
#include "audit.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define FIELDS_MAX 100

static int bad(int *status, int code, char *err, size_t errsize, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int bad(int *status, int code, char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	*status = code;
	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
	return HTTP_BAD;
}

static int tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Does the comma-separated list VALUE (LEN bytes) hold TOKEN, in any case? */
static int list_has(const char *value, size_t len, const char *token)
{
	size_t tl = strlen(token), i = 0;

	while (i < len) {
		size_t s, e;

		while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
			i++;
		s = i;
		while (i < len && value[i] != ',')
			i++;
		e = i;
		while (e > s && (value[e - 1] == ' ' || value[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(value + s, token, tl) == 0)
			return 1;
	}
	return 0;
}

static int parse_request_line(const char *p, size_t len, struct http_request *req,
			      int *status, char *err, size_t errsize)
{
	const char *sp1 = memchr(p, ' ', len), *sp2;
	size_t mlen, tlen;

	if (!sp1)
		return bad(status, 400, err, errsize, "bad request line");
	mlen = (size_t)(sp1 - p);
	sp2 = memchr(sp1 + 1, ' ', len - mlen - 1);
	if (!sp2)
		return bad(status, 400, err, errsize, "bad request line");
	tlen = (size_t)(sp2 - sp1 - 1);
	if (mlen == 0 || mlen >= sizeof req->method)
		return bad(status, 400, err, errsize, "bad method");
	for (size_t i = 0; i < mlen; i++)
		if (!tchar((unsigned char)p[i]))
			return bad(status, 400, err, errsize, "bad method");
	if (tlen == 0)
		return bad(status, 400, err, errsize, "no request target");
	if (tlen >= sizeof req->target)
		return bad(status, 414, err, errsize, "request target too long");
	for (size_t i = 0; i < tlen; i++) {
		unsigned char c = (unsigned char)sp1[1 + i];

		if (c <= ' ' || c >= 0x7f)
			return bad(status, 400, err, errsize, "bad request target");
	}
	if (memchr(sp2 + 1, ' ', len - (size_t)(sp2 + 1 - p)))
		return bad(status, 400, err, errsize, "bad request line");
	memcpy(req->method, p, mlen);
	req->method[mlen] = '\0';
	memcpy(req->target, sp1 + 1, tlen);
	req->target[tlen] = '\0';
	if (len - (size_t)(sp2 + 1 - p) != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
	    (sp2[8] != '0' && sp2[8] != '1'))
		return bad(status, 505, err, errsize, "not HTTP/1.0 or HTTP/1.1");
	req->minor = sp2[8] - '0';
	return HTTP_DONE;
}

static int parse_length(const char *v, size_t len, long long *out)
{
	long long n = 0;

	if (len == 0 || len > 18)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (v[i] - '0');
	}
	*out = n;
	return 0;
}

static int parse_field(const char *p, size_t len, struct http_request *req, int *close_seen,
		       int *keep_seen, int *status, char *err, size_t errsize)
{
	const char *colon = memchr(p, ':', len), *v, *end = p + len;
	size_t nlen, vlen;

	if (len && (p[0] == ' ' || p[0] == '\t'))
		return bad(status, 400, err, errsize, "obsolete line folding");
	if (!colon || colon == p)
		return bad(status, 400, err, errsize, "bad header field");
	nlen = (size_t)(colon - p);
	for (size_t i = 0; i < nlen; i++)
		if (!tchar((unsigned char)p[i]))
			return bad(status, 400, err, errsize, "bad header field name");
	v = colon + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	vlen = (size_t)(end - v);
	for (size_t i = 0; i < vlen; i++) {
		unsigned char c = (unsigned char)v[i];

		if ((c < ' ' && c != '\t') || c == 0x7f)
			return bad(status, 400, err, errsize, "bad header field value");
	}
	if (nlen == 14 && strncasecmp(p, "content-length", 14) == 0) {
		long long n;

		if (parse_length(v, vlen, &n) < 0)
			return bad(status, 400, err, errsize, "bad Content-Length");
		if (req->content_length >= 0 && req->content_length != n)
			return bad(status, 400, err, errsize, "two different Content-Length fields");
		req->content_length = n;
	} else if (nlen == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
		req->chunked = 1;
	} else if (nlen == 10 && strncasecmp(p, "connection", 10) == 0) {
		*close_seen |= list_has(v, vlen, "close");
		*keep_seen |= list_has(v, vlen, "keep-alive");
	} else if (nlen == 6 && strncasecmp(p, "expect", 6) == 0) {
		if (vlen != 12 || strncasecmp(v, "100-continue", 12) != 0)
			return bad(status, 417, err, errsize, "unknown expectation");
		req->expect_continue = 1;
	}
	return HTTP_DONE;
}

int http_parse_head(const char *buf, size_t len, struct http_request *req, int *status,
		    char *err, size_t errsize)
{
	const char *end = NULL, *p = buf, *line_end;
	int close_seen = 0, keep_seen = 0, nfields = 0, rc;

	memset(req, 0, sizeof *req);
	req->content_length = -1;
	*status = 0;
	for (size_t i = 0; i + 3 < len; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
			end = buf + i + 2; /* after the last field's CRLF */
			break;
		}
	if (!end) {
		if (len >= HTTP_HEAD_MAX)
			return bad(status, 431, err, errsize, "request head over %d bytes",
				   HTTP_HEAD_MAX);
		return HTTP_INCOMPLETE;
	}
	if ((size_t)(end + 2 - buf) > HTTP_HEAD_MAX)
		return bad(status, 431, err, errsize, "request head over %d bytes", HTTP_HEAD_MAX);
	req->head_len = (size_t)(end + 2 - buf);
	for (const char *q = buf; q < end; q++)
		if ((*q == '\r' && q[1] != '\n') || (*q == '\n' && (q == buf || q[-1] != '\r')) ||
		    *q == '\0')
			return bad(status, 400, err, errsize, "bare CR, LF or NUL in the head");
	line_end = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
	if (!line_end || line_end >= end)
		return bad(status, 400, err, errsize, "bad request line");
	rc = parse_request_line(p, (size_t)(line_end - p), req, status, err, errsize);
	if (rc != HTTP_DONE)
		return rc;
	for (p = line_end + 2; p < end; p = line_end + 2) {
		line_end = p;
		while (!(line_end[0] == '\r' && line_end[1] == '\n'))
			line_end++;
		if (++nfields > FIELDS_MAX)
			return bad(status, 431, err, errsize, "more than %d header fields", FIELDS_MAX);
		rc = parse_field(p, (size_t)(line_end - p), req, &close_seen, &keep_seen, status, err,
				 errsize);
		if (rc != HTTP_DONE)
			return rc;
	}
	req->keep_alive = req->minor == 1 ? !close_seen : keep_seen && !close_seen;
	return HTTP_DONE;
}
