/* device.h: p2p-tunnel's state. One device (a TUN interface, its UDP
 * sockets, our identity), its peers, each peer's sessions, the index
 * table that maps a received message's receiver index to its session, and
 * the whitepaper's timers. Everything runs in one event loop. */
#ifndef P2P_TUNNEL_DEVICE_H
#define P2P_TUNNEL_DEVICE_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "allowedips.h"
#include "crypto.h"
#include "loop.h"
#include "noise.h"
#include "offload.h"
#include "ratelimit.h"
#include "replay.h"

/* Whitepaper section 6 (milliseconds), scaled down only by the test option
 * -T (tunnel_timing_scale). */
struct tunnel_timing {
	uint64_t rekey_after_time;       /* 120 s */
	uint64_t reject_after_time;      /* 180 s */
	uint64_t rekey_attempt_time;     /* 90 s */
	uint64_t rekey_timeout;          /* 5 s */
	uint64_t rekey_jitter;           /* up to 333 ms */
	uint64_t keepalive_timeout;      /* 10 s */
	uint64_t cookie_refresh_time;    /* 120 s */
	uint64_t initiation_rate;        /* 20 ms between initiations we accept from a peer */
};

extern struct tunnel_timing timing;
void tunnel_timing_scale(unsigned divisor);

#define REKEY_AFTER_MESSAGES (1ull << 60)
#define REJECT_AFTER_MESSAGES (UINT64_MAX - (1ull << 13))
#define MAX_STAGED_PACKETS 128
#define MAX_PACKET 65535
#define MAX_SEGMENTS 64
/* Handshake messages per second above which we answer with cookies. */
#define UNDER_LOAD_HANDSHAKES 64

