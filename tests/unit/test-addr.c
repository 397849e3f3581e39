/* test: lib */
/* test-addr.c: lib/addr.c, the addresses, prefixes and endpoints every map
 * and config file holds. Parsers are strict (a typo is refused, not read as
 * something else), formatting is canonical, and the prefix arithmetic the
 * allocator uses is exact at the edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "addr.h"

static struct addr A(const char *text)
{
	struct addr a;

	if (addr_parse(text, &a) < 0)
		fail_msg("addr_parse(\"%s\") refused", text);
	return a;
}

static struct prefix P(const char *text)
{
	struct prefix p;

	if (prefix_parse(text, &p, 0, 0) < 0)
		fail_msg("prefix_parse(\"%s\") refused", text);
	return p;
}

static const char *S(const struct addr *a)
{
	static char buf[ADDR_STRLEN];

	return addr_str(a, buf);
}

static void test_ipv4_parse_and_format(void **ctx)
{
	struct addr a = A("100.96.128.20");
	static const uint8_t want[4] = { 100, 96, 128, 20 };

	(void)ctx;
	assert_int_equal(a.family, AF_INET);
	assert_memory_equal(a.bytes, want, 4);
	assert_int_equal(addr_len(&a), 4);
	assert_int_equal(addr_bits(&a), 32);
	assert_string_equal(S(&a), "100.96.128.20");
	a = A("0.0.0.0");
	assert_string_equal(S(&a), "0.0.0.0");
	a = A("255.255.255.255");
	assert_string_equal(S(&a), "255.255.255.255");
}

static void test_ipv6_parse_and_format(void **ctx)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "2001:db8::1", "2001:db8::1" },
		{ "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1" },
		{ "2001:DB8::A", "2001:db8::a" },
		{ "::", "::" },
		{ "::1", "::1" },
		{ "fd00:0:0:1::", "fd00:0:0:1::" },
		{ "::ffff:100.96.0.1", "::ffff:100.96.0.1" },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
	};

	(void)ctx;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct addr a = A(cases[i].in), b;

		assert_int_equal(a.family, AF_INET6);
		assert_int_equal(addr_len(&a), 16);
		assert_int_equal(addr_bits(&a), 128);
		assert_string_equal(S(&a), cases[i].out);
		/* The formatted form parses back to the same address. */
		b = A(S(&a));
		assert_true(addr_equal(&a, &b));
	}
	struct addr lo = A("::1");
	assert_int_equal(lo.bytes[15], 1);
	for (int i = 0; i < 15; i++)
		assert_int_equal(lo.bytes[i], 0);
}

static void test_addr_rejects(void **ctx)
{
	static const char *const bad[] = {
		"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-1", "01.2.3.4", "1.2.3.04",
		" 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n", "1. 2.3.4", "0x1.2.3.4", "1.2.3.4/32",
		"fe80::1%eth0", "fe80::1%1", "1::2::3", "02001:db8::1", "2001:db8::g",
		" ::1", "::1 ", "[::1]", "localhost", "1.2.3.4:80",
	};
	struct addr a;

	(void)ctx;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (addr_parse(bad[i], &a) != -1)
			fail_msg("addr_parse(\"%s\") accepted", bad[i]);
}

static void test_addr_equal(void **ctx)
{
	struct addr a = A("1.2.3.4"), b = A("1.2.3.4"), c = A("1.2.3.5");
	struct addr m = A("::ffff:1.2.3.4"), z4 = A("0.0.0.0"), z6 = A("::");

	(void)ctx;
	assert_true(addr_equal(&a, &b));
	assert_false(addr_equal(&a, &c));
	/* An IPv4 address is not its IPv4-mapped IPv6 form, nor is 0.0.0.0 "::". */
	assert_false(addr_equal(&a, &m));
	assert_false(addr_equal(&z4, &z6));
	assert_false(addr_equal(&z6, &z4));
}

static void test_prefix_parse_and_format(void **ctx)
{
	static const char *const good[] = {
		"100.96.0.0/12", "0.0.0.0/0", "10.0.0.0/8", "192.0.2.7/32", "192.0.2.0/24",
		"::/0", "2001:db8::/32", "fd00::/8", "2001:db8::1/128", "2001:db8::/100",
		"2001:db8:0:8::/61",
	};
	char buf[PREFIX_STRLEN];

	(void)ctx;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct prefix p = P(good[i]);

		assert_string_equal(prefix_str(&p, buf), good[i]);
	}
	struct prefix p = P("100.96.0.0/12");
	assert_int_equal(p.len, 12);
	assert_int_equal(p.addr.family, AF_INET);
	p = P("2001:db8::/100");
	assert_int_equal(p.len, 100);
	assert_int_equal(p.addr.family, AF_INET6);
	/* Canonical output for a non-canonical but valid input. */
	p = P("2001:0DB8:0:0::/32");
	assert_string_equal(prefix_str(&p, buf), "2001:db8::/32");
}

