/* fuzz: lib */
/* fuzz-ipc-line.c: one request line into ipc_parse_request(), as the server
 * does for every line a peer sends. A line is either refused with a message
 * or accepted as an object whose "op" is a string and whose "id", if any, is
 * an integer or null. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	json_t *req, *id;

	memset(err, 'x', sizeof err);
	req = ipc_parse_request((const char *)data, size, err, sizeof err);
	if (!req) {
		if (!memchr(err, '\0', sizeof err) || strncmp(err, "bad request: ", 13) != 0) {
			fprintf(stderr, "refused without a message\n");
			abort();
		}
		return 0;
	}
	id = json_object_get(req, "id");
	if (!json_is_object(req) || !json_is_string(json_object_get(req, "op")) ||
	    (id && !json_is_integer(id) && !json_is_null(id))) {
		fprintf(stderr, "accepted a malformed request\n");
		abort();
	}
	/* The reply echoes the request; it must encode. */
	free(json_dumps(req, JSON_COMPACT | JSON_ENSURE_ASCII));
	json_decref(req);
	return 0;
}
