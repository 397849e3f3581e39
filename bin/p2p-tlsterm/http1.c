/* http1.c: the strict HTTP/1.1 parser (RFC 9112).
 *
 * A proxy and its upstream must agree on where every request ends, or one
 * client's bytes become another request upstream (request smuggling). So
 * anything two parsers could read two ways is refused, not repaired:
 * Content-Length with Transfer-Encoding, two Content-Lengths (even equal),
 * a coding other than "chunked", obs-fold, a bare CR or LF, whitespace
 * before a colon, a control character in a value, a field name that is not
 * a token, a request line or head over the limits. Forwarded heads are
 * rebuilt from the parsed fields, never copied. */
#include <string.h>
#include <stdlib.h>
#include <strings.h>

#include "tlsterm.h"

/* What each byte may be in a head, looked up once a byte: T a tchar (of a
 * token: a method, a field name), V a byte of a field value (field-vchar,
 * SP, HTAB and obs-text: no controls, no DEL). */
#define T 1
#define V 2
static const unsigned char head_byte[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, V, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	V, V|T, V, V|T, V|T, V|T, V|T, V|T, V, V, V|T, V|T, V, V|T, V|T, V,
	V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V, V, V, V, V, V,
	V, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T,
	V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V, V, V, V|T, V|T,
	V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T,
	V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V|T, V, V|T, V, V|T, 0,
	V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
	V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
	V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
	V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
	V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
	V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
	V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
	V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
};
#undef T
#undef V

static int is_tchar(unsigned char c)
{
	return head_byte[c] & 1;
}

static int is_hex(unsigned char c, unsigned *v)
{
	if (c >= '0' && c <= '9')
		*v = c - '0';
	else if (c >= 'a' && c <= 'f')
		*v = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		*v = c - 'A' + 10;
	else
		return 0;
	return 1;
}

static int is_value_char(unsigned char c)
{
	return head_byte[c] & 2;
}

void http_msg_free(struct http_msg *m)
{
	free(m->block);
	memset(m, 0, sizeof *m);
}

/* Whether H is the field NAME of LEN bytes (any case): the lengths first,
 * as most fields differ in length from the one looked for. */
static int field_is(const struct header *h, const char *name, size_t len)
{
	return h->name_len == len && !strncasecmp(h->name, name, len);
}

const struct header *http_find(const struct http_msg *m, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < m->nh; i++)
		if (field_is(&m->h[i], name, len))
			return &m->h[i];
	return NULL;
}

size_t http_count(const struct http_msg *m, const char *name)
{
	size_t n = 0, len = strlen(name);

	for (size_t i = 0; i < m->nh; i++)
		n += field_is(&m->h[i], name, len);
	return n;
}

/* The next element of the comma-separated list at *P (empty ones
 * skipped), its length in *N, *P moved past it; NULL at the end. */
static const char *list_next(const char **p, size_t *n)
{
	const char *start = *p, *end, *e;

	while (*start == ' ' || *start == '\t' || *start == ',')
		start++;
	if (!*start)
		return NULL;
	for (end = start; *end && *end != ','; end++)
		;
	for (e = end; e > start && (e[-1] == ' ' || e[-1] == '\t'); e--)
		;
	*n = (size_t)(e - start);
	*p = end;
	return start;
}

/* Whether the comma-separated list VALUE holds TOKEN (any case). */
static int list_has(const char *value, const char *token)
{
	size_t tl = strlen(token), n;
	const char *p = value, *t;

	while ((t = list_next(&p, &n)))
		if (n == tl && !strncasecmp(t, token, tl))
			return 1;
	return 0;
}

/* The usual Connection fields list only close or keep-alive: noted once
 * here, so that asking of every other field of the message
 * (http_connection_has) does not go through them again. */
