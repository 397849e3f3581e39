/* test: p2p-audit */
/* test-audit-record.c: p2p-audit's records in-process: what a sender may
 * give (and the messages that refuse the rest without quoting it), the line
 * written to the file and its hash as p2p-audit(5) defines it (recomputed
 * here independently), the detection of a changed line, and the syslog
 * framing and HTTP head parsing that carry records elsewhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"

#define TIME0 "2026-11-22T10:11:12.123456Z"

static json_t *checked_from(const char *text, char *err, size_t errsize)
{
	return record_check_text(text, strlen(text), err, errsize);
}

static const char *full_request =
	"{\"decision\":\"allow\",\"type\":\"request\",\"resource\":\"vault\",\"method\":\"GET\","
	"\"path\":\"/v1/secret\",\"query\":\"a=1\",\"src\":\"100.96.0.5:51234\",\"client\":\"alice-laptop\","
	"\"user\":\"alice\",\"groups\":[\"eng\",\"ops\"],\"auth\":\"jwt\",\"rule\":\"vault-read\","
	"\"reason\":\"group eng may GET\",\"status\":200,\"bytes_in\":0,\"bytes_out\":512,"
	"\"duration_ms\":3,\"upstream\":\"http://10.0.10.15:8080\",\"request_id\":\"r-1\","
	"\"start\":\"2026-11-22T10:11:12.1Z\"}";

static void test_check_orders_members(void **ctx)
{
	char err[256] = "";
	json_t *rec = checked_from(full_request, err, sizeof err);
	char *text;

	(void)ctx;
	assert_non_null(rec);
	text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	/* The file's order, whatever the sender's. */
	assert_non_null(strstr(text, "{\"type\":\"request\",\"start\":"));
	assert_true(strstr(text, "\"resource\"") < strstr(text, "\"method\""));
	assert_true(strstr(text, "\"decision\"") < strstr(text, "\"status\""));
	assert_true(strstr(text, "\"upstream\"") < strstr(text, "\"request_id\""));
	free(text);
	json_decref(rec);
}

struct refusal {
	const char *record;
	const char *message;        /* a part of the message */
};

static void test_check_refuses(void **ctx)
{
	static const struct refusal cases[] = {
		{ "[]", "not a JSON object" },
		{ "{\"type\":\"request\"", "not JSON" },
		{ "{\"type\":\"request\",\"type\":\"request\"}", "duplicate" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\",\"colour\":\"s3cr3t\"}", ".colour: unknown member" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\",\"seq\":5}", ".seq: written by p2p-audit" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\",\"hash\":\"x\"}", ".hash: written by p2p-audit" },
		{ "{\"type\":\"other\",\"resource\":\"v\",\"decision\":\"allow\"}", ".type: not" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"maybe\",\"method\":\"GET\",\"path\":\"/\"}", ".decision: not" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\",\"status\":\"200\"}", ".status: not an integer" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\",\"status\":1000}", ".status: not an integer from 0 to 999" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\",\"bytes_in\":-1}", ".bytes_in:" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\",\"duration_ms\":1.5}", ".duration_ms:" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"G ET\",\"path\":\"/\"}", ".method: not a token" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\",\"src\":\"s3cr3t\"}", ".src: not an address" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\",\"src\":\"10.0.0.1:0\"}", ".src: not an address" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\",\"start\":\"2026-02-29T00:00:00Z\"}", ".start: not an RFC 3339" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\",\"start\":\"2026-11-22T10:11:12+01:00\"}", ".start: not an RFC 3339" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\",\"groups\":\"eng\"}", ".groups: not an array" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\",\"groups\":[\"eng\",7]}", ".groups[1]:" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\",\"groups\":[\"\"]}", ".groups[0]:" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\",\"auth\":\"JWT!\"}", ".auth: not a token" },
		{ "{\"type\":\"request\",\"resource\":\"\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\"}", ".resource: not a string of 1" },
		{ "{\"type\":\"request\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":\"/\"}", ".resource: missing" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"method\":\"GET\",\"path\":\"/\"}", ".decision: missing" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"path\":\"/\"}", ".method: missing" },
		{ "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\",\"path\":7}", ".path: not a string" },
	};
	char err[256];

	(void)ctx;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *rec;

		memset(err, 0, sizeof err);
		rec = checked_from(cases[i].record, err, sizeof err);
		if (rec || !strstr(err, cases[i].message))
			fail_msg("case %zu (%s): got \"%s\", want \"%s\"", i, cases[i].record,
				 rec ? "accepted" : err, cases[i].message);
		/* A message never quotes what the sender sent. */
		assert_null(strstr(err, "s3cr3t"));
	}
}

