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
	if (!reply && err && !strcmp(err, "shutting down"))
		return;     /* counted and logged by main.c on the way out */
	if (reply && json_is_true(json_object_get(reply, "ok")))
		return;
	tt.st.audit_failures++;
	log_error("p2p-audit did not take a record: %s",
		  reply ? json_string_value(json_object_get(reply, "error")) : err);
}

static const char *member(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Identity members from p2p-authz's reply, as far as they fit the limits.
 * The record's members go in the order of p2p-audit(5), which p2p-audit
 * then stores as they came, without taking them apart and writing them
 * again: the rule comes after the decision, not here. */
static void write_identity(struct jw *w, json_t *verdict)
{
	json_t *id = json_object_get(verdict, "identity"), *groups = json_object_get(id, "groups");
	const char *auth = member(id, "mechanism");

	jw_str(w, "client", member(id, "client"), 253);
	jw_str(w, "user", member(id, "user"), 256);
	if (json_is_array(groups) && json_array_size(groups) && json_array_size(groups) <= 64) {
		json_t *gv;
		size_t i, k = 0;

		jw_raw(w, "groups", "[", 1);
		json_array_foreach(groups, i, gv) {
			struct jw one = { 0 };

			if (!json_is_string(gv) || json_string_length(gv) < 1 || json_string_length(gv) > 256)
				continue;
			jw_strn(&one, "x", json_string_value(gv), json_string_length(gv));
			if (!one.failed) {
				if (k++)
					jw_raw(w, NULL, ",", 1);
				jw_raw(w, NULL, one.p + 4, one.len - 4);
			}
			jw_free(&one);
		}
		jw_raw(w, NULL, "]", 1);
	}
	if (auth && strlen(auth) <= 32 && strspn(auth, "abcdefghijklmnopqrstuvwxyz0123456789._-") == strlen(auth))
		jw_str(w, "auth", auth, 32);
}

/* The key under which a verdict keeps its identity members as written: no
 * member of p2p-authz's replies (p2p-ipc(7)) starts with a control byte. */
#define IDENTITY_KEY "\001audit-identity"

/* The identity members of VERDICT, written once per verdict and kept in
 * it: a reused verdict (reuse.c) serves many requests, and their records
 * share these bytes. */
static void add_identity(struct jw *w, json_t *verdict)
{
	json_t *kept = json_object_get(verdict, IDENTITY_KEY);

	if (!json_is_string(kept)) {
		struct jw one = { 0 };

		jw_raw(&one, NULL, "{", 1);
		write_identity(&one, verdict);
		if (one.failed || json_object_set_new(verdict, IDENTITY_KEY,
						      json_stringn(one.p + 1, one.len - 1)) < 0) {
			jw_free(&one);
			write_identity(w, verdict);   /* out of memory: written as before */
			return;
		}
		jw_free(&one);
		kept = json_object_get(verdict, IDENTITY_KEY);
	}
	if (json_string_length(kept)) {
		jw_raw(w, NULL, ",", 1);
		jw_raw(w, NULL, json_string_value(kept), json_string_length(kept));
	}
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

void audit_exchange(struct exchange *ex)
{
	const char *norm = ex->v_path, *decision = ex->v_decision;
	const char *target = ex->req.target ? ex->req.target : "/", *q = strchr(target, '?');
	char start[25];
	static struct jw w;   /* kept: a record is written for every request */

	ex->audited = 1;
	jw_reset(&w);
	rfc3339_utc(start, &ex->start_wall, 3);
	REC_STR(&w, "\"op\":\"log\",\"record\":{\"type\":", ex->tcp ? "session.end" : "request", 16);
	REC_STR(&w, ",\"start\":", start, sizeof start);
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
	add_identity(&w, ex->verdict);
	/* allowed means allowed and forwarded; a 503 made here is a deny */
	REC_STR(&w, ",\"decision\":",
		decision && !strcmp(decision, "allow") && !(ex->local && ex->status >= 500) ? "allow" : "deny", 8);
	REC_STR(&w, ",\"rule\":", member(ex->verdict, "rule"), 256);
	REC_STR(&w, ",\"reason\":", ex->reason[0] ? ex->reason : ex->v_reason, 1024);
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

