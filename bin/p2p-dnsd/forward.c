/* forward.c: names outside the private zones go through libunbound, in the
 * event loop (ub_fd / ub_process), to the upstreams given or by full
 * recursion, with unbound's cache and optional DNSSEC validation. The
 * private zones are configured as "refuse" inside unbound as well: a
 * second wall should a bug let one through. */
#include "dnsd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

#include "log.h"

#define FORWARD_TIMEOUT_MS 5000
/* Queries in flight upstream at once: each holds memory and a timer for up
 * to FORWARD_TIMEOUT_MS, so a flood of names not cached is bounded here
 * (the rest get SERVFAIL at once). */
#define FORWARD_PENDING_MAX 10000

struct pending {
	struct forwarder *f;
	struct pending *prev, *next;
	int async_id;
	void *ctx;
	forward_done_fn *done;
	struct loop_timer *timer;
};

struct forwarder {
	struct loop *loop;
	struct ub_ctx *ub;
	struct pending *pending;
	size_t npending;
};

static void unlink_pending(struct forwarder *f, struct pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		f->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	f->npending--;
	if (p->timer)
		loop_timer_cancel(f->loop, p->timer);
	free(p);
}

static void on_result(void *arg, int err, struct ub_result *result)
{
	struct pending *p = arg;
	struct forwarder *f = p->f;

	if (err || !result || !result->answer_packet || result->answer_len < DNS_HEADER_LEN) {
		p->done(p->ctx, NULL, 0, DNS_RCODE_SERVFAIL);
	} else if (result->bogus) {
		/* DNSSEC says the data is forged or broken: it is never handed
		 * out, whatever the packet holds (RFC 4035 5.5). */
		log_debug("bogus answer refused: %s", result->why_bogus ? result->why_bogus : "no reason given");
		p->done(p->ctx, NULL, 0, DNS_RCODE_SERVFAIL);
	} else {
		/* AD is ours to say: set exactly when libunbound validated it. */
		uint8_t *flags = (uint8_t *)result->answer_packet + 3;

		*flags = (uint8_t)(result->secure ? *flags | 0x20 : *flags & ~0x20);
		p->done(p->ctx, result->answer_packet, (size_t)result->answer_len, 0);
	}
	if (result)
		ub_resolve_free(result);
	unlink_pending(f, p);
}

static void on_ub_fd(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct forwarder *f = arg;

	(void)loop;
	(void)fd;
	(void)events;
	if (ub_process(f->ub) != 0)
		log_error("libunbound: unable to process answers");
}

static void on_timeout(struct loop *loop, void *arg)
{
	struct pending *p = arg;

	(void)loop;
	p->timer = NULL;
	ub_cancel(p->f->ub, p->async_id);
	p->done(p->ctx, NULL, 0, DNS_RCODE_SERVFAIL);
	unlink_pending(p->f, p);
}

static int set_option(struct ub_ctx *ub, const char *opt, const char *val, char *err,
		      size_t errsize)
{
	int rc = ub_ctx_set_option(ub, opt, val);

	if (rc)
		snprintf(err, errsize, "libunbound %s %s: %s", opt, val, ub_strerror(rc));
	return rc ? -1 : 0;
}