static void test_check_accepts_sessions_and_limits(void **ctx)
{
	char err[256], *big = malloc(9000), *text = malloc(10000);
	json_t *rec;

	(void)ctx;
	rec = checked_from("{\"type\":\"session.start\",\"resource\":\"git\",\"decision\":\"deny\","
			   "\"src\":\"[fd00::1]:22\",\"session_id\":\"s-1\"}", err, sizeof err);
	assert_non_null(rec);
	json_decref(rec);
	rec = checked_from("{\"type\":\"session.end\",\"resource\":\"git\",\"decision\":\"allow\","
			   "\"src\":\"100.96.0.5\",\"bytes_in\":9007199254740991}", err, sizeof err);
	assert_non_null(rec);
	json_decref(rec);
	/* A path of 8192 bytes is taken, one of 8193 is not. */
	memset(big, 'a', 8193);
	big[8193] = '\0';
	snprintf(text, 10000, "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\","
		 "\"method\":\"GET\",\"path\":\"%.8192s\"}", big);
	rec = checked_from(text, err, sizeof err);
	assert_non_null(rec);
	json_decref(rec);
	snprintf(text, 10000, "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\","
		 "\"method\":\"GET\",\"path\":\"%s\"}", big);
	assert_null(checked_from(text, err, sizeof err));
	assert_non_null(strstr(err, ".path: longer than 8192 bytes"));
	free(big);
	free(text);
}

/* The hash as p2p-audit(5) says: SHA-256 of the line without ,"hash":"..." */
static void reference_hash(const char *line, size_t len, char out[65])
{
	char *canon = malloc(len);
	unsigned char md[32];
	unsigned int n = 0;
	const char *tail = strstr(line, ",\"hash\":\"");

	assert_non_null(tail);
	memcpy(canon, line, (size_t)(tail - line));
	canon[tail - line] = '}';
	assert_int_equal(EVP_Digest(canon, (size_t)(tail - line) + 1, md, &n, EVP_sha256(), NULL), 1);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	free(canon);
}

static void test_format_and_parse(void **ctx)
{
	char err[256], hash[65], hash2[65], want[65];
	json_t *rec = checked_from(full_request, err, sizeof err);
	size_t len, len2;
	char *line = record_format(rec, 1, TIME0, "ny", audit_genesis, hash, &len), *line2;
	struct record_info info;

	(void)ctx;
	assert_non_null(line);
	assert_int_equal(line[len - 1], '\n');
	assert_int_equal(strlen(line), len);
	assert_memory_equal(line, "{\"seq\":1,\"time\":\"" TIME0 "\",\"host\":\"ny\",\"type\":\"request\"", 64);
	reference_hash(line, len - 1, want);
	assert_string_equal(hash, want);
	assert_int_equal(record_parse_line(line, len - 1, &info, err, sizeof err), RECORD_OK);
	assert_int_equal(info.seq, 1);
	assert_string_equal(info.time, TIME0);
	assert_string_equal(info.host, "ny");
	assert_string_equal(info.type, "request");
	assert_string_equal(info.prev, audit_genesis);
	assert_string_equal(info.hash, hash);
	assert_false(info.deny);
	/* The next record chains to this one. */
	line2 = record_format(rec, 2, TIME0, "ny", hash, hash2, &len2);
	assert_int_equal(record_parse_line(line2, len2 - 1, &info, err, sizeof err), RECORD_OK);
	assert_string_equal(info.prev, hash);
	assert_string_not_equal(hash2, hash);
	free(line);
	free(line2);
	json_decref(rec);
}

/* The quick reader (no jansson) takes the plain records with the very
 * members record_check() makes, and leaves everything else to it. */