void http_note_connection(struct http_msg *m, const char *value)
{
	const char *p = value, *t;
	size_t n;

	m->nconnection++;
	while ((t = list_next(&p, &n))) {
		if (n == 5 && !strncasecmp(t, "close", 5))
			m->conn_close = 1;
		else if (n == 10 && !strncasecmp(t, "keep-alive", 10))
			m->conn_keep_alive = 1;
		else
			m->conn_other = 1;
	}
}

int http_connection_has(const struct http_msg *m, const char *token)
{
	if (!m->nconnection)
		return 0;   /* the usual case: no Connection field to look through */
	if (!m->conn_other) {
		size_t n = strlen(token);

		return (n == 5 && m->conn_close && !strncasecmp(token, "close", 5)) ||
		       (n == 10 && m->conn_keep_alive && !strncasecmp(token, "keep-alive", 10));
	}
	for (size_t i = 0; i < m->nh; i++)
		if (field_is(&m->h[i], "connection", 10) && list_has(m->h[i].value, token))
			return 1;
	return 0;
}

/* By the length first: this runs for every field of every message. */
int http_is_hop_by_hop(const char *name, size_t len)
{
	switch (len) {
	case 2:
		return !strncasecmp(name, "te", 2);
	case 7:
		return !strncasecmp(name, "trailer", 7) || !strncasecmp(name, "upgrade", 7);
	case 10:
		return !strncasecmp(name, "connection", 10) || !strncasecmp(name, "keep-alive", 10);
	case 16:
		return !strncasecmp(name, "proxy-connection", 16);
	case 17:
		return !strncasecmp(name, "transfer-encoding", 17);
	case 18:
		return !strncasecmp(name, "proxy-authenticate", 18);
	case 19:
		return !strncasecmp(name, "proxy-authorization", 19);
	default:
		return 0;
	}
}

const char *http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 304: return "Not Modified";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* Where the head ends: the offset after its empty line, 0 when it has not
 * ended yet, -1 on a bare LF (a line must end in CRLF). */
static long head_end(const char *d, size_t len)
{
	const char *nl = d, *end = d + len;

	while ((nl = memchr(nl, '\n', (size_t)(end - nl))) != NULL) {
		size_t i = (size_t)(nl - d);

		if (i == 0 || d[i - 1] != '\r')
			return -1;
		if (i >= 3 && d[i - 2] == '\n' && d[i - 3] == '\r')
			return (long)(i + 1);
		nl++;
	}
	return 0;
}

/* The header fields of BLOCK from P (after the start line) to the empty
 * line, in place. 0, or -1 with WHY. */
static int parse_fields(struct http_msg *m, char *p, int *status, const char **why)
{
	*status = 400;
	while (!(p[0] == '\r' && p[1] == '\n')) {
		struct header *h;
		char *name = p, *v, *end;

		if (*p == ' ' || *p == '\t') {
			*why = "obs-fold (a line continued by whitespace)";
			return -1;
		}
		while (is_tchar((unsigned char)*p))
			p++;
		if (p == name || *p != ':') {
			*why = p == name ? "a field name that is not a token" :
			       (*p == ' ' || *p == '\t') ? "whitespace between a field name and its colon" :
			       "a field name that is not a token";
			return -1;
		}
		if (m->nh == m->hcap) {     /* HTTP_HEADERS_MAX, or more than the lines */
			*status = 431;
			*why = "too many header fields";
			return -1;
		}
		h = &m->h[m->nh++];
		h->name = name;
		h->name_len = (size_t)(p - name);
		*p++ = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		v = p;
		while (is_value_char((unsigned char)*p))
			p++;
		if (*p != '\r' && *p != '\n') {
			*why = "a control character in a field value";
			return -1;
		}
		if (p[0] != '\r' || p[1] != '\n') {
			*why = "a bare CR or LF";
			return -1;
		}
		end = p;
		while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		*end = '\0';
		h->value = v;
		h->value_len = (size_t)(end - v);
		if (h->name_len == 10 && !strcasecmp(h->name, "connection"))
			http_note_connection(m, h->value);
		p += 2;
	}
	return 0;
}