struct forwarder *forwarder_new(struct loop *loop, json_t *upstreams, int recursion,
				const char *trust_anchor, json_t *refuse_zones, char *err,
				size_t errsize)
{
	struct forwarder *f = calloc(1, sizeof *f);
	size_t i;
	json_t *v;
	int rc;

	if (!f) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	f->loop = loop;
	f->ub = ub_ctx_create();
	if (!f->ub) {
		snprintf(err, errsize, "unable to create a libunbound context");
		goto fail;
	}
	/* Answers come back through ub_fd in our loop (a thread does the
	 * network work inside libunbound). */
	if ((rc = ub_ctx_async(f->ub, 1)) != 0) {
		snprintf(err, errsize, "libunbound async: %s", ub_strerror(rc));
		goto fail;
	}
	if (set_option(f->ub, "do-not-query-localhost:", "no", err, errsize) < 0)
		goto fail;
	if (!recursion) {
		json_array_foreach(upstreams, i, v) {
			if ((rc = ub_ctx_set_fwd(f->ub, json_string_value(v))) != 0) {
				snprintf(err, errsize, "upstream %s: %s", json_string_value(v),
					 ub_strerror(rc));
				goto fail;
			}
		}
	}
	/* A static anchor (DS or DNSKEY lines), read, never written: we may run
	 * as a user who cannot write it, and RFC 5011 roll-over of the root key
	 * is the job of unbound-anchor(8) and the dns-root-data package. */
	if (trust_anchor && (rc = ub_ctx_add_ta_file(f->ub, trust_anchor)) != 0) {
		snprintf(err, errsize, "trust anchor %s: %s", trust_anchor, ub_strerror(rc));
		goto fail;
	}
	/* libunbound reads the anchor only when the context is finalised, at
	 * its first zone change or query; do it now, with "invalid" as it is by
	 * default (RFC 6761), so a bad anchor is refused here and named. */
	if (trust_anchor && (rc = ub_ctx_zone_add(f->ub, "invalid", "static")) != 0) {
		snprintf(err, errsize, "trust anchor %s: unusable (%s)", trust_anchor, ub_strerror(rc));
		goto fail;
	}
	json_array_foreach(refuse_zones, i, v) {
		if ((rc = ub_ctx_zone_add(f->ub, json_string_value(v), "refuse")) != 0) {
			snprintf(err, errsize, "refusing %s in libunbound: %s", json_string_value(v),
				 ub_strerror(rc));
			goto fail;
		}
	}
	if (loop_add_fd(loop, ub_fd(f->ub), EPOLLIN, on_ub_fd, f) < 0) {
		snprintf(err, errsize, "unable to watch libunbound's fd: %s", strerror(errno));
		goto fail;
	}
	return f;
fail:
	if (f->ub)
		ub_ctx_delete(f->ub);
	free(f);
	return NULL;
}

void forwarder_free(struct forwarder *f)
{
	if (!f)
		return;
	/* Every client still waiting gets its SERVFAIL. */
	while (f->pending) {
		ub_cancel(f->ub, f->pending->async_id);
		f->pending->done(f->pending->ctx, NULL, 0, DNS_RCODE_SERVFAIL);
		unlink_pending(f, f->pending);
	}
	loop_del_fd(f->loop, ub_fd(f->ub));
	ub_ctx_delete(f->ub);
	free(f);
}

int forwarder_query(struct forwarder *f, const struct dns_query *q, forward_done_fn *done,
		    void *ctx)
{
	struct pending *p;
	char name[DNS_TEXT_MAX + 2];
	int rc;

	if (f->npending >= FORWARD_PENDING_MAX) {
		static uint64_t warned;

		if (loop_now_ms() - warned >= 10000) {
			log_warning("%d queries already wait for upstream answers: answering SERVFAIL",
				    FORWARD_PENDING_MAX);
			warned = loop_now_ms();
		}
		return -1;
	}
	if (!(p = calloc(1, sizeof *p)))
		return -1;
	p->f = f;
	p->ctx = ctx;
	p->done = done;
	snprintf(name, sizeof name, "%s.", q->name);
	rc = ub_resolve_async(f->ub, name, q->qtype, q->qclass, p, on_result, &p->async_id);
	if (rc) {
		log_debug("libunbound: %s: %s", name, ub_strerror(rc));
		free(p);
		return -1;
	}
	p->timer = loop_timer_add(f->loop, FORWARD_TIMEOUT_MS, on_timeout, p);
	if (!p->timer) {   /* no memory for it: never left without a timeout */
		ub_cancel(f->ub, p->async_id);
		free(p);
		return -1;
	}
	p->next = f->pending;
	if (f->pending)
		f->pending->prev = p;
	f->pending = p;
	f->npending++;
	return 0;
}

void forwarder_cancel(struct forwarder *f, void *ctx)
{
	struct pending *p, *next;

	for (p = f->pending; p; p = next) {
		next = p->next;
		if (p->ctx == ctx) {
			ub_cancel(f->ub, p->async_id);
			unlink_pending(f, p);
		}
	}
}

size_t forwarder_pending(const struct forwarder *f)
{
	return f->npending;
}
