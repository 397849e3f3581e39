/* allowedips.h: cryptokey routing. A path-compressed binary trie per
 * address family maps prefixes to peers; a packet's destination (sending)
 * or inner source (receiving) is looked up by longest-prefix match. */
#ifndef P2P_TUNNEL_ALLOWEDIPS_H
#define P2P_TUNNEL_ALLOWEDIPS_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct aip_node;

struct allowedips {
	struct aip_node *root4;
	struct aip_node *root6;
	size_t count;
};

/* Host bits of P are cleared, as wg(8) does. Replaces the owner of an
 * identical prefix. 0 or -1 (no memory). */
int allowedips_insert(struct allowedips *t, const struct prefix *p, void *peer);
/* Remove every prefix of PEER. */
void allowedips_remove_peer(struct allowedips *t, void *peer);
/* Remove one prefix if PEER owns it; 0 if removed, -1 if not there. */
int allowedips_remove(struct allowedips *t, const struct prefix *p, void *peer);
/* The peer owning the longest prefix that holds the address (FAMILY with
 * 4 or 16 bytes at BYTES), or NULL. */
void *allowedips_lookup(const struct allowedips *t, int family, const uint8_t *bytes);
/* Call FN for each prefix of PEER (all peers when PEER is NULL). */
void allowedips_walk(const struct allowedips *t, void *peer,
		     void (*fn)(const struct prefix *p, void *peer, void *arg), void *arg);
void allowedips_free(struct allowedips *t);

#endif