/* Content-Length: 1 to 18 digits, nothing else (no list, no sign). */
static int parse_length(const char *v, uint64_t *out)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; v[i]; i++) {
		if (v[i] < '0' || v[i] > '9' || i >= 18)
			return -1;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	if (i == 0)
		return -1;
	*out = n;
	return 0;
}

/* The framing both kinds of message share. */
static int parse_framing(struct http_msg *m, int *status, const char **why)
{
	size_t ncl = http_count(m, "content-length"), nte = http_count(m, "transfer-encoding");

	*status = 400;
	if (ncl > 1) {
		*why = "Content-Length given more than once";
		return -1;
	}
	if (ncl && nte) {
		*why = "both Content-Length and Transfer-Encoding";
		return -1;
	}
	if (nte > 1) {
		*why = "Transfer-Encoding given more than once";
		return -1;
	}
	if (nte) {
		if (m->minor == 0) {
			*why = "Transfer-Encoding in HTTP/1.0";
			return -1;
		}
		if (strcasecmp(http_find(m, "transfer-encoding")->value, "chunked")) {
			*status = 501;
			*why = "a transfer coding other than chunked";
			return -1;
		}
		m->body = BODY_CHUNKED;
	} else if (ncl) {
		if (parse_length(http_find(m, "content-length")->value, &m->length) < 0) {
			*why = "a Content-Length that is not a number";
			return -1;
		}
		m->body = BODY_LENGTH;
	}
	m->keep_alive = m->minor >= 1 ? !http_connection_has(m, "close")
				      : http_connection_has(m, "keep-alive");
	return 0;
}

static int good_host(const char *h)
{
	if (!*h)
		return 0;
	for (; *h; h++)
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
		      strchr(".-_:[]", *h)))
			return 0;
	return 1;
}