static void test_quick_same_as_check(void **ctx)
{
	static const char *const taken[] = {
		"{\"type\":\"session.end\",\"resource\":\"db\",\"decision\":\"deny\",\"groups\":[],"
		"\"bytes_in\":999999999999999}",
		" { \"decision\" : \"allow\" ,\t\"groups\" : [ \"a\" , \"b c\" ] , \"type\":\"session.start\","
		"\"resource\":\"db\", \"src\":\"[fd00::1]:22\", \"query\":\"\" } ",
	};
	static const char *const declined[] = {
		"{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\","
		"\"path\":\"/caf\\u00e9\"}",                                      /* an escape */
		"{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\","
		"\"path\":\"/caf\xc3\xa9\"}",                                      /* UTF-8 */
		"{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\"}",
		"{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\","
		"\"path\":\"/\",\"status\":1000}",
		"{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\","
		"\"path\":\"/\",\"status\":2e2}",
		"{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\","
		"\"path\":\"/\",\"status\":020}",
		"{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\","
		"\"path\":\"/\",\"path\":\"/\"}",
		"{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\","
		"\"path\":\"/\",\"seq\":1}",
		"{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\",\"method\":\"GET\","
		"\"path\":\"/\"} x",
	};
	char body[4096], err[256], *want;
	size_t len, wantlen;
	json_t *rec;

	(void)ctx;
	for (size_t i = 0; i < 3; i++) {
		const char *text = i == 0 ? full_request : taken[i - 1];

		assert_true(record_quick(text, strlen(text), body, &len));
		rec = checked_from(text, err, sizeof err);
		assert_non_null(rec);
		want = record_body(rec, &wantlen);
		assert_int_equal(len, wantlen);
		assert_memory_equal(body, want, len);
		free(want);
		json_decref(rec);
	}
	for (size_t i = 0; i < sizeof declined / sizeof declined[0]; i++)
		assert_false(record_quick(declined[i], strlen(declined[i]), body, &len));
}

static void test_quick_request(void **ctx)
{
	static const char line[] =
		"{\"id\":7,\"op\":\"log\",\"record\":{\"type\":\"session.end\",\"resource\":\"db\","
		"\"decision\":\"deny\"}}";
	static const char null_id[] =
		"{\"op\":\"log\",\"record\":{\"type\":\"session.end\",\"resource\":\"db\","
		"\"decision\":\"deny\"},\"id\":null}";
	static const char *const declined[] = {
		"{\"id\":7,\"op\":\"status\"}",
		"{\"id\":7,\"op\":\"log\"}",
		"{\"id\":1.5,\"op\":\"log\",\"record\":{\"type\":\"session.end\",\"resource\":\"db\","
		"\"decision\":\"deny\"}}",
		"{\"id\":7,\"id\":8,\"op\":\"log\",\"record\":{\"type\":\"session.end\",\"resource\":\"db\","
		"\"decision\":\"deny\"}}",
		"{\"id\":7,\"op\":\"log\",\"more\":1,\"record\":{\"type\":\"session.end\",\"resource\":\"db\","
		"\"decision\":\"deny\"}}",
	};
	struct record_request r;
	char body[512];

	(void)ctx;
	assert_true(record_quick_request(line, strlen(line), &r, body));
	assert_false(r.id_null);
	assert_int_equal(r.id, 7);
	assert_int_equal(r.bodylen, strlen("\"type\":\"session.end\",\"resource\":\"db\",\"decision\":\"deny\""));
	assert_memory_equal(body, "\"type\":\"session.end\",\"resource\":\"db\",\"decision\":\"deny\"", r.bodylen);
	assert_true(record_quick_request(null_id, strlen(null_id), &r, body));
	assert_true(r.id_null);
	for (size_t i = 0; i < sizeof declined / sizeof declined[0]; i++)
		assert_false(record_quick_request(declined[i], strlen(declined[i]), &r, body));
}

static char *make_line(size_t *len)
{
	char err[256], hash[65];
	json_t *rec = checked_from(full_request, err, sizeof err);
	char *line = record_format(rec, 7, TIME0, "ny", audit_genesis, hash, len);

	json_decref(rec);
	(*len)--; /* without the newline */
	return line;
}

static void test_changed_line_detected(void **ctx)
{
	size_t len;
	char *line = make_line(&len), *p, err[256];
	struct record_info info;

	(void)ctx;
	/* One character of the content. */
	p = strstr(line, "alice\"");
	p[4] = 'f';
	assert_int_equal(record_parse_line(line, len, &info, err, sizeof err), RECORD_HASH);
	assert_non_null(strstr(err, "seq 7: the hash does not match"));
	p[4] = 'e';
	assert_int_equal(record_parse_line(line, len, &info, err, sizeof err), RECORD_OK);
	/* The status, a number. */
	p = strstr(line, "\"status\":200");
	p[10] = '1';
	assert_int_equal(record_parse_line(line, len, &info, err, sizeof err), RECORD_HASH);
	p[10] = '0';
	/* The hash itself. */
	line[len - 3] = line[len - 3] == '0' ? '1' : '0';
	assert_int_equal(record_parse_line(line, len, &info, err, sizeof err), RECORD_HASH);
	free(line);
}

