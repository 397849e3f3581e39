/* timers.c: the whitepaper's timer state machine (section 6), event by
 * event, as wireguard-go and the kernel implement it. Each peer has five
 * one-shot timers; an event sets, resets or stops them. */
#include <openssl/rand.h>

#include "device.h"
#include "log.h"

struct tunnel_timing timing = {
	.rekey_after_time = 120000,
	.reject_after_time = 180000,
	.rekey_attempt_time = 90000,
	.rekey_timeout = 5000,
	.rekey_jitter = 334,
	.keepalive_timeout = 10000,
	.cookie_refresh_time = 120000,
	.initiation_rate = 20,
};

void tunnel_timing_scale(unsigned divisor)
{
	if (divisor <= 1)
		return;
	timing.rekey_after_time /= divisor;
	timing.reject_after_time /= divisor;
	timing.rekey_attempt_time /= divisor;
	timing.rekey_timeout /= divisor;
	timing.rekey_jitter /= divisor;
	timing.keepalive_timeout /= divisor;
	timing.cookie_refresh_time /= divisor;
	timing.initiation_rate /= divisor;
}

static void on_timer(struct loop *loop, void *arg);

static void timer_set(struct peer *p, enum peer_timer which, uint64_t delay)
{
	struct peer_timer_slot *slot = &p->timers[which];

	if (p->dev->kernel)
		return; /* the kernel keeps its own timers */
	if (slot->timer)
		loop_timer_cancel(p->dev->loop, slot->timer);
	slot->peer = p;
	slot->which = which;
	slot->timer = loop_timer_add(p->dev->loop, delay, on_timer, slot);
}

static void timer_stop(struct peer *p, enum peer_timer which)
{
	if (p->timers[which].timer) {
		loop_timer_cancel(p->dev->loop, p->timers[which].timer);
		p->timers[which].timer = NULL;
	}
}

static int pending(const struct peer *p, enum peer_timer which)
{
	return p->timers[which].timer != NULL;
}

static uint64_t jitter(void)
{
	uint32_t r = 0;

	if (!timing.rekey_jitter)
		return 0;
	RAND_bytes((unsigned char *)&r, sizeof r);
	return r % timing.rekey_jitter;
}

static unsigned max_attempts(void)
{
	return (unsigned)(timing.rekey_attempt_time / timing.rekey_timeout);
}

static void expired_retransmit(struct peer *p)
{
	if ((unsigned)p->handshake_attempts > max_attempts()) {
		log_debug("handshake did not complete after %d attempts, giving up",
			  p->handshake_attempts + 1);
		timer_stop(p, T_SEND_KEEPALIVE);
		peer_clear_staged(p);
		if (!pending(p, T_ZERO_KEYS))
			timer_set(p, T_ZERO_KEYS, timing.reject_after_time * 3);
		return;
	}
	p->handshake_attempts++;
	device_send_handshake_initiation(p, 1);
}

static void expired_send_keepalive(struct peer *p)
{
	device_send_keepalive(p);
	if (p->need_another_keepalive) {
		p->need_another_keepalive = 0;
		timer_set(p, T_SEND_KEEPALIVE, timing.keepalive_timeout);
	}
}

static void expired_zero_keys(struct peer *p)
{
	log_debug("zeroing the keys of a peer silent for %llu s",
		  (unsigned long long)(timing.reject_after_time * 3 / 1000));
	peer_clear_sessions(p);
}

static void expired_new_handshake(struct peer *p)
{
	log_debug("no reply for %llu ms after sending data: new handshake",
		  (unsigned long long)(timing.keepalive_timeout + timing.rekey_timeout));
	device_send_handshake_initiation(p, 0);
}

static void expired_persistent_keepalive(struct peer *p)
{
	if (p->persistent_keepalive)
		device_send_keepalive(p);
}

static void on_timer(struct loop *loop, void *arg)
{
	struct peer_timer_slot *slot = arg;
	struct peer *p = slot->peer;

	(void)loop;
	slot->timer = NULL; /* fired: the loop frees it */
	switch (slot->which) {
	case T_RETRANSMIT: expired_retransmit(p); break;
	case T_SEND_KEEPALIVE: expired_send_keepalive(p); break;
	case T_NEW_HANDSHAKE: expired_new_handshake(p); break;
	case T_ZERO_KEYS: expired_zero_keys(p); break;
	case T_PERSISTENT_KEEPALIVE: expired_persistent_keepalive(p); break;
	default: break;
	}
}

void timers_stop(struct peer *p)
{
	for (int w = 0; w < T_COUNT; w++)
		timer_stop(p, (enum peer_timer)w);
}

void timers_data_sent(struct peer *p)
{
	if (!pending(p, T_NEW_HANDSHAKE))
		timer_set(p, T_NEW_HANDSHAKE, timing.keepalive_timeout + timing.rekey_timeout);
}

void timers_data_received(struct peer *p)
{
	if (!pending(p, T_SEND_KEEPALIVE))
		timer_set(p, T_SEND_KEEPALIVE, timing.keepalive_timeout);
	else
		p->need_another_keepalive = 1;
}

void timers_any_authenticated_packet_sent(struct peer *p)
{
	timer_stop(p, T_SEND_KEEPALIVE);
}

void timers_any_authenticated_packet_received(struct peer *p)
{
	timer_stop(p, T_NEW_HANDSHAKE);
}

void timers_any_authenticated_packet_traversal(struct peer *p)
{
	if (p->persistent_keepalive)
		timer_set(p, T_PERSISTENT_KEEPALIVE, (uint64_t)p->persistent_keepalive * 1000);
}

void timers_handshake_initiated(struct peer *p)
{
	timer_set(p, T_RETRANSMIT, timing.rekey_timeout + jitter());
}

void timers_handshake_complete(struct peer *p)
{
	timer_stop(p, T_RETRANSMIT);
	p->handshake_attempts = 0;
	clock_gettime(CLOCK_REALTIME, &p->last_handshake);
}

void timers_session_derived(struct peer *p)
{
	timer_set(p, T_ZERO_KEYS, timing.reject_after_time * 3);
}

void timers_persistent_keepalive_changed(struct peer *p)
{
	if (p->persistent_keepalive)
		timer_set(p, T_PERSISTENT_KEEPALIVE, (uint64_t)p->persistent_keepalive * 1000);
	else
		timer_stop(p, T_PERSISTENT_KEEPALIVE);
}