/* The lines of a head: more than its fields. */
static size_t count_lines(const char *p, size_t len)
{
	size_t n = 0;
	const char *end = p + len;

	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

int http_msg_alloc(struct http_msg *m, size_t size, size_t nfields)
{
	size_t at = (size + _Alignof(struct header) - 1) / _Alignof(struct header) *
		    _Alignof(struct header);

	if (nfields > HTTP_HEADERS_MAX)
		nfields = HTTP_HEADERS_MAX;
	if (!(m->block = malloc(at + nfields * sizeof *m->h)))
		return -1;
	m->h = (struct header *)(void *)(m->block + at);
	m->hcap = nfields;
	m->nh = 0;
	return 0;
}

/* Copy the head and check its start: the common part of both parsers.
 * Returns 1 (BLOCK set), 0 (more input) or -1. */
static int take_head(const char *data, size_t len, struct http_msg *m, size_t *used, size_t skip,
		     int *status, const char **why, int request)
{
	long end;

	memset(m, 0, sizeof *m);
	if (request) {
		const char *nl = memchr(data + skip, '\n', len - skip);
		size_t first = nl ? (size_t)(nl - data - skip) : len - skip;

		if (first > HTTP_LINE_MAX) {
			*status = 414;
			*why = "request line too long";
			return -1;
		}
	}
	end = head_end(data + skip, len - skip);
	if (end < 0) {
		*status = 400;
		*why = "a bare LF";
		return -1;
	}
	if (end == 0) {
		if (len - skip >= HTTP_HEAD_MAX) {
			*status = 431;
			*why = "head too large";
			return -1;
		}
		return 0;
	}
	if ((size_t)end > HTTP_HEAD_MAX) {
		*status = 431;
		*why = "head too large";
		return -1;
	}
	if (http_msg_alloc(m, (size_t)end + 1, count_lines(data + skip, (size_t)end)) < 0) {
		*status = 503;
		*why = "out of memory";
		return -1;
	}
	memcpy(m->block, data + skip, (size_t)end);
	m->block[end] = '\0';
	*used = skip + (size_t)end;
	if (memchr(m->block, '\0', (size_t)end)) {
		*status = 400;
		*why = "a NUL in the head";
		return -1;
	}
	return 1;
}

int http_parse_request(const char *data, size_t len, struct http_msg *m, size_t *used,
		       int *status, const char **why)
{
	size_t skip = 0;
	char *p, *method, *target;
	int r;

	/* an empty line or two before a request (after a body) is tolerated */
	while (skip + 1 < len && skip < 4 && data[skip] == '\r' && data[skip + 1] == '\n')
		skip += 2;
	if ((r = take_head(data, len, m, used, skip, status, why, 1)) <= 0)
		return r;
	*status = 400;
	p = method = m->block;
	while (is_tchar((unsigned char)*p))
		p++;
	if (p == method || p - method > 32 || *p != ' ') {
		*why = "a malformed method";
		return -1;
	}
	*p++ = '\0';
	target = p;
	while ((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f)
		p++;
	if (p == target || *p != ' ') {
		*why = "a malformed request target";
		return -1;
	}
	*p++ = '\0';
	if (strncmp(p, "HTTP/", 5) || p[5] < '0' || p[5] > '9' || p[6] != '.' || p[7] < '0' ||
	    p[7] > '9' || p[8] != '\r' || p[9] != '\n') {
		*why = "a malformed HTTP version";
		return -1;
	}
	if (p[5] != '1') {
		*status = 505;
		*why = "not HTTP/1";
		return -1;
	}
	m->minor = p[7] - '0';
	if (m->minor > 1) {
		*status = 505;
		*why = "an HTTP/1 minor version above 1";
		return -1;
	}
	m->method = method;
	m->target = target;
	if (!(target[0] == '/' || (!strcmp(target, "*") && !strcmp(method, "OPTIONS")))) {
		*why = "a request target not in origin form";
		return -1;
	}
	if (parse_fields(m, p + 10, status, why) < 0 || parse_framing(m, status, why) < 0)
		return -1;
	*status = 400;
	if (http_count(m, "host") > 1) {
		*why = "Host given more than once";
		return -1;
	}
	if (http_find(m, "host")) {
		m->host = http_find(m, "host")->value;
		if (!good_host(m->host)) {
			*why = "a malformed Host";
			return -1;
		}
	} else if (m->minor == 1) {
		*why = "no Host in an HTTP/1.1 request";
		return -1;
	}
	if (http_find(m, "expect")) {
		if (http_count(m, "expect") > 1 || strcasecmp(http_find(m, "expect")->value, "100-continue")) {
			*status = 417;
			*why = "an expectation other than 100-continue";
			return -1;
		}
		m->expect_continue = m->minor == 1;
	}
	m->upgrade = http_find(m, "upgrade") && http_connection_has(m, "upgrade");
	if (!strcmp(method, "CONNECT")) {
		*status = 405;
		*why = "CONNECT is not proxied";
		return -1;
	}
	return 1;
}

int http_parse_response(const char *data, size_t len, const char *method, struct http_msg *m,
			size_t *used, const char **why)
{
	int status, r;
	char *p;

	if ((r = take_head(data, len, m, used, 0, &status, why, 0)) <= 0)
		return r;
	p = m->block;
	if (strncmp(p, "HTTP/1.", 7) || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
	    p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9') {
		*why = "a malformed status line";
		return -1;
	}
	m->minor = p[7] - '0';
	m->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	p += 12;
	if (*p == ' ')
		p++;
	m->reason = p;
	while (*p != '\r') {
		if (!is_value_char((unsigned char)*p)) {
			*why = "a control character in the reason";
			return -1;
		}
		p++;
	}
	if (p[1] != '\n') {
		*why = "a bare CR";
		return -1;
	}
	*p = '\0';
	if (parse_fields(m, p + 2, &status, why) < 0 || parse_framing(m, &status, why) < 0)
		return -1;
	if (m->status < 200 || m->status == 204 || m->status == 304 || !strcmp(method, "HEAD")) {
		m->body = BODY_NONE;
	} else if (m->body == BODY_NONE && !http_find(m, "content-length")) {
		m->body = BODY_CLOSE;
		m->keep_alive = 0;
	}
	m->upgrade = m->status == 101;
	return 1;
}

/* ---- chunked bodies ---- */

enum { C_SIZE0, C_SIZE, C_EXT, C_SIZE_LF, C_DATA, C_DATA_CR, C_DATA_LF, C_TRAILER0,
       C_TRAILER, C_TRAILER_LF, C_END_LF, C_DONE };

#define CHUNK_LINE_MAX 4096
#define TRAILERS_MAX 8192

int chunked_step(struct chunked *c, const char *in, size_t len, size_t maxdata, size_t *used,
		 const char **data, size_t *dlen, const char **why)
{
	size_t i = 0;

	*data = NULL;
	*dlen = 0;
	while (i < len) {
		unsigned char ch = (unsigned char)in[i];
		unsigned v;

		switch (c->state) {
		case C_SIZE0:
		case C_SIZE:
			if (is_hex(ch, &v)) {
				if (c->left >> 56) {
					*why = "a chunk size too large";
					return -1;
				}
				c->left = c->left * 16 + v;
				c->state = C_SIZE;
			} else if (c->state == C_SIZE && ch == ';') {
				c->state = C_EXT;
			} else if (c->state == C_SIZE && ch == '\r') {
				c->state = C_SIZE_LF;
			} else {
				*why = "a malformed chunk size";
				return -1;
			}
			break;
		case C_EXT:
			if (ch == '\r') {
				c->state = C_SIZE_LF;
			} else if (!is_value_char(ch)) {
				*why = "a control character in a chunk extension";
				return -1;
			}
			break;
		case C_SIZE_LF:
			if (ch != '\n') {
				*why = "a bare CR after a chunk size";
				return -1;
			}
			c->state = c->left ? C_DATA : C_TRAILER0;
			c->line = 0;
			break;
		case C_DATA: {
			size_t n = len - i;

			if (n > c->left)
				n = (size_t)c->left;
			if (n > maxdata)
				n = maxdata;
			if (n == 0)
				goto out;
			*data = in + i;
			*dlen = n;
			c->left -= n;
			if (!c->left)
				c->state = C_DATA_CR;
			*used = i + n;
			return 0;
		}
		case C_DATA_CR:
			if (ch != '\r') {
				*why = "chunk data longer than its size";
				return -1;
			}
			c->state = C_DATA_LF;
			break;
		case C_DATA_LF:
			if (ch != '\n') {
				*why = "a bare CR after chunk data";
				return -1;
			}
			c->state = C_SIZE0;
			c->line = 0;
			break;
		case C_TRAILER0:
			if (ch == '\r') {
				c->state = C_END_LF;
			} else if (ch == ' ' || ch == '\t' || !is_tchar(ch)) {
				*why = "a malformed trailer field";
				return -1;
			} else {
				c->state = C_TRAILER;
			}
			break;
		case C_TRAILER:
			if (ch == '\r')
				c->state = C_TRAILER_LF;
			else if (!is_value_char(ch)) {
				*why = "a control character in a trailer field";
				return -1;
			}
			break;
		case C_TRAILER_LF:
			if (ch != '\n') {
				*why = "a bare CR in the trailers";
				return -1;
			}
			c->state = C_TRAILER0;
			break;
		case C_END_LF:
			if (ch != '\n') {
				*why = "a bare CR at the end of a chunked body";
				return -1;
			}
			c->state = C_DONE;
			*used = i + 1;
			return 1;
		default:
			*used = i;
			return 1;
		}
		i++;
		if (c->state == C_SIZE || c->state == C_EXT) {
			if (++c->line > CHUNK_LINE_MAX) {
				*why = "a chunk size line too long";
				return -1;
			}
		}
		if (c->state == C_TRAILER || c->state == C_TRAILER_LF) {
			if (++c->trailers > TRAILERS_MAX) {
				*why = "trailers too large";
				return -1;
			}
		}
	}
out:
	*used = i;
	return c->state == C_DONE;
}