static void test_malformed_lines(void **ctx)
{
	static const char *const bad[] = {
		"",
		"{}",
		"{\"seq\":1}",
		"{\"seq\":1,\"hash\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
		/* the hash in upper case */
		"{\"seq\":1,\"hash\":\"00000000000000000000000000000000000000000000000000000000000000AA\"}",
		/* not the last member */
		"{\"hash\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"seq\":1}",
	};
	size_t len;
	char *line = make_line(&len), err[256], *dup;
	struct record_info info;

	(void)ctx;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(record_parse_line(bad[i], strlen(bad[i]), &info, err, sizeof err),
				 RECORD_BAD);
	/* A member the sender may not give, added by hand. */
	dup = malloc(len + 32);
	memcpy(dup, "{\"extra\":1,", 11);
	memcpy(dup + 11, line + 1, len - 1);
	assert_int_equal(record_parse_line(dup, len + 10, &info, err, sizeof err), RECORD_BAD);
	assert_non_null(strstr(err, ".extra: unknown member"));
	/* A member twice. */
	memcpy(dup, "{\"seq\":7,", 9);
	memcpy(dup + 9, line + 1, len - 1);
	assert_int_equal(record_parse_line(dup, len + 8, &info, err, sizeof err), RECORD_BAD);
	free(dup);
	free(line);
}

static void test_line_limit(void **ctx)
{
	char err[256], hash[65], *text = malloc(80000), *p;
	json_t *rec;
	size_t len;

	(void)ctx;
	/* Each é is two bytes in, six (\u00e9) out: 8192 bytes of them in
	 * both path and query, and 64 groups of 256 bytes, is over the limit
	 * as a line although every member is within its own. */
	p = text + sprintf(text, "{\"type\":\"request\",\"resource\":\"v\",\"decision\":\"allow\","
			   "\"method\":\"GET\",\"path\":\"");
	for (int i = 0; i < 4096; i++)
		p += sprintf(p, "\xc3\xa9");
	p += sprintf(p, "\",\"query\":\"");
	for (int i = 0; i < 4096; i++)
		p += sprintf(p, "\xc3\xa9");
	p += sprintf(p, "\",\"groups\":[");
	for (int g = 0; g < 64; g++) {
		p += sprintf(p, "%s\"", g ? "," : "");
		for (int i = 0; i < 128; i++)
			p += sprintf(p, "\xc3\xa9");
		p += sprintf(p, "\"");
	}
	sprintf(p, "]}");
	rec = checked_from(text, err, sizeof err);
	assert_non_null(rec);
	errno = 0;
	assert_null(record_format(rec, 1, TIME0, "ny", audit_genesis, hash, &len));
	assert_int_equal(errno, EMSGSIZE);
	json_decref(rec);
	free(text);
}

