/* forward.c: at-least-once, in-order forwarding of the chain from a
 * persisted offset. One batch is in flight at a time; it is read from the
 * files (not kept in memory), so a forwarder that is days behind costs no
 * memory, and one that restarts goes on where its offset says.
 *
 * Three marks move forward: delivered (the receiver took the batch),
 * settled (delivered long enough ago that a receiver without
 * acknowledgements had time to read it: syslog), and acked (settled and
 * written to forward-NAME.json). A broken connection sends everything
 * after settled again; a restart, everything after acked. Both can repeat
 * records, never skip them. */
#include "audit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "log.h"

#define PERSIST_EVERY_MS 1000
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000

static void kick_later(struct forwarder *f, unsigned ms);

static int read_state(struct forwarder *f, char *err, size_t errsize)
{
	size_t len;
	char *text = file_read(f->state_path, 4096, &len);
	json_error_t jerr;
	json_t *doc, *seq;

	if (!text) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errsize, "unable to read %s: %s", f->state_path, strerror(errno));
		return -1;
	}
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	seq = json_object_get(doc, "seq");
	if (!json_is_integer(seq) || json_integer_value(seq) < 0) {
		snprintf(err, errsize, "%s: %s (remove it to forward everything again: the collector "
			 "drops what it has)", f->state_path,
			 doc ? ".seq: not an integer of 0 or more" : jerr.text);
		json_decref(doc);
		return -1;
	}
	f->acked = (uint64_t)json_integer_value(seq);
	json_decref(doc);
	return 0;
}

static void persist(struct forwarder *f)
{
	char text[128];
	int n;

	if (f->settled == f->acked)
		return;
	n = snprintf(text, sizeof text, "{\"seq\":%llu}\n", (unsigned long long)f->settled);
	if (file_replace(f->state_path, text, (size_t)n, 0640) < 0) {
		log_error("%s: unable to save the forwarding offset in %s: %s", f->name, f->state_path,
			  strerror(errno));
		return;
	}
	f->acked = f->settled;
}

static void on_persist(struct loop *loop, void *arg)
{
	struct forwarder *f = arg;

	(void)loop;
	f->persist_timer = NULL;
	persist(f);
}

static void schedule_persist(struct forwarder *f)
{
	if (!f->persist_timer && f->settled != f->acked)
		f->persist_timer = loop_timer_add(f->loop, PERSIST_EVERY_MS, on_persist, f);
}

int forwarder_init(struct forwarder *f, const char *name, struct loop *loop, struct store *s,
		   const struct transport *t, void *ctx, char *err, size_t errsize)
{
	memset(f, 0, sizeof *f);
	f->name = name;
	f->loop = loop;
	f->store = s;
	f->t = t;
	f->ctx = ctx;
	f->max_records = 2000;
	f->max_bytes = 1u << 20;
	if (snprintf(f->state_path, sizeof f->state_path, "%s/forward-%s.json", s->dir, name) >=
	    (int)sizeof f->state_path) {
		snprintf(err, errsize, "%s: path too long", s->dir);
		return -1;
	}
	if (read_state(f, err, errsize) < 0)
		return -1;
	if (f->acked > s->seq) {
		log_warning("%s: %s says seq %llu was forwarded, but the chain ends at seq %llu (a new "
			    "chain?): forwarding from seq %llu", name, f->state_path,
			    (unsigned long long)f->acked, (unsigned long long)s->seq,
			    (unsigned long long)(s->seq + 1));
		f->acked = s->seq;
	}
	f->settled = f->delivered = f->acked;
	return 0;
}

static int append_batch(struct forwarder *f, const char *line, size_t len)
{
	if (f->blen + len + 1 > f->bcap) {
		size_t cap = f->bcap ? f->bcap : 65536;
		char *p;

		while (cap < f->blen + len + 1)
			cap *= 2;
		p = realloc(f->batch, cap);
		if (!p)
			return -1;
		f->batch = p;
		f->bcap = cap;
	}
	memcpy(f->batch + f->blen, line, len);
	f->batch[f->blen + len] = '\n';
	f->blen += len + 1;
	return 0;
}

