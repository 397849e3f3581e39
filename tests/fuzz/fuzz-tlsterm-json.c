/* fuzz: p2p-tlsterm */
/* fuzz-tlsterm-json.c: the JSON that p2p-tlsterm writes without jansson
 * (jsonl.c's jw_*), from bytes a client controls: header values (the token
 * and cookies sent to p2p-authz may hold any byte but CR, LF and NUL) and
 * paths (recorded by p2p-audit). The input is split in two at its first
 * NUL: a key-value pair of strings, then an integer.
 *
 * Checks beyond the sanitizers: the object always parses with jansson;
 * a value that was valid UTF-8 comes back byte for byte; any other comes
 * back as valid UTF-8 no longer than three times the input (U+FFFD for each
 * bad byte); the integer comes back equal. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsterm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "fuzz-tlsterm-json: %s:%d: check failed: %s\n", \
				__FILE__, __LINE__, #cond);                             \
			abort();                                                        \
		}                                                                       \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *nul = memchr(p, '\0', size);
	size_t vlen = nul ? (size_t)(nul - p) : size;
	long long num = (long long)size * 1000003LL - 7;
	struct jw w = { 0 };
	json_error_t err;
	json_t *o, *orig;
	char *line;

	jw_strn(&w, "value", p, vlen);
	jw_int(&w, "n", num);
	jw_raw(&w, "inner", "{", 1);
	jw_strn(&w, "again", p, vlen);
	jw_raw(&w, NULL, "}", 1);
	CHECK(!w.failed);
	if (asprintf(&line, "{%s}", w.p) < 0)
		abort();
	o = json_loads(line, 0, &err);
	if (!o)
		fprintf(stderr, "fuzz-tlsterm-json: not JSON: %s: %s\n", err.text, line);
	CHECK(o != NULL);
	CHECK(json_integer_value(json_object_get(o, "n")) == num);
	CHECK(json_equal(json_object_get(o, "value"),
			 json_object_get(json_object_get(o, "inner"), "again")));
	orig = json_stringn(p, vlen);   /* NULL unless valid UTF-8 */
	if (orig)
		CHECK(json_equal(orig, json_object_get(o, "value")));
	else
		CHECK(json_string_length(json_object_get(o, "value")) <= vlen * 3);
	json_decref(orig);
	json_decref(o);
	free(line);
	jw_free(&w);
	return 0;
}
