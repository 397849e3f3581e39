/* verdict.c: p2p-authz's answer to a check (p2p-ipc(7)), looked at once.
 * A request reads a verdict's members in three places (on_verdict, the
 * head for the upstream, the audit record), and a reused verdict
 * (reuse.c) serves every request of a client for up to a minute, so its
 * members are looked up in the JSON when it comes, not by each request:
 * a dozen hash lookups a request were as much as the whole check. */
#include <stdlib.h>
#include <string.h>

#include "tlsterm.h"

static const char *member(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

struct verdict *verdict_new(json_t *reply)
{
	struct verdict *v = calloc(1, sizeof *v);
	const char *decision;
	json_t *status;

	if (!v)
		return NULL;
	v->refs = 1;
	v->reply = json_incref(reply);
	v->ok = json_is_true(json_object_get(reply, "ok"));
	status = json_object_get(reply, "status");
	v->status = json_is_integer(status) && json_integer_value(status) >= 0 &&
			    json_integer_value(status) <= 999
		    ? (int)json_integer_value(status) : 0;
	decision = member(reply, "decision");
	v->allow = decision && !strcmp(decision, "allow");
	v->path = member(reply, "path");
	v->reason = member(reply, "reason");
	v->resource = member(reply, "resource");
	v->rule = member(reply, "rule");
	v->error = member(reply, "error");
	v->www_authenticate = member(reply, "www_authenticate");
	v->identity = json_object_get(reply, "identity");
	v->strip = json_object_get(reply, "strip");
	v->set = json_object_get(reply, "set");
	v->strip_cookies = json_object_get(reply, "strip_cookies");
	return v;
}

struct verdict *verdict_ref(struct verdict *v)
{
	if (v)
		v->refs++;
	return v;
}

void verdict_unref(struct verdict *v)
{
	if (!v || --v->refs)
		return;
	json_decref(v->reply);
	free(v->audit_allow);
	free(v);
}
