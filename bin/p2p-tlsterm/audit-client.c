/* audit-client.c: one record per request, and one per TCP session, to
 * p2p-audit's log op, with the members of p2p-audit(5). p2p-audit refuses
 * a whole record for one bad member, so every member is sent only when it
 * is within the limits of that page. Fail closed: a request does not start
 * while p2p-audit cannot be reached, unless the operator said -F. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "rfc3339.h"
#include "tlsterm.h"

#define AUDIT_TIMEOUT_MS 30000
#define AUDIT_PENDING_MAX 100000

int audit_available(void)
{
	/* a p2p-audit too slow to take the records counts as one that cannot be
	 * reached: a request starts only while the records of those in flight
	 * have room */
	if (jsonl_ready(tt.audit) == 0 && jsonl_pending(tt.audit) < AUDIT_PENDING_MAX &&
	    jsonl_has_room(tt.audit))
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
	if (!reply && err && !strcmp(err, "shutting down"))
		return;     /* counted and logged by main.c on the way out */
	if (reply && json_is_true(json_object_get(reply, "ok")))
		return;
	tt.st.audit_failures++;
	log_error("p2p-audit did not take a record: %s",
		  reply ? json_string_value(json_object_get(reply, "error")) : err);
}

/* A string member VALUE (nothing when it is empty or missing) of at most
 * MAX bytes, after the JSON text LIT (a string literal: ",\"key\":"). */
#define REC_STR(w, lit, value, max) rec_str(w, lit, sizeof lit - 1, value, max)
#define REC_INT(w, lit, value) jw_member_int(w, lit, sizeof lit - 1, value)

static void rec_str(struct jw *w, const char *lit, size_t litlen, const char *value, size_t max)
{
	if (value && *value)
		jw_member(w, lit, litlen, value, strnlen(value, max));
}

/* Identity members from p2p-authz's reply, as far as they fit the limits. */
static void write_identity(struct jw *w, json_t *id)
{
	json_t *groups = json_object_get(id, "groups");
	const char *auth = json_string_value(json_object_get(id, "mechanism"));

	REC_STR(w, ",\"client\":", json_string_value(json_object_get(id, "client")), 253);
	REC_STR(w, ",\"user\":", json_string_value(json_object_get(id, "user")), 256);
	if (json_is_array(groups) && json_array_size(groups) && json_array_size(groups) <= 64) {
		json_t *gv;
		size_t i, k = 0;

		jw_raw(w, NULL, ",\"groups\":[", sizeof ",\"groups\":[" - 1);
		json_array_foreach(groups, i, gv) {
			if (!json_is_string(gv) || json_string_length(gv) < 1 || json_string_length(gv) > 256)
				continue;
			jw_member(w, ",", k++ ? 1 : 0, json_string_value(gv), json_string_length(gv));
		}
		jw_raw(w, NULL, "]", 1);
	}
	if (auth && strlen(auth) <= 32 && strspn(auth, "abcdefghijklmnopqrstuvwxyz0123456789._-") == strlen(auth))
		REC_STR(w, ",\"auth\":", auth, 32);
}

/* The members that come from the verdict V (NULL when there is none), in
 * the order of p2p-audit(5), which p2p-audit then stores as they came
 * without taking them apart: the identity, the decision, the rule, the
 * reason. */
static void write_verdict_members(struct jw *w, const struct verdict *v, int allow, const char *reason)
{
	if (v)
		write_identity(w, v->identity);
	REC_STR(w, ",\"decision\":", allow ? "allow" : "deny", 8);
	REC_STR(w, ",\"rule\":", v ? v->rule : NULL, 256);
	REC_STR(w, ",\"reason\":", reason, 1024);
}

/* Those members for a request that V allowed and that was forwarded: the
 * same for every request a kept verdict serves (reuse.c), so written for
 * the first and kept in V. */
static void add_allowed_members(struct jw *w, struct verdict *v)
{
	if (!v->audit_allow) {
		struct jw one = { 0 };

		write_verdict_members(&one, v, 1, v->reason);
		if (one.failed) {
			jw_free(&one);
			write_verdict_members(w, v, 1, v->reason);  /* out of memory: written as before */
			return;
		}
		v->audit_allow = one.p;   /* taken from ONE */
		v->audit_allow_len = one.len;
	}
	jw_raw(w, NULL, v->audit_allow, v->audit_allow_len);
}

/* The record's first members: its type and its start, which rfc3339_utc()
 * writes in digits and ASCII punctuation (21 + 3 characters): no byte of
 * them to escape, so no look at each. */
static void write_head(struct jw *w, const struct exchange *ex)
{
	static const char req[] = "\"op\":\"log\",\"record\":{\"type\":\"request\",\"start\":\"";
	static const char ses[] = "\"op\":\"log\",\"record\":{\"type\":\"session.end\",\"start\":\"";
	char head[sizeof ses + 32];
	size_t n = ex->tcp ? sizeof ses - 1 : sizeof req - 1;

	memcpy(head, ex->tcp ? ses : req, n);
	rfc3339_utc(head + n, &ex->start_wall, 3);
	n += 24;
	head[n++] = '"';
	jw_raw(w, NULL, head, n);
}

void audit_exchange(struct exchange *ex)
{
	struct verdict *v = ex->verdict;
	const char *norm = v ? v->path : NULL;
	/* allowed means allowed and forwarded; a 503 made here is a deny */
	int allow = v && v->allow && !(ex->local && ex->status >= 500);
	const char *target = ex->req.target ? ex->req.target : "/", *q = strchr(target, '?');
	static struct jw w;   /* kept: a record is written for every request */

	ex->audited = 1;
	jw_reset(&w);
	write_head(&w, ex);
	REC_STR(&w, ",\"resource\":", ex->resource[0] ? ex->resource : "-", sizeof ex->resource);
	if (!ex->tcp) {
		REC_STR(&w, ",\"method\":", ex->req.method, 32);
		if (norm)
			REC_STR(&w, ",\"path\":", norm, 8192);
		else
			jw_member(&w, ",\"path\":", sizeof ",\"path\":" - 1, target,
				  q ? (size_t)(q - target) > 8192 ? 8192 : (size_t)(q - target)
				    : strnlen(target, 8192));
		if (q && q[1])
			REC_STR(&w, ",\"query\":", q + 1, 8192);
	}
	REC_STR(&w, ",\"src\":", ex->c->src, sizeof ex->c->src);
	if (allow && !ex->reason[0])
		add_allowed_members(&w, v);
	else
		write_verdict_members(&w, v, allow, ex->reason[0] ? ex->reason : v ? v->reason : NULL);
	REC_INT(&w, ",\"status\":", ex->tcp ? 0 : ex->status);
	REC_INT(&w, ",\"bytes_in\":", (long long)ex->bytes_in);
	REC_INT(&w, ",\"bytes_out\":", (long long)ex->bytes_out);
	REC_INT(&w, ",\"duration_ms\":", (long long)(loop_now_ms() - ex->start_ms));
	REC_STR(&w, ",\"upstream\":", ex->up_origin.key, 1024);
	if (ex->tcp)
		REC_STR(&w, ",\"session_id\":", ex->request_id, 128);
	else
		REC_STR(&w, ",\"request_id\":", ex->request_id, 128);
	jw_raw(&w, NULL, "}", 1);
	tt.st.audit_records++;
	if (w.failed || jsonl_send(tt.audit, w.p, w.len, AUDIT_TIMEOUT_MS, on_ack) < 0) {
		tt.st.audit_failures++;
		log_error("request %s: p2p-audit cannot be reached: its record is lost", ex->request_id);
	}
}

