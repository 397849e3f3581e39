/* replay.h: the sliding window of received counters (RFC 6479's ring of
 * bitmaps, as WireGuard uses it): a counter is accepted once, and only if it
 * is newer than, or within the window behind, the greatest seen. */
#ifndef P2P_TUNNEL_REPLAY_H
#define P2P_TUNNEL_REPLAY_H

#include <stdint.h>

/* 128 blocks: a window of 8128 counters, as in the kernel and wireguard-go. */
#define REPLAY_BLOCKS 128
#define REPLAY_WINDOW ((REPLAY_BLOCKS - 1) * 64)

struct replay {
	uint64_t greatest;
	uint64_t ring[REPLAY_BLOCKS];
	int seen_any;
};

void replay_init(struct replay *r);
/* 1 if COUNTER is fresh (and now marked seen), 0 if a replay, too old, or
 * at or beyond LIMIT. Call only after the packet authenticated. */
int replay_accept(struct replay *r, uint64_t counter, uint64_t limit);

#endif