/* Read the next batch from the files: 1 read, 0 nothing to send, -1 error. */
static int fill_batch(struct forwarder *f)
{
	char err[512];
	const char *line;
	size_t len;
	struct record_info info;

	if (!f->positioned) {
		uint64_t skipped = 0;

		if (reader_seek(&f->reader, f->store->dir, f->delivered + 1, &skipped, err,
				sizeof err) < 0) {
			log_error("%s: %s", f->name, err);
			return -1;
		}
		if (skipped) {
			log_error("%s: records %llu to %llu are no longer in %s (removed before they "
				  "were forwarded): going on from seq %llu", f->name,
				  (unsigned long long)(f->delivered + 1),
				  (unsigned long long)(f->delivered + skipped), f->store->dir,
				  (unsigned long long)(f->delivered + skipped + 1));
			f->delivered = f->settled = f->delivered + skipped;
			schedule_persist(f);
		}
		f->positioned = 1;
	}
	f->blen = f->bcount = 0;
	while (f->bcount < f->max_records && f->blen < f->max_bytes) {
		int rc = reader_next(&f->reader, f->store->seq, &line, &len, &info, err, sizeof err);

		if (rc < 0) {
			log_error("%s: %s", f->name, err);
			f->positioned = 0;
			return -1;
		}
		if (rc == 0)
			break;
		if (append_batch(f, line, len) < 0) {
			log_error("%s: out of memory", f->name);
			f->positioned = 0;
			return -1;
		}
		if (f->bcount == 0)
			f->bfirst = info.seq;
		f->blast = info.seq;
		f->bcount++;
	}
	return f->bcount > 0;
}

void forwarder_kick(struct forwarder *f)
{
	int rc;

	if (f->busy || f->stopping || f->retry_timer || f->delivered >= f->store->seq)
		return;
	if (f->blen == 0) {
		rc = fill_batch(f);
		if (rc < 0) {
			kick_later(f, BACKOFF_MAX_MS);
			return;
		}
		if (rc == 0)
			return;
	}
	f->busy = 1;
	f->t->send(f);
}

static void on_retry(struct loop *loop, void *arg)
{
	struct forwarder *f = arg;

	(void)loop;
	f->retry_timer = NULL;
	forwarder_kick(f);
}

static void kick_later(struct forwarder *f, unsigned ms)
{
	if (!f->retry_timer)
		f->retry_timer = loop_timer_add(f->loop, ms, on_retry, f);
}

/* Move deliveries older than the settle time to settled. */
static void settle(struct forwarder *f)
{
	uint64_t now = loop_now_ms();
	size_t i = 0;

	while (i < f->nunsettled && now - f->unsettled[i].at_ms >= f->t->settle_ms)
		f->settled = f->unsettled[i++].seq;
	memmove(f->unsettled, f->unsettled + i, (f->nunsettled - i) * sizeof *f->unsettled);
	f->nunsettled -= i;
	schedule_persist(f);
}

static void on_settle(struct loop *loop, void *arg)
{
	struct forwarder *f = arg;

	(void)loop;
	f->settle_timer = NULL;
	settle(f);
	if (f->nunsettled)
		f->settle_timer = loop_timer_add(f->loop, f->t->settle_ms, on_settle, f);
}