static void test_prefix_rejects(void **ctx)
{
	static const char *const bad[] = {
		"1.2.3.4/33", "::/129", "10.0.0.0/08", "10.0.0.0/008", "::/00", "10.0.0.0/",
		"10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/0x8", "10.0.0.0/8 ", " 10.0.0.0/8",
		"10.0.0.0 /8", "10.0.0.0/ 8", "10.0.0.0/8/8", "10.0.0.0/8a", "/8", "1.2.3/24",
		"fe80::%eth0/64", "10.0.0.0/99999999999999999999",
		/* host bits set */
		"10.0.0.1/8", "100.97.0.0/12", "1.2.3.4/0", "2001:db8::1/64", "2001:db8:0:f::/61",
		/* no length, bare addresses not allowed here */
		"10.0.0.0", "::1",
	};
	struct prefix p;

	(void)ctx;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (prefix_parse(bad[i], &p, 0, 0) != -1)
			fail_msg("prefix_parse(\"%s\") accepted", bad[i]);
}

static void test_prefix_parse_options(void **ctx)
{
	struct prefix p;
	char buf[PREFIX_STRLEN];

	(void)ctx;
	/* allow_bare: a lone address is a host prefix. */
	assert_int_equal(prefix_parse("192.0.2.7", &p, 1, 0), 0);
	assert_int_equal(p.len, 32);
	assert_string_equal(prefix_str(&p, buf), "192.0.2.7/32");
	assert_int_equal(prefix_parse("2001:db8::7", &p, 1, 0), 0);
	assert_int_equal(p.len, 128);
	assert_string_equal(prefix_str(&p, buf), "2001:db8::7/128");
	/* allow_host_bits: an interface address like 10.0.0.1/8 is kept as is. */
	assert_int_equal(prefix_parse("10.0.0.1/8", &p, 0, 1), 0);
	assert_int_equal(p.len, 8);
	assert_string_equal(prefix_str(&p, buf), "10.0.0.1/8");
	/* Neither option relaxes the syntax. */
	assert_int_equal(prefix_parse("10.0.0.1/08", &p, 1, 1), -1);
	assert_int_equal(prefix_parse("10.0.0.1/33", &p, 1, 1), -1);
	assert_int_equal(prefix_parse("10.0.0.1 ", &p, 1, 1), -1);
	assert_int_equal(prefix_parse("", &p, 1, 1), -1);
}

static int in(const char *prefix, const char *addr)
{
	struct prefix p = P(prefix);
	struct addr a = A(addr);

	return prefix_contains(&p, &a);
}

static uint64_t size_of(const char *prefix)
{
	struct prefix p = P(prefix);

	return prefix_size(&p);
}

static void test_prefix_contains(void **ctx)
{
	(void)ctx;
	/* /12: both ends in, both neighbours out. */
	assert_true(in("100.96.0.0/12", "100.96.0.0"));
	assert_true(in("100.96.0.0/12", "100.111.255.255"));
	assert_false(in("100.96.0.0/12", "100.112.0.0"));
	assert_false(in("100.96.0.0/12", "100.95.255.255"));
	/* /0 holds every address of its family and none of the other. */
	assert_true(in("0.0.0.0/0", "0.0.0.0"));
	assert_true(in("0.0.0.0/0", "255.255.255.255"));
	assert_false(in("0.0.0.0/0", "::"));
	assert_true(in("::/0", "ffff::1"));
	assert_false(in("::/0", "1.2.3.4"));
	/* IPv4-mapped IPv6 is not inside an IPv4 prefix. */
	assert_false(in("100.96.0.0/12", "::ffff:100.96.0.1"));
	/* /1 and /32. */
	assert_true(in("128.0.0.0/1", "128.0.0.0"));
	assert_true(in("128.0.0.0/1", "255.255.255.255"));
	assert_false(in("128.0.0.0/1", "127.255.255.255"));
	assert_true(in("192.0.2.7/32", "192.0.2.7"));
	assert_false(in("192.0.2.7/32", "192.0.2.6"));
	assert_false(in("192.0.2.7/32", "192.0.2.8"));
	assert_false(in("192.0.2.7/32", "193.0.2.7"));
	/* IPv6: a length that is not a byte boundary, and /128. */
	assert_true(in("2001:db8:0:8::/61", "2001:db8:0:8::"));
	assert_true(in("2001:db8:0:8::/61", "2001:db8:0:f:ffff:ffff:ffff:ffff"));
	assert_false(in("2001:db8:0:8::/61", "2001:db8:0:10::"));
	assert_false(in("2001:db8:0:8::/61", "2001:db8:0:7:ffff:ffff:ffff:ffff"));
	assert_true(in("2001:db8::1/128", "2001:db8::1"));
	assert_false(in("2001:db8::1/128", "2001:db8::"));
	assert_false(in("2001:db8::1/128", "2001:db8::1:0"));
	assert_false(in("2001:db8::1/128", "3001:db8::1"));
}

