/* allowedips.c: the trie. Each node holds a prefix (bits, cidr) and maybe a
 * peer; children split on the bit just after the node's prefix. Nodes
 * without a peer exist only where two branches diverge. */
#include "allowedips.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct aip_node {
	struct aip_node *child[2];
	void *peer;
	uint8_t bits[16];
	uint8_t cidr;
};

static int bit_at(const uint8_t *bits, unsigned i)
{
	return (bits[i / 8] >> (7 - i % 8)) & 1;
}

/* Length of the common prefix of A and B, at most MAX bits. */
static unsigned common_bits(const uint8_t *a, const uint8_t *b, unsigned max)
{
	unsigned n = 0;

	while (n < max) {
		uint8_t x = a[n / 8] ^ b[n / 8];

		if (n % 8 == 0 && x == 0) {
			n += 8;
			continue;
		}
		if (bit_at(a, n) != bit_at(b, n))
			break;
		n++;
	}
	return n < max ? n : max;
}

static void mask_bits(uint8_t *bits, unsigned cidr, unsigned total)
{
	for (unsigned i = cidr; i < total; i++)
		bits[i / 8] &= (uint8_t) ~(0x80 >> (i % 8));
}

static struct aip_node *node_new(const uint8_t *bits, unsigned cidr, unsigned total, void *peer)
{
	struct aip_node *n = calloc(1, sizeof *n);

	if (!n)
		return NULL;
	memcpy(n->bits, bits, total / 8);
	mask_bits(n->bits, cidr, total);
	n->cidr = (uint8_t)cidr;
	n->peer = peer;
	return n;
}

static struct aip_node **root_of(struct allowedips *t, int family)
{
	return family == AF_INET ? &t->root4 : &t->root6;
}

int allowedips_insert(struct allowedips *t, const struct prefix *p, void *peer)
{
	unsigned total = (unsigned)addr_bits(&p->addr), cidr = (unsigned)p->len;
	struct aip_node **pp = root_of(t, p->addr.family), *n, *fresh, *fork;
	uint8_t bits[16] = { 0 };

	memcpy(bits, p->addr.bytes, total / 8);
	mask_bits(bits, cidr, total);
	while ((n = *pp)) {
		unsigned common = common_bits(n->bits, bits, n->cidr < cidr ? n->cidr : cidr);

		if (common == n->cidr && n->cidr == cidr) {
			if (!n->peer)
				t->count++;
			n->peer = peer;
			return 0;
		}
		if (common == n->cidr) { /* N holds the new prefix: go down */
			pp = &n->child[bit_at(bits, n->cidr)];
			continue;
		}
		fresh = node_new(bits, cidr, total, peer);
		if (!fresh)
			return -1;
		if (common == cidr) { /* the new prefix holds N: it goes above */
			fresh->child[bit_at(n->bits, cidr)] = n;
			*pp = fresh;
		} else { /* they diverge: a fork node above both */
			fork = node_new(bits, common, total, NULL);
			if (!fork) {
				free(fresh);
				return -1;
			}
			fork->child[bit_at(n->bits, common)] = n;
			fork->child[bit_at(bits, common)] = fresh;
			*pp = fork;
		}
		t->count++;
		return 0;
	}
	*pp = node_new(bits, cidr, total, peer);
	if (!*pp)
		return -1;
	t->count++;
	return 0;
}

/* Drop nodes that carry no peer and no longer fork. */
static void compact(struct aip_node **pp)
{
	struct aip_node *n = *pp;

	if (!n || n->peer)
		return;
	if (!n->child[0] || !n->child[1]) {
		*pp = n->child[0] ? n->child[0] : n->child[1];
		free(n);
	}
}

static void remove_peer(struct allowedips *t, struct aip_node **pp, void *peer)
{
	struct aip_node *n = *pp;

	if (!n)
		return;
	remove_peer(t, &n->child[0], peer);
	remove_peer(t, &n->child[1], peer);
	if (n->peer && n->peer == peer) {
		n->peer = NULL;
		t->count--;
	}
	compact(pp);
}

void allowedips_remove_peer(struct allowedips *t, void *peer)
{
	remove_peer(t, &t->root4, peer);
	remove_peer(t, &t->root6, peer);
}

static int remove_one(struct allowedips *t, struct aip_node **pp, const uint8_t *bits,
		      unsigned cidr, void *peer)
{
	struct aip_node *n = *pp;
	int rc;

	if (!n || common_bits(n->bits, bits, n->cidr < cidr ? n->cidr : cidr) < n->cidr ||
	    n->cidr > cidr)
		return -1;
	if (n->cidr == cidr) {
		if (n->peer != peer || !peer)
			return -1;
		n->peer = NULL;
		t->count--;
		compact(pp);
		return 0;
	}
	rc = remove_one(t, &n->child[bit_at(bits, n->cidr)], bits, cidr, peer);
	if (rc == 0)
		compact(pp);
	return rc;
}

int allowedips_remove(struct allowedips *t, const struct prefix *p, void *peer)
{
	unsigned total = (unsigned)addr_bits(&p->addr);
	uint8_t bits[16] = { 0 };

	memcpy(bits, p->addr.bytes, total / 8);
	mask_bits(bits, (unsigned)p->len, total);
	return remove_one(t, root_of(t, p->addr.family), bits, (unsigned)p->len, peer);
}

void *allowedips_lookup(const struct allowedips *t, int family, const uint8_t *bytes)
{
	const struct aip_node *n = family == AF_INET ? t->root4 : t->root6;
	unsigned total = family == AF_INET ? 32 : 128;
	void *best = NULL;

	while (n && common_bits(n->bits, bytes, n->cidr) == n->cidr) {
		if (n->peer)
			best = n->peer;
		if (n->cidr == total)
			break;
		n = n->child[bit_at(bytes, n->cidr)];
	}
	return best;
}

static void walk(const struct aip_node *n, int family, void *peer,
		 void (*fn)(const struct prefix *, void *, void *), void *arg)
{
	if (!n)
		return;
	if (n->peer && (!peer || n->peer == peer)) {
		struct prefix p = { .len = n->cidr };

		p.addr.family = family;
		memcpy(p.addr.bytes, n->bits, family == AF_INET ? 4 : 16);
		fn(&p, n->peer, arg);
	}
	walk(n->child[0], family, peer, fn, arg);
	walk(n->child[1], family, peer, fn, arg);
}

void allowedips_walk(const struct allowedips *t, void *peer,
		     void (*fn)(const struct prefix *p, void *peer, void *arg), void *arg)
{
	walk(t->root4, AF_INET, peer, fn, arg);
	walk(t->root6, AF_INET6, peer, fn, arg);
}

static void free_nodes(struct aip_node *n)
{
	if (!n)
		return;
	free_nodes(n->child[0]);
	free_nodes(n->child[1]);
	free(n);
}

void allowedips_free(struct allowedips *t)
{
	free_nodes(t->root4);
	free_nodes(t->root6);
	memset(t, 0, sizeof *t);
}
