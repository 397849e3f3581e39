/* audit-client.c: one record per request, and one per TCP session, to
 * p2p-audit's log op, with the members of p2p-audit(5). p2p-audit refuses
 * a whole record for one bad member, so every member is sent only when it
 * is within the limits of that page. Fail closed: a request does not start
 * while p2p-audit cannot be reached, unless the operator said -F. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "tlsterm.h"

#define AUDIT_TIMEOUT_MS 30000
#define AUDIT_PENDING_MAX 100000

int audit_available(void)
{
	if (jsonl_ready(tt.audit) == 0 && jsonl_pending(tt.audit) < AUDIT_PENDING_MAX)
		return 1;
	if (tt.o.audit_fail_open) {
		static uint64_t warned;

		if (loop_now_ms() - warned > 10000) {
			log_warning("p2p-audit cannot be reached: serving without audit records (-F)");
			warned = loop_now_ms();
		}
		return 1;
	}
	return 0;
}

static void on_ack(void *ctx, json_t *reply, const char *err)
{
	(void)ctx;
	if (reply && json_is_true(json_object_get(reply, "ok")))
		return;
	tt.st.audit_failures++;
	log_error("p2p-audit did not take a record: %s",
		  reply ? json_string_value(json_object_get(reply, "error")) : err);
}

static void set_str(json_t *rec, const char *key, const char *v, size_t max)
{
	if (v && *v)
		json_object_set_new(rec, key, json_stringn(v, strnlen(v, max)));
}

/* Identity members from p2p-authz's reply, as far as they fit the limits. */
static void add_identity(json_t *rec, json_t *verdict)
{
	json_t *id = json_object_get(verdict, "identity"), *groups = json_object_get(id, "groups");
	const char *auth = json_string_value(json_object_get(id, "mechanism"));

	set_str(rec, "client", json_string_value(json_object_get(id, "client")), 253);
	set_str(rec, "user", json_string_value(json_object_get(id, "user")), 256);
	if (json_is_array(groups) && json_array_size(groups) && json_array_size(groups) <= 64) {
		json_t *out = json_array(), *gv;
		size_t i;

		json_array_foreach(groups, i, gv)
			if (json_is_string(gv) && json_string_length(gv) >= 1 && json_string_length(gv) <= 256)
				json_array_append(out, gv);
		json_object_set_new(rec, "groups", out);
	}
	if (auth && strlen(auth) <= 32 && strspn(auth, "abcdefghijklmnopqrstuvwxyz0123456789._-") == strlen(auth))
		set_str(rec, "auth", auth, 32);
	set_str(rec, "rule", json_string_value(json_object_get(verdict, "rule")), 256);
}

static void rfc3339(char *out, size_t size, const struct timespec *ts)
{
	struct tm tm;

	gmtime_r(&ts->tv_sec, &tm);
	snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (ts->tv_nsec / 1000000) % 1000);
}

void audit_exchange(struct exchange *ex)
{
	const char *norm = json_string_value(json_object_get(ex->verdict, "path"));
	const char *target = ex->req.target ? ex->req.target : "/", *q = strchr(target, '?');
	const char *decision = json_string_value(json_object_get(ex->verdict, "decision"));
	const char *reason = json_string_value(json_object_get(ex->verdict, "reason"));
	char start[80];
	json_t *rec;

	ex->audited = 1;
	rfc3339(start, sizeof start, &ex->start_wall);
	rec = json_pack("{s:s,s:s,s:s,s:s}", "type", ex->tcp ? "session.end" : "request", "start", start,
			"resource", ex->resource[0] ? ex->resource : "-", "src", ex->c->src);
	if (!rec)
		return;
	if (!ex->tcp) {
		set_str(rec, "method", ex->req.method, 32);
		json_object_set_new(rec, "path", json_stringn(norm ? norm : target,
				    norm ? strnlen(norm, 8192) : (size_t)(q ? q - target : (long)strnlen(target, 8192))));
		if (q && q[1])
			set_str(rec, "query", q + 1, 8192);
	}
	add_identity(rec, ex->verdict);
	/* allowed means allowed and forwarded; a 503 made here is a deny */
	json_object_set_new(rec, "decision", json_string(decision && !strcmp(decision, "allow") &&
							  !(ex->local && ex->status >= 500) ? "allow" : "deny"));
	if (ex->reason[0])
		set_str(rec, "reason", ex->reason, 1024);
	else
		set_str(rec, "reason", reason, 1024);
	json_object_set_new(rec, "status", json_integer(ex->tcp ? 0 : ex->status));
	json_object_set_new(rec, "bytes_in", json_integer((json_int_t)ex->bytes_in));
	json_object_set_new(rec, "bytes_out", json_integer((json_int_t)ex->bytes_out));
	json_object_set_new(rec, "duration_ms", json_integer((json_int_t)(loop_now_ms() - ex->start_ms)));
	if (ex->up_origin.key[0])
		set_str(rec, "upstream", ex->up_origin.key, 1024);
	set_str(rec, ex->tcp ? "session_id" : "request_id", ex->request_id, 128);
	tt.st.audit_records++;
	if (jsonl_call(tt.audit, json_pack("{s:s,s:o}", "op", "log", "record", rec), AUDIT_TIMEOUT_MS,
		       on_ack, NULL) < 0) {
		tt.st.audit_failures++;
		log_error("request %s: p2p-audit cannot be reached: its record is lost", ex->request_id);
	}
}

/* A TCP session's start: written when the connection is allowed. */