static void test_prefix_size(void **ctx)
{
	(void)ctx;
	assert_true(size_of("192.0.2.7/32") == 1);
	assert_true(size_of("192.0.2.0/31") == 2);
	assert_true(size_of("192.0.2.0/24") == 256);
	assert_true(size_of("100.96.0.0/12") == 1u << 20);
	assert_true(size_of("0.0.0.0/0") == (uint64_t)1 << 32);
	assert_true(size_of("2001:db8::1/128") == 1);
	assert_true(size_of("2001:db8::/96") == (uint64_t)1 << 32);
	assert_true(size_of("2001:db8::/65") == (uint64_t)1 << 63);
	/* 2^64 and more saturate. */
	assert_true(size_of("2001:db8::/64") == UINT64_MAX);
	assert_true(size_of("::/0") == UINT64_MAX);
}

static void test_prefix_nth_and_host_index(void **ctx)
{
	struct prefix overlay = P("100.96.0.0/12"), v6 = P("2001:db8:1:2::/64");
	struct prefix all4 = P("0.0.0.0/0");
	struct addr a;
	static const uint64_t idx[] = { 0, 1, 255, 256, 257, 65536, (1u << 20) - 1 };

	(void)ctx;
	prefix_nth(&overlay, 0, &a);
	assert_string_equal(S(&a), "100.96.0.0");
	prefix_nth(&overlay, 257, &a);
	assert_string_equal(S(&a), "100.96.1.1");
	prefix_nth(&overlay, prefix_size(&overlay) - 1, &a);
	assert_string_equal(S(&a), "100.111.255.255");
	assert_true(prefix_contains(&overlay, &a));
	prefix_nth(&all4, 0xffffffffu, &a);
	assert_string_equal(S(&a), "255.255.255.255");
	for (size_t i = 0; i < sizeof idx / sizeof idx[0]; i++) {
		prefix_nth(&overlay, idx[i], &a);
		assert_int_equal(a.family, AF_INET);
		assert_true(prefix_contains(&overlay, &a));
		assert_true(prefix_host_index(&overlay, &a) == idx[i]);
	}
	a = A("100.97.0.20");
	assert_true(prefix_host_index(&overlay, &a) == 65556);

	prefix_nth(&v6, 0x100000001ull, &a);
	assert_int_equal(a.family, AF_INET6);
	assert_string_equal(S(&a), "2001:db8:1:2:0:1:0:1");
	assert_true(prefix_host_index(&v6, &a) == 0x100000001ull);
	prefix_nth(&v6, UINT64_MAX, &a);
	assert_string_equal(S(&a), "2001:db8:1:2:ffff:ffff:ffff:ffff");
	assert_true(prefix_contains(&v6, &a));
	/* The network half is never touched. */
	prefix_nth(&v6, 5, &a);
	assert_string_equal(S(&a), "2001:db8:1:2::5");
}

static void test_endpoint_parse(void **ctx)
{
	struct addr a;
	uint16_t port = 0;

	(void)ctx;
	assert_int_equal(endpoint_parse("1.2.3.4:51820", &a, &port), 0);
	assert_int_equal(a.family, AF_INET);
	assert_string_equal(S(&a), "1.2.3.4");
	assert_int_equal(port, 51820);
	assert_int_equal(endpoint_parse("[::1]:53", &a, &port), 0);
	assert_int_equal(a.family, AF_INET6);
	assert_string_equal(S(&a), "::1");
	assert_int_equal(port, 53);
	assert_int_equal(endpoint_parse("[2001:db8::7]:65535", &a, &port), 0);
	assert_string_equal(S(&a), "2001:db8::7");
	assert_int_equal(port, 65535);
	assert_int_equal(endpoint_parse("0.0.0.0:1", &a, &port), 0);
	assert_int_equal(port, 1);
}

static void test_endpoint_rejects(void **ctx)
{
	static const char *const bad[] = {
		"::1:53",            /* ambiguous without brackets */
		"2001:db8::7:51820",
		"1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:99999999999999999999", "1.2.3.4:-1",
		"1.2.3.4:+80", "1.2.3.4:080", "1.2.3.4:", "1.2.3.4", ":53", "1.2.3.4:53 ",
		" 1.2.3.4:53", "1.2.3.4: 53", "1.2.3.4:0x35", "1.2.3:53", "example.com:53",
		"[::1]", "[::1]53", "[::1]:", "[::1]:0", "[::1]:65536", "[]:53", "[::1:53",
		"::1]:53", "[fe80::1%eth0]:53", "[ ::1]:53", "[::1] :53", "",
	};
	struct addr a;
	uint16_t port;

	(void)ctx;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (endpoint_parse(bad[i], &a, &port) != -1)
			fail_msg("endpoint_parse(\"%s\") accepted", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_parse_and_format),
		cmocka_unit_test(test_ipv6_parse_and_format),
		cmocka_unit_test(test_addr_rejects),
		cmocka_unit_test(test_addr_equal),
		cmocka_unit_test(test_prefix_parse_and_format),
		cmocka_unit_test(test_prefix_rejects),
		cmocka_unit_test(test_prefix_parse_options),
		cmocka_unit_test(test_prefix_contains),
		cmocka_unit_test(test_prefix_size),
		cmocka_unit_test(test_prefix_nth_and_host_index),
		cmocka_unit_test(test_endpoint_parse),
		cmocka_unit_test(test_endpoint_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
