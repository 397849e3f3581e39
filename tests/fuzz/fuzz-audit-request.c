/* fuzz: p2p-audit */
/* fuzz-audit-request.c: a line of audit.sock into record_quick_request(),
 * the way p2p-audit reads a "log" request without jansson, against the
 * usual way (ipc_parse_request(), then record_check() of its "record"). A
 * line the quick way takes must be a "log" request the usual way takes,
 * with the same id and the very same members written; the quick way may
 * decline anything, never take what the usual way refuses. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "ipc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	json_object_seed(1);
	return 0;
}

static void fail(const char *what, const uint8_t *data, size_t size)
{
	fprintf(stderr, "%s:\n%.*s\n", what, (int)size, (const char *)data);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct record_request r;
	char err[700], *quick = malloc(size + 1), *body;
	json_t *req, *id, *checked;
	size_t bodylen;

	if (!quick)
		return 0;
	if (!record_quick_request((const char *)data, size, &r, quick)) {
		free(quick);
		return 0;
	}
	req = ipc_parse_request((const char *)data, size, err, sizeof err);
	if (!req)
		fail("taken quickly, refused by ipc_parse_request", data, size);
	if (strcmp(json_string_value(json_object_get(req, "op")), "log") != 0)
		fail("taken quickly, not a log request", data, size);
	id = json_object_get(req, "id");
	if (r.id_null ? id && !json_is_null(id)
		      : !json_is_integer(id) || json_integer_value(id) != r.id)
		fail("taken quickly with another id", data, size);
	checked = record_check(json_object_get(req, "record"), err, sizeof err);
	if (!checked)
		fail("taken quickly, refused by record_check", data, size);
	body = record_body(checked, &bodylen);
	if (!body || bodylen != r.bodylen || memcmp(body, quick, bodylen) != 0)
		fail("taken quickly with other members", data, size);
	free(body);
	json_decref(checked);
	json_decref(req);
	free(quick);
	return 0;
}