union sockaddr_any {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

struct peer;

/* One set of transport keys. */
struct session {
	struct noise_keys keys;
	struct wg_aead *tx, *rx;   /* bound to keys.send / keys.recv */
	struct peer *peer;
	uint64_t created;          /* monotonic ms */
	uint64_t send_counter;
	struct replay replay;
	int confirmed;             /* a responder's session before the first data */
};

struct staged {
	uint8_t *data;
	size_t len;
};

enum peer_timer { T_RETRANSMIT, T_SEND_KEEPALIVE, T_NEW_HANDSHAKE, T_ZERO_KEYS,
		  T_PERSISTENT_KEEPALIVE, T_COUNT };

struct peer_timer_slot {
	struct loop_timer *timer;   /* NULL when not pending */
	struct peer *peer;
	enum peer_timer which;
};

struct peer {
	struct device *dev;
	struct peer *next;
	struct noise_remote remote;
	struct noise_handshake hs;
	uint8_t last_timestamp[TAI64N_LEN];
	uint64_t last_initiation_consumed;  /* monotonic ms, flood limit */
	uint64_t last_initiation_sent;
	struct session *current, *previous, *next_session;
	union sockaddr_any endpoint;
	int has_endpoint;
	uint16_t persistent_keepalive;      /* seconds, 0 off */
	uint64_t rx_bytes, tx_bytes;
	struct timespec last_handshake;     /* CLOCK_REALTIME, for wg show */
	int handshake_attempts;
	int need_another_keepalive;
	uint8_t cookie[WG_MAC_LEN];
	uint64_t cookie_time;               /* 0: none */
	uint8_t last_mac1[WG_MAC_LEN];      /* of the last handshake message we sent */
	struct staged staged[MAX_STAGED_PACKETS];
	unsigned nstaged;
	struct peer_timer_slot timers[T_COUNT];
	int removed;
};

/* An entry of the index table: a local index names a pending handshake or
 * a session of some peer. */
struct index_entry {
	uint32_t index;
	struct peer *peer;
	struct session *session;   /* NULL: the peer's pending handshake */
};

struct device {
	struct loop *loop;
	char ifname[16];
	int tun_fd;
	int udp4, udp6;
	uint16_t listen_port;
	uint32_t fwmark;
	struct noise_local local;
	struct peer *peers;
	size_t npeers;
	struct allowedips aips;
	struct index_entry *index;    /* open addressing, power-of-two size */
	size_t index_size, index_used;
	struct wg_aead *aead;
	uint8_t cookie_secret[WG_HASH_LEN];
	uint64_t cookie_secret_time;
	struct ratelimit ratelimit;     /* handshake messages per source, under load */
	uint64_t load_window_start;
	unsigned load_count;
	uint8_t *buf;                 /* packet buffers: the data path allocates nothing */
	uint8_t *buf2;
	unsigned mtu;
	uint64_t dropped;             /* packets we could not route or authenticate */
	int up;                       /* the interface exists and the loop runs */
	int vnet;                     /* TUN with virtio headers and TSO */
	int kernel;                   /* the kernel's WireGuard does the protocol (kernel.c) */
	int udp_gso;                  /* UDP_SEGMENT works: one sendmsg per batch */
	uint8_t *seg;                 /* segments of a split super-packet, then their ciphertext */
	struct gro gro;               /* the super-packet being built for TUN */
};

/* peer.c */
struct peer *peer_find(struct device *dev, const uint8_t pub[WG_KEY_LEN]);
struct peer *peer_create(struct device *dev, const uint8_t pub[WG_KEY_LEN]);
void peer_remove(struct device *dev, struct peer *p);
void peer_remove_all(struct device *dev);
/* Our private key changed: recompute every peer's static-static DH. */
void device_set_private_key(struct device *dev, const uint8_t priv[WG_KEY_LEN]);
uint32_t index_add(struct device *dev, struct peer *p, struct session *s);
struct index_entry *index_find(struct device *dev, uint32_t index);
void index_del(struct device *dev, uint32_t index);
void session_free(struct device *dev, struct session *s);
/* Make the session's cipher contexts once its keys are derived. */
int session_bind_keys(struct session *s);
void peer_clear_sessions(struct peer *p);
void peer_stage(struct peer *p, const uint8_t *pkt, size_t len);
void peer_flush_staged(struct peer *p);
void peer_clear_staged(struct peer *p);

/* packet.c */
void device_send_handshake_initiation(struct peer *p, int retry);
void device_send_keepalive(struct peer *p);
void device_on_tun(struct loop *loop, int fd, uint32_t events, void *arg);
void device_on_udp(struct loop *loop, int fd, uint32_t events, void *arg);
void device_flush_tun(struct device *dev);
int device_send_packet(struct peer *p, const uint8_t *pkt, size_t len);
int endpoint_to_string(const union sockaddr_any *ep, char *buf, size_t size);
int endpoint_from_string(union sockaddr_any *ep, const char *text);

/* timers.c */
void timers_data_sent(struct peer *p);
void timers_data_received(struct peer *p);
void timers_any_authenticated_packet_sent(struct peer *p);
void timers_any_authenticated_packet_received(struct peer *p);
void timers_any_authenticated_packet_traversal(struct peer *p);
void timers_handshake_initiated(struct peer *p);
void timers_handshake_complete(struct peer *p);
void timers_session_derived(struct peer *p);
void timers_stop(struct peer *p);
void timers_persistent_keepalive_changed(struct peer *p);

/* uapi.c */
/* Apply one "set=1" transaction (the lines after "set=1", up to the blank
 * line); returns 0 or a negative errno, as the UAPI's errno=. */
int uapi_set(struct device *dev, const char *text, size_t len);
/* The "get=1" answer without its errno line; the caller frees it. */
char *uapi_get(struct device *dev);
int uapi_listen(struct device *dev, const char *dir);
void uapi_close(struct device *dev, const char *dir);

/* udp.c */
int udp_bind(struct device *dev, uint16_t port);
void udp_close(struct device *dev);

#endif
