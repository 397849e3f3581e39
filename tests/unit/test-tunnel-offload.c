/* test: p2p-tunnel */
/* test-tunnel-offload.c: TSO split and TCP GRO around the TUN device's
 * virtio header: a super-packet split into segments gives valid IP and TCP
 * checksums, consecutive sequence numbers and the flags where they belong;
 * merging the segments again gives back the payload and a header the
 * kernel accepts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "offload.h"

static uint8_t super[70000], segs[64 * 1500], grobuf[VNET_HDR_LEN + 65600];

static size_t build_tcp(uint8_t *p, int v6, size_t payload, uint8_t flags)
{
	size_t iph = v6 ? 40 : 20, len = iph + 20 + payload;

	memset(p, 0, iph + 20);
	if (v6) {
		p[0] = 0x60;
		p[4] = (uint8_t)((len - 40) >> 8);
		p[5] = (uint8_t)(len - 40);
		p[6] = 6;
		p[7] = 64;
		p[8] = 0xfd;
		p[23] = 1;
		p[24] = 0xfd;
		p[39] = 2;
	} else {
		p[0] = 0x45;
		p[2] = (uint8_t)(len >> 8);
		p[3] = (uint8_t)len;
		p[4] = 0x12;
		p[5] = 0x34;
		p[6] = 0x40; /* DF */
		p[8] = 64;
		p[9] = 6;
		memcpy(p + 12, "\x0a\x64\x00\x01\x0a\x64\x00\x02", 8);
	}
	p[iph] = 0x9c; /* ports 40000 -> 5201 */
	p[iph + 1] = 0x40;
	p[iph + 2] = 0x14;
	p[iph + 3] = 0x51;
	memcpy(p + iph + 4, "\x10\x00\x00\x00", 4); /* seq */
	memcpy(p + iph + 8, "\x00\x00\x00\x99", 4); /* ack */
	p[iph + 12] = 0x50;
	p[iph + 13] = flags;
	p[iph + 14] = 0x01;
	for (size_t i = 0; i < payload; i++)
		p[iph + 20 + i] = (uint8_t)(i * 7 + 3);
	return len;
}

/* A whole TCP checksum over the pseudo-header verifies to 0xffff. */
static int tcp_checksum_ok(const uint8_t *p, size_t len, int v6)
{
	size_t iph = v6 ? 40 : 20;
	uint32_t sum = v6 ? csum_add(0, p + 8, 32) : csum_add(0, p + 12, 8);

	sum = csum_fold(sum) + 6 + (uint32_t)(len - iph);
	sum = csum_add(sum, p + iph, len - iph);
	return csum_fold(sum) == 0xffff;
}

static void split_and_merge(int v6)
{
	size_t iph = v6 ? 40 : 20, payload = 5000, mss = 1380, lens[64], stride = 1500;
	size_t len = build_tcp(super, v6, payload, 0x18 /* ACK|PSH */), total;
	struct vnet_hdr h = { .flags = VNET_F_NEEDS_CSUM, .gso_type = v6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4,
			      .hdr_len = (uint16_t)(iph + 20), .gso_size = (uint16_t)mss,
			      .csum_start = (uint16_t)iph, .csum_offset = 16 };
	struct gro g = { .buf = grobuf };
	int n;

	assert_int_equal(offload_segment_size(&h, super, len), iph + 20 + mss);
	n = offload_tso_split(&h, super, len, segs, stride, lens, 64);
	assert_int_equal(n, 4); /* 1380 * 3 + 860 */
	for (int i = 0; i < n; i++) {
		uint8_t *s = segs + (size_t)i * stride, *tcp = s + iph;
		uint32_t seq = (uint32_t)tcp[4] << 24 | tcp[5] << 16 | tcp[6] << 8 | tcp[7];

		assert_int_equal(lens[i], iph + 20 + (i == 3 ? 860 : mss));
		assert_true(tcp_checksum_ok(s, lens[i], v6));
		assert_int_equal(seq, 0x10000000u + (uint32_t)i * 1380);
		assert_int_equal(tcp[13], i == 3 ? 0x18 : 0x10); /* PSH on the last only */
		if (!v6) {
			assert_int_equal(csum_fold(csum_add(0, s, 20)), 0xffff);
			assert_int_equal((s[2] << 8 | s[3]), lens[i]);
			assert_int_equal((s[4] << 8 | s[5]), 0x1234 + i);
		} else {
			assert_int_equal((s[4] << 8 | s[5]) + 40, lens[i]);
		}
		assert_memory_equal(s + iph + 20, super + iph + 20 + (size_t)i * mss, lens[i] - iph - 20);
	}
	/* Merge them back. */
	for (int i = 0; i < n; i++)
		assert_int_equal(gro_add(&g, segs + (size_t)i * stride, lens[i]), 1);
	total = gro_finish(&g);
	assert_int_equal(total, VNET_HDR_LEN + len);
	vnet_hdr_read(&h, grobuf);
	assert_int_equal(h.gso_type, v6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4);
	assert_int_equal(h.gso_size, mss);
	assert_int_equal(h.csum_start, iph);
	assert_true(h.flags & VNET_F_NEEDS_CSUM);
	assert_memory_equal(grobuf + VNET_HDR_LEN + iph + 20, super + iph + 20, payload);
	/* Finishing the partial checksum gives a valid one. */
	assert_int_equal(offload_finish_csum(&h, grobuf + VNET_HDR_LEN, len), 0);
	assert_true(tcp_checksum_ok(grobuf + VNET_HDR_LEN, len, v6));
	assert_int_equal(grobuf[VNET_HDR_LEN + iph + 13], 0x18);
}

static void test_ipv4_split_and_merge(void **ctx)
{
	(void)ctx;
	split_and_merge(0);
}

static void test_ipv6_split_and_merge(void **ctx)
{
	(void)ctx;
	split_and_merge(1);
}

static void test_gro_refuses_what_must_not_merge(void **ctx)
{
	static uint8_t a[2000], b[2000];
	struct gro g = { .buf = grobuf };
	size_t la, lb;

	(void)ctx;
	/* A SYN never merges; a non-TCP packet neither. */
	la = build_tcp(a, 0, 100, 0x02);
	assert_int_equal(gro_add(&g, a, la), -1);
	a[9] = 17;
	assert_int_equal(gro_add(&g, a, la), -1);
	/* A gap in the sequence breaks the run. */
	la = build_tcp(a, 0, 1000, 0x10);
	lb = build_tcp(b, 0, 1000, 0x10);
	b[20 + 7] = 0x01; /* seq + 1, not + 1000 */
	assert_int_equal(gro_add(&g, a, la), 1);
	assert_int_equal(gro_add(&g, b, lb), 0);
	/* Another flow (port) breaks it too. */
	lb = build_tcp(b, 0, 1000, 0x10);
	b[20 + 4] = 0x10; b[20 + 5] = 0x00; b[20 + 6] = 0x03; b[20 + 7] = 0xe8;
	b[21] = 0x41;
	assert_int_equal(gro_add(&g, b, lb), 0);
	/* A single pending packet is written whole, marked valid. */
	assert_int_equal(gro_finish(&g), VNET_HDR_LEN + la);
	assert_int_equal(grobuf[0], VNET_F_DATA_VALID);
	assert_int_equal(grobuf[1], VNET_GSO_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_split_and_merge),
		cmocka_unit_test(test_ipv6_split_and_merge),
		cmocka_unit_test(test_gro_refuses_what_must_not_merge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
