/* ratelimit.h: handshake messages per source when under load. */
#ifndef P2P_TUNNEL_RATELIMIT_H
#define P2P_TUNNEL_RATELIMIT_H

#include <stdint.h>
#include <sys/socket.h>

#define RATELIMIT_PER_SECOND 20   /* handshake messages a source may send */
#define RATELIMIT_BURST 5         /* ... at once after a quiet spell */
#define RATELIMIT_SLOTS 4096      /* sources followed at once */
#define RATELIMIT_PROBES 8

struct ratelimit_slot {
	uint8_t key[9];           /* family, then the IPv4 address or the IPv6 /64 */
	uint64_t last_ms;         /* 0: free */
	uint64_t budget_us;       /* time saved up, at most a burst's worth */
};

struct ratelimit {
	struct ratelimit_slot slot[RATELIMIT_SLOTS];
	uint64_t seed;
};

/* Whether a handshake message from SA (AF_INET or AF_INET6) may be
 * handled at NOW_MS: a token bucket per IPv4 address or IPv6 /64. A source
 * quiet for a second is forgotten; when all the slots a source could take
 * are held by sources heard within the second, it is refused. */
int ratelimit_allow(struct ratelimit *rl, const struct sockaddr *sa, uint64_t now_ms);

#endif
