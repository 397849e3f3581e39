/* offload.c: TSO split and TCP GRO for IPv4 and IPv6 (no extension
 * headers: packets that carry them go through unmerged). */
#include "offload.h"

#include <string.h>

void vnet_hdr_read(struct vnet_hdr *h, const uint8_t *p)
{
	h->flags = p[0];
	h->gso_type = p[1];
	h->hdr_len = (uint16_t)(p[2] | p[3] << 8);
	h->gso_size = (uint16_t)(p[4] | p[5] << 8);
	h->csum_start = (uint16_t)(p[6] | p[7] << 8);
	h->csum_offset = (uint16_t)(p[8] | p[9] << 8);
}

void vnet_hdr_write(uint8_t *p, const struct vnet_hdr *h)
{
	p[0] = h->flags;
	p[1] = h->gso_type;
	p[2] = (uint8_t)h->hdr_len;
	p[3] = (uint8_t)(h->hdr_len >> 8);
	p[4] = (uint8_t)h->gso_size;
	p[5] = (uint8_t)(h->gso_size >> 8);
	p[6] = (uint8_t)h->csum_start;
	p[7] = (uint8_t)(h->csum_start >> 8);
	p[8] = (uint8_t)h->csum_offset;
	p[9] = (uint8_t)(h->csum_offset >> 8);
}

uint32_t csum_add(uint32_t sum, const uint8_t *data, size_t len)
{
	uint64_t acc = sum;

	while (len >= 8) {
		uint32_t a, b;

		memcpy(&a, data, 4);
		memcpy(&b, data + 4, 4);
		/* Sum in network order as 16-bit words: byte-swapped 32-bit
		 * adds give the same result after folding (RFC 1071 sec. 2). */
		acc += (uint64_t)__builtin_bswap32(a) + __builtin_bswap32(b);
		data += 8;
		len -= 8;
	}
	while (len >= 2) {
		acc += (uint32_t)(data[0] << 8 | data[1]);
		data += 2;
		len -= 2;
	}
	if (len)
		acc += (uint32_t)data[0] << 8;
	while (acc >> 32)
		acc = (acc & 0xffffffffu) + (acc >> 32);
	return (uint32_t)acc;
}

uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int offload_finish_csum(const struct vnet_hdr *h, uint8_t *pkt, size_t len)
{
	uint32_t sum;

	if (!(h->flags & VNET_F_NEEDS_CSUM))
		return 0;
	if ((size_t)h->csum_start + h->csum_offset + 2 > len)
		return -1;
	/* The field holds the pseudo-header sum; sum from csum_start on. */
	sum = csum_add(0, pkt + h->csum_start, len - h->csum_start);
	put16(pkt + h->csum_start + h->csum_offset, (uint16_t)~csum_fold(sum));
	return 0;
}

/* Pseudo-header sum for TCP over IPv4 or IPv6 with the given L4 length. */
static uint32_t pseudo_sum(const uint8_t *ip, int v6, size_t l4len)
{
	uint32_t sum = v6 ? csum_add(0, ip + 8, 32) : csum_add(0, ip + 12, 8);

	return (uint32_t)csum_fold(sum) + 6 /* TCP */ + (uint32_t)l4len;
}

static int tcp_headers(const uint8_t *pkt, size_t len, int *v6, size_t *iphlen, size_t *hdrlen)
{
	size_t tcphlen;

	if (len < 20)
		return -1;
	if (pkt[0] >> 4 == 4) {
		*v6 = 0;
		*iphlen = (size_t)(pkt[0] & 15) * 4;
		if (*iphlen < 20 || pkt[9] != 6)
			return -1;
	} else if (pkt[0] >> 4 == 6) {
		*v6 = 1;
		*iphlen = 40;
		if (len < 40 || pkt[6] != 6)
			return -1;
	} else {
		return -1;
	}
	if (len < *iphlen + 20)
		return -1;
	tcphlen = (size_t)(pkt[*iphlen + 12] >> 4) * 4;
	if (tcphlen < 20 || len < *iphlen + tcphlen)
		return -1;
	*hdrlen = *iphlen + tcphlen;
	return 0;
}

size_t offload_segment_size(const struct vnet_hdr *h, const uint8_t *pkt, size_t len)
{
	size_t iphlen, hdrlen;
	int v6;

	if (tcp_headers(pkt, len, &v6, &iphlen, &hdrlen) < 0)
		return 0;
	return hdrlen + h->gso_size;
}

static void ipv4_checksum(uint8_t *ip, size_t iphlen)
{
	ip[10] = ip[11] = 0;
	put16(ip + 10, (uint16_t)~csum_fold(csum_add(0, ip, iphlen)));
}