static void test_time_and_host(void **ctx)
{
	char now[AUDIT_TIME_LEN + 1];

	(void)ctx;
	assert_true(record_time_ok("2026-11-22T10:11:12Z"));
	assert_true(record_time_ok("2024-02-29T23:59:60.123456789Z"));
	assert_false(record_time_ok("2026-11-22T10:11:12.Z"));
	assert_false(record_time_ok("2026-11-22T10:11:12.1234567890Z"));
	assert_false(record_time_ok("2026-11-22 10:11:12Z"));
	assert_false(record_time_ok("2026-13-22T10:11:12Z"));
	assert_false(record_time_ok("2100-02-29T10:11:12Z"));
	assert_false(record_time_ok("2026-11-22T24:00:00Z"));
	assert_false(record_time_ok("2026-11-22T10:11:12z"));
	assert_false(record_time_ok("2026-11-22T10:11:12Zx"));
	record_time_now(now);
	assert_int_equal(strlen(now), AUDIT_TIME_LEN);
	assert_true(record_time_ok(now));

	assert_true(record_host_ok("ny"));
	assert_true(record_host_ok("conn-1.site_a.example.internal"));
	assert_false(record_host_ok(""));
	assert_false(record_host_ok("."));
	assert_false(record_host_ok(".."));
	assert_false(record_host_ok("a..b"));
	assert_false(record_host_ok("a."));
	assert_false(record_host_ok("a/b"));
	assert_false(record_host_ok("a b"));
	assert_false(record_host_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

static void test_syslog_frame(void **ctx)
{
	size_t len, flen = 0, fcap = 0;
	char *line = make_line(&len), *buf = NULL, want[256], err[256];
	struct record_info info;
	int hn;

	(void)ctx;
	assert_int_equal(record_parse_line(line, len, &info, err, sizeof err), RECORD_OK);
	assert_int_equal(syslog_frame(&buf, &flen, &fcap, 13, line, len, &info), 0);
	hn = snprintf(want, sizeof want, "<110>1 " TIME0 " ny p2p-audit - request - ");
	/* "LEN SP" then the message, LEN its length in bytes (RFC 6587). */
	snprintf(err, sizeof err, "%zu ", (size_t)hn + len);
	assert_memory_equal(buf, err, strlen(err));
	assert_memory_equal(buf + strlen(err), want, (size_t)hn);
	assert_memory_equal(buf + strlen(err) + hn, line, len);
	assert_int_equal(flen, strlen(err) + (size_t)hn + len);
	/* A denial is a notice (severity 5). */
	info.deny = 1;
	assert_int_equal(syslog_frame(&buf, &flen, &fcap, 16, line, len, &info), 0);
	assert_non_null(strstr(buf + strlen(err) + hn + len, " <133>1 "));
	free(buf);
	free(line);
}

static void test_http_head(void **ctx)
{
	struct http_request r;
	char err[200];
	int status;
	const char *good = "POST /v1/records HTTP/1.1\r\nHost: c\r\nContent-Length: 42\r\n"
			   "Content-Type: application/x-ndjson\r\n\r\nBODY";

	(void)ctx;
	assert_int_equal(http_parse_head(good, strlen(good), &r, &status, err, sizeof err), HTTP_DONE);
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.target, "/v1/records");
	assert_int_equal(r.content_length, 42);
	assert_int_equal(r.keep_alive, 1);
	assert_int_equal(r.head_len, strlen(good) - 4);
	/* Every prefix short of the blank line is incomplete. */
	for (size_t n = 0; n < strlen(good) - 4; n++)
		assert_int_equal(http_parse_head(good, n, &r, &status, err, sizeof err), HTTP_INCOMPLETE);

#define BAD(text, code) do { \
		assert_int_equal(http_parse_head(text, strlen(text), &r, &status, err, sizeof err), HTTP_BAD); \
		assert_int_equal(status, code); \
	} while (0)
	BAD("POST /v1/records HTTP/1.1\nHost: c\r\n\r\n", 400);
	BAD("POST /v1/records HTTP/1.1\r\nHost: c\r\n folded\r\n\r\n", 400);
	BAD("POST /v1/records HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400);
	BAD("POST /v1/records HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
	BAD("POST /v1/records HTTP/2.0\r\n\r\n", 505);
	BAD("POST /v1/records\r\n\r\n", 400);
	BAD("POST /v1/records HTTP/1.1\r\nExpect: something\r\n\r\n", 417);
	BAD("PO ST /v1/records HTTP/1.1\r\n\r\n", 400);
	BAD("POST /v1/re\x01cords HTTP/1.1\r\n\r\n", 400);
	BAD("\r\n\r\n", 400);

	assert_int_equal(http_parse_head("POST / HTTP/1.0\r\nConnection: keep-alive\r\n"
					 "Transfer-Encoding: chunked\r\nExpect: 100-Continue\r\n\r\n",
					 96, &r, &status, err, sizeof err), HTTP_DONE);
	assert_int_equal(r.minor, 0);
	assert_int_equal(r.keep_alive, 1);
	assert_int_equal(r.chunked, 1);
	assert_int_equal(r.expect_continue, 1);
	assert_int_equal(r.content_length, -1);
	assert_int_equal(http_parse_head("POST / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n", 44, &r,
					 &status, err, sizeof err), HTTP_DONE);
	assert_int_equal(r.keep_alive, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_orders_members),
		cmocka_unit_test(test_check_refuses),
		cmocka_unit_test(test_check_accepts_sessions_and_limits),
		cmocka_unit_test(test_format_and_parse),
		cmocka_unit_test(test_quick_same_as_check),
		cmocka_unit_test(test_quick_request),
		cmocka_unit_test(test_changed_line_detected),
		cmocka_unit_test(test_malformed_lines),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_time_and_host),
		cmocka_unit_test(test_syslog_frame),
		cmocka_unit_test(test_http_head),
	};

	json_object_seed(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
