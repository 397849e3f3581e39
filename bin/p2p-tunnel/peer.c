/* peer.c: peers, their sessions and the index table. */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"

struct peer *peer_find(struct device *dev, const uint8_t pub[WG_KEY_LEN])
{
	for (struct peer *p = dev->peers; p; p = p->next)
		if (CRYPTO_memcmp(p->remote.pub, pub, WG_KEY_LEN) == 0)
			return p;
	return NULL;
}

struct peer *peer_create(struct device *dev, const uint8_t pub[WG_KEY_LEN])
{
	struct peer *p = calloc(1, sizeof *p);

	if (!p)
		return NULL;
	p->dev = dev;
	noise_remote_init(&p->remote, &dev->local, pub, NULL);
	p->next = dev->peers;
	dev->peers = p;
	dev->npeers++;
	return p;
}

void session_free(struct device *dev, struct session *s)
{
	if (!s)
		return;
	index_del(dev, s->keys.local_index);
	wg_aead_free(s->tx);
	wg_aead_free(s->rx);
	OPENSSL_cleanse(s, sizeof *s);
	free(s);
}

int session_bind_keys(struct session *s)
{
	s->tx = wg_aead_new_keyed(s->keys.send, 1);
	s->rx = wg_aead_new_keyed(s->keys.recv, 0);
	return s->tx && s->rx ? 0 : -1;
}

void peer_clear_sessions(struct peer *p)
{
	session_free(p->dev, p->current);
	session_free(p->dev, p->previous);
	session_free(p->dev, p->next_session);
	p->current = p->previous = p->next_session = NULL;
	if (p->hs.state != HS_NONE)
		index_del(p->dev, p->hs.local_index);
	OPENSSL_cleanse(&p->hs, sizeof p->hs);
}

void peer_clear_staged(struct peer *p)
{
	for (unsigned i = 0; i < p->nstaged; i++)
		free(p->staged[i].data);
	p->nstaged = 0;
}

/* Keep the newest packets: the oldest are the least likely still wanted. */
void peer_stage(struct peer *p, const uint8_t *pkt, size_t len)
{
	uint8_t *copy = malloc(len);

	if (!copy)
		return;
	memcpy(copy, pkt, len);
	if (p->nstaged == MAX_STAGED_PACKETS) {
		free(p->staged[0].data);
		memmove(p->staged, p->staged + 1, (MAX_STAGED_PACKETS - 1) * sizeof p->staged[0]);
		p->nstaged--;
	}
	p->staged[p->nstaged].data = copy;
	p->staged[p->nstaged].len = len;
	p->nstaged++;
}

void peer_flush_staged(struct peer *p)
{
	struct staged out[MAX_STAGED_PACKETS];
	unsigned n = p->nstaged;

	/* taken out of P first: a packet that cannot go yet (no usable
	 * session) is staged again by device_send_packet, as a copy, into
	 * P's array, which must not be the one being freed here */
	memcpy(out, p->staged, n * sizeof out[0]);
	p->nstaged = 0;
	for (unsigned i = 0; i < n; i++) {
		device_send_packet(p, out[i].data, out[i].len);
		free(out[i].data);
	}
}

void peer_remove(struct device *dev, struct peer *p)
{
	struct peer **pp;

	for (pp = &dev->peers; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	dev->npeers--;
	timers_stop(p);
	allowedips_remove_peer(&dev->aips, p);
	peer_clear_sessions(p);
	peer_clear_staged(p);
	OPENSSL_cleanse(p, sizeof *p);
	free(p);
}

void peer_remove_all(struct device *dev)
{
	while (dev->peers)
		peer_remove(dev, dev->peers);
}

void device_set_private_key(struct device *dev, const uint8_t priv[WG_KEY_LEN])
{
	static const uint8_t zero[WG_KEY_LEN];
	struct peer *p, *next;

	/* The same key again (a reload, wg syncconf) changes nothing: the
	 * sessions stay, as in the kernel and wireguard-go. */
	if (dev->local.has_key && CRYPTO_memcmp(priv, dev->local.priv, WG_KEY_LEN) == 0)
		return;
	if (CRYPTO_memcmp(priv, zero, WG_KEY_LEN) == 0) {
		OPENSSL_cleanse(&dev->local, sizeof dev->local);
	} else {
		noise_local_set(&dev->local, priv);
	}
	/* A peer with our own public key is meaningless: wireguard-go drops it. */
	for (p = dev->peers; p; p = next) {
		next = p->next;
		if (dev->local.has_key &&
		    CRYPTO_memcmp(p->remote.pub, dev->local.pub, WG_KEY_LEN) == 0) {
			peer_remove(dev, p);
			continue;
		}
		noise_remote_init(&p->remote, &dev->local, p->remote.pub, p->remote.psk);
		peer_clear_sessions(p);
	}
}

/* ---- index table: open addressing with linear probing; deletion shifts
 * the following entries back so look-ups never need tombstones. */

static size_t slot_of(const struct device *dev, uint32_t index)
{
	return (size_t)(index * 2654435761u) & (dev->index_size - 1);
}

static int index_grow(struct device *dev)
{
	size_t old = dev->index_size, size = old ? old * 2 : 256;
	struct index_entry *prev = dev->index, *t = calloc(size, sizeof *t);

	if (!t)
		return -1;
	dev->index = t;
	dev->index_size = size;
	for (size_t i = 0; i < old; i++)
		if (prev[i].peer) {
			size_t s = slot_of(dev, prev[i].index);

			while (t[s].peer)
				s = (s + 1) & (size - 1);
			t[s] = prev[i];
		}
	free(prev);
	return 0;
}

uint32_t index_add(struct device *dev, struct peer *p, struct session *s)
{
	uint32_t index;
	size_t slot;

	if ((dev->index_used + 1) * 2 > dev->index_size && index_grow(dev) < 0)
		return 0;
	do {
		if (RAND_bytes((unsigned char *)&index, sizeof index) != 1)
			return 0;
	} while (index == 0 || index_find(dev, index));
	slot = slot_of(dev, index);
	while (dev->index[slot].peer)
		slot = (slot + 1) & (dev->index_size - 1);
	dev->index[slot].index = index;
	dev->index[slot].peer = p;
	dev->index[slot].session = s;
	dev->index_used++;
	return index;
}

struct index_entry *index_find(struct device *dev, uint32_t index)
{
	size_t slot;

	if (!dev->index_size)
		return NULL;
	for (slot = slot_of(dev, index); dev->index[slot].peer;
	     slot = (slot + 1) & (dev->index_size - 1))
		if (dev->index[slot].index == index)
			return &dev->index[slot];
	return NULL;
}

void index_del(struct device *dev, uint32_t index)
{
	struct index_entry *e = index_find(dev, index);
	size_t hole, next, mask = dev->index_size - 1;

	if (!e)
		return;
	hole = (size_t)(e - dev->index);
	dev->index[hole].peer = NULL;
	dev->index_used--;
	for (next = (hole + 1) & mask; dev->index[next].peer; next = (next + 1) & mask) {
		size_t home = slot_of(dev, dev->index[next].index);

		/* Move the entry back if its home is not between hole and next. */
		if ((next > hole && (home <= hole || home > next)) ||
		    (next < hole && (home <= hole && home > next))) {
			dev->index[hole] = dev->index[next];
			dev->index[next].peer = NULL;
			hole = next;
		}
	}
}
