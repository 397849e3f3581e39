/* collect.c: what the collector does with the body of one POST: a host's
 * record lines, appended byte for byte to that host's own chain in the
 * collector's directory, so that p2p-audit -V verifies the copy as it
 * verifies the original.
 *
 * De-duplication by (host, seq): a seq the collector already holds is
 * dropped (and, for the last one held, must have the same hash: two chains
 * claiming one host are a conflict for a human). The first record of a
 * host the collector has never seen starts its copy wherever it is; after
 * that each record must continue the chain (seq + 1, prev = the hash held),
 * and a gap is answered with the seq wanted next. */
#include "audit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void answer(struct collector_result *res, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void answer(struct collector_result *res, int status, const char *fmt, ...)
{
	va_list ap;

	res->status = status;
	va_start(ap, fmt);
	vsnprintf(res->error, sizeof res->error, fmt, ap);
	va_end(ap);
}

/* One record: 0 taken (stored or dropped), -1 the request stops here. */
static int take_one(struct store *st, const char *line, size_t len,
		    const struct record_info *info, uint64_t n, struct collector_result *res)
{
	if (st->pseq && info->seq <= st->pseq) {
		if (info->seq == st->pseq && strcmp(info->hash, st->phash) != 0) {
			answer(res, 422, "line %llu: seq %llu differs from the seq %llu held for %s: "
			       "two chains claim this host", (unsigned long long)n,
			       (unsigned long long)info->seq, (unsigned long long)st->pseq, res->host);
			return -1;
		}
		res->duplicates++;
		return 0;
	}
	if (st->pseq && info->seq != st->pseq + 1) {
		answer(res, 409, "line %llu: seq %llu, but seq %llu is the next one for %s",
		       (unsigned long long)n, (unsigned long long)info->seq,
		       (unsigned long long)(st->pseq + 1), res->host);
		return -1;
	}
	if (st->pseq && strcmp(info->prev, st->phash) != 0) {
		answer(res, 422, "line %llu: seq %llu does not chain to the seq %llu held for %s: "
		       "two chains claim this host", (unsigned long long)n,
		       (unsigned long long)info->seq, (unsigned long long)st->pseq, res->host);
		return -1;
	}
	if (store_add_line(st, line, len, info) < 0) {
		answer(res, 503, "%s", errno == ENOBUFS ? "the collector is busy: try again"
							: "out of memory");
		return -1;
	}
	res->stored++;
	return 0;
}

void collector_take(const char *body, size_t len, collector_peer_fn *may,
		    collector_store_fn *get, void *arg, struct collector_result *res)
{
	const char *p = body, *end = body + len;
	struct record_info info;
	char msg[256];
	uint64_t n = 0;

	memset(res, 0, sizeof *res);
	res->status = 200;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l;

		n++;
		if (!nl) {
			answer(res, 400, "line %llu: no newline at its end", (unsigned long long)n);
			break;
		}
		l = (size_t)(nl - p);
		if (l == 0) {
			p = nl + 1;
			continue;
		}
		if (record_parse_line(p, l, &info, msg, sizeof msg) != RECORD_OK) {
			answer(res, 400, "line %llu: %s", (unsigned long long)n, msg);
			break;
		}
		if (!res->store) {
			if (!may(arg, info.host)) {
				answer(res, 403, "line %llu: the client's certificate is not for host %s",
				       (unsigned long long)n, info.host);
				break;
			}
			res->store = get(arg, info.host, msg, sizeof msg);
			if (!res->store) {
				answer(res, 500, "%s", msg);
				break;
			}
			snprintf(res->host, sizeof res->host, "%s", info.host);
		} else if (strcmp(info.host, res->host) != 0) {
			answer(res, 400, "line %llu: records of more than one host in one request",
			       (unsigned long long)n);
			break;
		}
		if (take_one(res->store, p, l, &info, n, res) < 0)
			break;
		p = nl + 1;
	}
	if (res->store)
		res->next = res->store->pseq + 1;
}