static void delivered(struct forwarder *f)
{
	f->delivered = f->blast;
	if (!f->t->settle_ms) {
		f->settled = f->delivered;
		schedule_persist(f);
		return;
	}
	if (f->nunsettled == f->capunsettled) {
		size_t cap = f->capunsettled ? 2 * f->capunsettled : 64;
		struct settle *p = realloc(f->unsettled, cap * sizeof *p);

		if (!p) {
			/* Without room to wait, count it settled now. */
			f->settled = f->delivered;
			schedule_persist(f);
			return;
		}
		f->unsettled = p;
		f->capunsettled = cap;
	}
	f->unsettled[f->nunsettled].seq = f->blast;
	f->unsettled[f->nunsettled].at_ms = loop_now_ms();
	f->nunsettled++;
	if (!f->settle_timer)
		f->settle_timer = loop_timer_add(f->loop, f->t->settle_ms, on_settle, f);
}

void forwarder_done(struct forwarder *f, int ok, uint64_t restart_at, const char *error)
{
	f->busy = 0;
	if (ok) {
		if (f->failures && f->last_error[0])
			log_info("%s: forwarding again (records %llu to %llu delivered)", f->name,
				 (unsigned long long)f->bfirst, (unsigned long long)f->blast);
		f->last_error[0] = '\0';
		f->batches++;
		f->records += f->bcount;
		f->blen = f->bcount = 0;
		f->backoff_ms = 0;
		delivered(f);
		forwarder_kick(f);
		return;
	}
	f->failures++;
	if (strcmp(f->last_error, error) != 0)
		log_warning("%s: unable to forward records %llu to %llu: %s (trying again; the records "
			    "wait in the files)", f->name, (unsigned long long)f->bfirst,
			    (unsigned long long)f->blast, error);
	snprintf(f->last_error, sizeof f->last_error, "%s", error);
	if (restart_at && restart_at - 1 != f->delivered && restart_at - 1 <= f->store->seq) {
		/* The receiver holds up to restart_at - 1: more than we knew (our
		 * offset was lost), or less (it lost records). Go on from there. */
		log_warning("%s: the receiver asks for records from seq %llu", f->name,
			    (unsigned long long)restart_at);
		f->delivered = f->settled = restart_at - 1;
		f->nunsettled = 0;
		f->positioned = 0;
		f->blen = f->bcount = 0;
		schedule_persist(f);
	}
	f->backoff_ms = f->backoff_ms ? f->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (f->backoff_ms > BACKOFF_MAX_MS)
		f->backoff_ms = BACKOFF_MAX_MS;
	kick_later(f, f->backoff_ms);
}

void forwarder_broken(struct forwarder *f, const char *why)
{
	if (f->delivered > f->settled) {
		log_warning("%s: %s: sending records %llu to %llu again (the receiver may not have read "
			    "them; it may see them twice)", f->name, why,
			    (unsigned long long)(f->settled + 1), (unsigned long long)f->delivered);
		f->delivered = f->settled;
		f->nunsettled = 0;
		f->positioned = 0;
		f->blen = f->bcount = 0;
	}
	if (!f->busy)
		kick_later(f, BACKOFF_MIN_MS);
}

void forwarder_flush(struct forwarder *f)
{
	f->stopping = 1;
	if (f->t->settle_ms)
		settle(f);
	persist(f);
}

void forwarder_free(struct forwarder *f)
{
	if (f->t && f->t->free)
		f->t->free(f);
	if (f->retry_timer)
		loop_timer_cancel(f->loop, f->retry_timer);
	if (f->persist_timer)
		loop_timer_cancel(f->loop, f->persist_timer);
	if (f->settle_timer)
		loop_timer_cancel(f->loop, f->settle_timer);
	reader_close(&f->reader);
	free(f->batch);
	free(f->unsettled);
	memset(f, 0, sizeof *f);
}

json_t *forwarder_status(const struct forwarder *f)
{
	return json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:s?}", "to", f->t->name,
			 "acked", (json_int_t)f->acked, "delivered", (json_int_t)f->delivered,
			 "behind", (json_int_t)(f->store->seq - f->delivered),
			 "batches", (json_int_t)f->batches, "records", (json_int_t)f->records,
			 "failures", (json_int_t)f->failures,
			 "last_error", f->last_error[0] ? f->last_error : NULL);
}
