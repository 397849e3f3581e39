/* test: lib */
/* test-decimal.c: lib/decimal.c, the integers p2p-tlsterm and p2p-audit
 * write into every record and acknowledgement without printf: each must
 * read exactly as printf's %llu or %lld would write it, at the edges
 * (0, one digit to two, the largest and smallest 64-bit values) and over
 * a sweep of values of every length, with nothing written past its end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "decimal.h"

static void expect_u64(uint64_t v)
{
	char got[32], want[32];
	char *end;

	memset(got, 'x', sizeof got);
	end = decimal_u64(got, v);
	snprintf(want, sizeof want, "%llu", (unsigned long long)v);
	assert_int_equal(end - got, strlen(want));
	assert_memory_equal(got, want, strlen(want));
	assert_int_equal(*end, 'x');   /* no NUL, nothing past the end */
}

static void expect_i64(int64_t v)
{
	char got[32], want[32];
	char *end;

	memset(got, 'x', sizeof got);
	end = decimal_i64(got, v);
	snprintf(want, sizeof want, "%lld", (long long)v);
	assert_int_equal(end - got, strlen(want));
	assert_memory_equal(got, want, strlen(want));
	assert_int_equal(*end, 'x');
}

static void test_unsigned_edges(void **state)
{
	(void)state;
	expect_u64(0);
	expect_u64(9);
	expect_u64(10);
	expect_u64(99);
	expect_u64(100);
	expect_u64(UINT64_MAX);
	expect_u64(UINT64_MAX - 1);
	expect_u64(10000000000000000000u);
}

static void test_signed_edges(void **state)
{
	(void)state;
	expect_i64(0);
	expect_i64(-1);
	expect_i64(1);
	expect_i64(-10);
	expect_i64(INT64_MAX);
	expect_i64(INT64_MIN);       /* its magnitude does not fit int64_t */
	expect_i64(INT64_MIN + 1);
}

static void test_every_length(void **state)
{
	uint64_t v = 1;

	(void)state;
	/* 1, 3, 7, 15 ... and their neighbours: every digit count, both signs */
	for (int i = 0; i < 64; i++, v = v * 2 + 1) {
		expect_u64(v);
		expect_u64(v + 1);
		expect_i64((int64_t)(v >> 1));
		expect_i64(-(int64_t)(v >> 1));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unsigned_edges),
		cmocka_unit_test(test_signed_edges),
		cmocka_unit_test(test_every_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
