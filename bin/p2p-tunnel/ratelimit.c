/* ratelimit.c: a token bucket per source of handshake messages, used once
 * the device is under load and a message's MAC2 has shown that its source
 * address is real (a cookie was sent there). MAC2 alone stops spoofed
 * floods; this stops one real host from making us do a Diffie-Hellman for
 * every message it sends (the whitepaper's section 5.3; wireguard-go's
 * ratelimiter has the same rate and burst). */
#include <netinet/in.h>
#include <string.h>

#include "ratelimit.h"

#define COST_US (1000000u / RATELIMIT_PER_SECOND)
#define FORGET_MS 1000

static size_t key_of(const struct sockaddr *sa, uint8_t key[9])
{
	memset(key, 0, 9);
	key[0] = (uint8_t)sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else
		memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 8);   /* the /64 */
	return 9;
}

static uint64_t hash_key(const uint8_t key[9], uint64_t seed)
{
	uint64_t h = seed ^ 0x9e3779b97f4a7c15u;

	for (int i = 0; i < 9; i++)
		h = (h ^ key[i]) * 0x100000001b3u;
	return h ^ (h >> 29);
}

int ratelimit_allow(struct ratelimit *rl, const struct sockaddr *sa, uint64_t now_ms)
{
	uint8_t key[9];
	struct ratelimit_slot *free_slot = NULL, *s = NULL;
	uint64_t h, elapsed_us;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return 0;
	if (!rl->seed)
		rl->seed = (uint64_t)(uintptr_t)rl ^ now_ms ^ 0x5bd1e995u;
	key_of(sa, key);
	h = hash_key(key, rl->seed);
	for (int i = 0; i < RATELIMIT_PROBES && !s; i++) {
		struct ratelimit_slot *t = &rl->slot[(h + (uint64_t)i) % RATELIMIT_SLOTS];
		int stale = !t->last_ms || now_ms - t->last_ms >= FORGET_MS;

		if (!stale && !memcmp(t->key, key, sizeof key))
			s = t;
		else if (stale && !free_slot)
			free_slot = t;
	}
	if (!s) {
		if (!free_slot)
			return 0;   /* every slot it could take is in use: refused */
		s = free_slot;
		memcpy(s->key, key, sizeof key);
		s->last_ms = now_ms ? now_ms : 1;
		s->budget_us = (uint64_t)COST_US * RATELIMIT_BURST;
	} else {
		elapsed_us = (now_ms - s->last_ms) * 1000u;
		s->last_ms = now_ms;
		s->budget_us += elapsed_us;
		if (s->budget_us > (uint64_t)COST_US * RATELIMIT_BURST)
			s->budget_us = (uint64_t)COST_US * RATELIMIT_BURST;
	}
	if (s->budget_us < COST_US)
		return 0;
	s->budget_us -= COST_US;
	return 1;
}