int offload_tso_split(const struct vnet_hdr *h, const uint8_t *pkt, size_t len,
		      uint8_t *out, size_t stride, size_t *lens, int max)
{
	size_t iphlen, hdrlen, payload, mss = h->gso_size;
	uint32_t seq;
	uint16_t id;
	int v6, n;

	if (tcp_headers(pkt, len, &v6, &iphlen, &hdrlen) < 0 || mss == 0)
		return -1;
	payload = len - hdrlen;
	n = (int)((payload + mss - 1) / mss);
	if (n > max || n == 0 || hdrlen + mss > stride)
		return -1;
	seq = get32(pkt + iphlen + 4);
	id = v6 ? 0 : get16(pkt + 4);
	for (int i = 0; i < n; i++) {
		size_t seglen = (size_t)i == (size_t)n - 1 ? payload - (size_t)i * mss : mss;
		uint8_t *s = out + (size_t)i * stride, *tcp = s + iphlen;
		uint32_t sum;

		memcpy(s, pkt, hdrlen);
		memcpy(s + hdrlen, pkt + hdrlen + (size_t)i * mss, seglen);
		if (v6) {
			put16(s + 4, (uint16_t)(hdrlen - iphlen + seglen));
		} else {
			put16(s + 2, (uint16_t)(hdrlen + seglen));
			put16(s + 4, (uint16_t)(id + i));
			ipv4_checksum(s, iphlen);
		}
		put32(tcp + 4, seq + (uint32_t)((size_t)i * mss));
		if (i != n - 1)
			tcp[13] &= (uint8_t) ~0x09; /* FIN, PSH only on the last */
		if (i != 0)
			tcp[13] &= (uint8_t) ~0x80; /* CWR only on the first */
		tcp[16] = tcp[17] = 0;
		sum = pseudo_sum(s, v6, hdrlen - iphlen + seglen);
		sum = csum_add(sum, tcp, hdrlen - iphlen + seglen);
		put16(tcp + 16, (uint16_t)~csum_fold(sum));
		lens[i] = hdrlen + seglen;
	}
	return n;
}

/* ---- GRO ---- */

/* Header fields that must match for two segments to merge: for IPv4 all
 * but total length, id and checksum; for IPv6 all but payload length; TCP
 * all but sequence number, flags' PSH and checksum. */
static int same_flow(const struct gro *g, const uint8_t *pkt, size_t iphlen, size_t hdrlen)
{
	const uint8_t *a = g->buf + VNET_HDR_LEN, *ta = a + iphlen, *tb = pkt + iphlen;

	if (hdrlen != g->hdrlen || iphlen != g->iphlen)
		return 0;
	if (g->ipv6) {
		if (memcmp(a, pkt, 4) || memcmp(a + 6, pkt + 6, 34))
			return 0;
	} else {
		if (a[0] != pkt[0] || a[1] != pkt[1] || memcmp(a + 6, pkt + 6, 4) ||
		    memcmp(a + 12, pkt + 12, 8))
			return 0;
	}
	/* ports, ack, data offset, flags except PSH, window, urgent, options */
	return !memcmp(ta, tb, 4) && !memcmp(ta + 8, tb + 8, 5) &&
	       (ta[13] & ~0x08) == (tb[13] & ~0x08) && !memcmp(ta + 14, tb + 14, 2) &&
	       !memcmp(ta + 18, tb + 18, hdrlen - iphlen - 18);
}

int gro_add(struct gro *g, const uint8_t *pkt, size_t len)
{
	size_t iphlen, hdrlen, payload;
	int v6;
	uint8_t flags;

	if (tcp_headers(pkt, len, &v6, &iphlen, &hdrlen) < 0)
		return -1;
	if ((!v6 && (iphlen != 20 || (get16(pkt + 6) & 0x3fff))) || /* options, fragments */
	    (!v6 && get16(pkt + 2) != len) || (v6 && (size_t)get16(pkt + 4) + 40 != len))
		return -1;
	flags = pkt[iphlen + 13];
	payload = len - hdrlen;
	/* Only plain ACK segments with data (and PSH) merge. */
	if ((flags & ~0x18) != 0 || payload == 0)
		return -1;
	if (g->len == 0) {
		memcpy(g->buf + VNET_HDR_LEN, pkt, len);
		g->len = len;
		g->hdrlen = hdrlen;
		g->iphlen = iphlen;
		g->ipv6 = v6;
		g->mss = payload;
		g->segments = 1;
		g->psh = flags & 0x08;
		g->next_seq = get32(pkt + iphlen + 4) + (uint32_t)payload;
		return 1;
	}
	/* The pending packet ends at a short segment or a PSH: nothing follows. */
	if (g->psh || (g->len - g->hdrlen) % g->mss != 0 || payload > g->mss ||
	    g->len + payload > 65535 - VNET_HDR_LEN || g->segments >= 64 ||
	    get32(pkt + iphlen + 4) != g->next_seq || !same_flow(g, pkt, iphlen, hdrlen))
		return 0;
	memcpy(g->buf + VNET_HDR_LEN + g->len, pkt + hdrlen, payload);
	g->len += payload;
	g->segments++;
	g->psh = flags & 0x08;
	g->next_seq += (uint32_t)payload;
	if (g->psh)
		g->buf[VNET_HDR_LEN + iphlen + 13] |= 0x08;
	return 1;
}

size_t gro_finish(struct gro *g)
{
	struct vnet_hdr h = { 0 };
	uint8_t *ip = g->buf + VNET_HDR_LEN, *tcp = ip + g->iphlen;
	size_t total = g->len;
	uint32_t sum;

	if (g->segments == 1) {
		/* Alone: its checksums are whole, and the AEAD vouches for them. */
		h.flags = VNET_F_DATA_VALID;
	} else {
		h.flags = VNET_F_NEEDS_CSUM;
		h.gso_type = g->ipv6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4;
		h.hdr_len = (uint16_t)g->hdrlen;
		h.gso_size = (uint16_t)g->mss;
		h.csum_start = (uint16_t)g->iphlen;
		h.csum_offset = 16;
		if (g->ipv6) {
			put16(ip + 4, (uint16_t)(total - 40));
		} else {
			put16(ip + 2, (uint16_t)total);
			ipv4_checksum(ip, g->iphlen);
		}
		/* A partial checksum: the pseudo-header only, not complemented. */
		sum = pseudo_sum(ip, g->ipv6, total - g->iphlen);
		put16(tcp + 16, csum_fold(sum));
	}
	vnet_hdr_write(g->buf, &h);
	g->len = 0;
	g->segments = 0;
	return total + VNET_HDR_LEN;
}
