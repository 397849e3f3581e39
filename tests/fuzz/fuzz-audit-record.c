/* fuzz: p2p-audit */
/* fuzz-audit-record.c: a record as a sender gives it (the "record" of a
 * "log" request, or a line of p2p-audit -i's standard input) into
 * record_check_text(). A record that is taken must make a line that
 * record_parse_line() reads back as valid, with the seq, host, prev and
 * hash it was made with, and at most AUDIT_LINE_MAX bytes long; a record
 * that is refused must say why. A record that record_quick() takes must be
 * taken by record_check_text() too, with the very same members. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"

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
	char err[256], hash[AUDIT_HEX + 1], msg[256];
	json_t *rec;
	struct record_info info;
	size_t len, quicklen = 0, bodylen;
	char *line, *quick = malloc(size + 1), *body;
	int taken;

	if (!quick)
		return 0;
	taken = record_quick((const char *)data, size, quick, &quicklen);
	memset(err, 0, sizeof err);
	rec = record_check_text((const char *)data, size, err, sizeof err);
	if (taken && !rec) {
		fprintf(stderr, "record_quick took a record record_check refuses: %s\n", err);
		abort();
	}
	if (taken) {
		body = record_body(rec, &bodylen);
		if (!body || bodylen != quicklen || memcmp(body, quick, bodylen) != 0) {
			fprintf(stderr, "record_quick made other members:\n%.*s\n%s\n", (int)quicklen,
				quick, body ? body : "(none)");
			abort();
		}
		free(body);
	}
	free(quick);
	if (!rec) {
		if (!err[0]) {
			fprintf(stderr, "refused without a message\n");
			abort();
		}
		return 0;
	}
	line = record_format(rec, 42, "2026-11-22T10:11:12.123456Z", "ny.example", audit_genesis,
			     hash, &len);
	if (!line) {
		if (errno != EMSGSIZE) {
			fprintf(stderr, "a taken record made no line: %s\n", strerror(errno));
			abort();
		}
		json_decref(rec);
		return 0;
	}
	if (len > AUDIT_LINE_MAX || line[len - 1] != '\n' || memchr(line, '\n', len - 1)) {
		fprintf(stderr, "a line of %zu bytes, or a newline inside it\n", len);
		abort();
	}
	if (record_parse_line(line, len - 1, &info, msg, sizeof msg) != RECORD_OK) {
		fprintf(stderr, "the line made from a taken record does not read back: %s\n%s", msg,
			line);
		abort();
	}
	if (info.seq != 42 || strcmp(info.host, "ny.example") != 0 ||
	    strcmp(info.prev, audit_genesis) != 0 || strcmp(info.hash, hash) != 0) {
		fprintf(stderr, "the line reads back different\n");
		abort();
	}
	free(line);
	json_decref(rec);
	return 0;
}
