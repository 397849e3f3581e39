/* offload.h: segmentation and coalescing around the TUN device's virtio
 * header, so the tunnel moves 64 KiB TCP super-packets through one read or
 * write instead of 45 (IFF_VNET_HDR with TSO from the kernel, TCP GRO back
 * into it), and checksums where the kernel left them to us. */
#ifndef P2P_TUNNEL_OFFLOAD_H
#define P2P_TUNNEL_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>

#define VNET_HDR_LEN 10

struct vnet_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
};

#define VNET_F_NEEDS_CSUM 1
#define VNET_F_DATA_VALID 2
#define VNET_GSO_NONE 0
#define VNET_GSO_TCPV4 1
#define VNET_GSO_TCPV6 4
#define VNET_GSO_ECN 0x80

void vnet_hdr_read(struct vnet_hdr *h, const uint8_t *p);
void vnet_hdr_write(uint8_t *p, const struct vnet_hdr *h);

/* Finish a checksum the kernel left partial (VNET_F_NEEDS_CSUM). */
int offload_finish_csum(const struct vnet_hdr *h, uint8_t *pkt, size_t len);

/* Split a TCP super-packet into segments of at most h->gso_size payload.
 * Segment i is written at OUT + i * STRIDE, its length in LENS[i]; returns
 * the number of segments, or -1 if the packet is not a TCP GSO packet we
 * understand or would need more than MAX segments. */
int offload_tso_split(const struct vnet_hdr *h, const uint8_t *pkt, size_t len,
		      uint8_t *out, size_t stride, size_t *lens, int max);
/* The size of a full segment (headers plus gso_size) of a GSO packet. */
size_t offload_segment_size(const struct vnet_hdr *h, const uint8_t *pkt, size_t len);

/* Coalescing for writes to TUN: packets are appended to a pending
 * super-packet while they continue the same TCP flow; otherwise the caller
 * flushes it and starts anew. */
struct gro {
	uint8_t *buf;          /* VNET_HDR_LEN + up to 65535 bytes */
	size_t len;            /* bytes after the header; 0: nothing pending */
	size_t hdrlen, iphlen, mss;
	int segments, ipv6, psh;
	uint32_t next_seq;
};

/* 1: PKT was merged into (or started) the pending packet; 0: PKT cannot
 * join, flush and retry; -1: not coalescable, write PKT on its own. */
int gro_add(struct gro *g, const uint8_t *pkt, size_t len);
/* The pending packet with its virtio header filled in: returns its total
 * length (header included) and resets G. */
size_t gro_finish(struct gro *g);

/* The Internet checksum of DATA, starting from SUM (not folded). */
uint32_t csum_add(uint32_t sum, const uint8_t *data, size_t len);
uint16_t csum_fold(uint32_t sum);

#endif
