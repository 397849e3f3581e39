/* test: lib */
/* test-rfc3339.c: lib/rfc3339.c, the times of every audit record. Each
 * must read as strftime and printf would write it, for a later time in the
 * same second (the kept second reused), a new second, an earlier one, the
 * ends of a second's fraction, and with 3 and 6 digits (p2p-tlsterm's
 * start, p2p-audit's time). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rfc3339.h"

static void expect(time_t sec, long nsec, int digits)
{
	struct timespec ts = { .tv_sec = sec, .tv_nsec = nsec };
	char got[40], want[40], day[20], nine[16];
	struct tm tm;

	assert_non_null(gmtime_r(&sec, &tm));
	assert_int_equal(strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm), 19);
	/* the first DIGITS of the nine, truncated as the function does */
	snprintf(nine, sizeof nine, "%09ld", nsec);
	snprintf(want, sizeof want, "%s.%.*sZ", day, digits, nine);
	memset(got, 'x', sizeof got);
	rfc3339_utc(got, &ts, digits);
	assert_string_equal(got, want);
	assert_int_equal(strlen(got), 21 + digits);
	assert_int_equal(got[22 + digits], 'x');   /* nothing past the NUL */
}

static void test_same_and_new_seconds(void **state)
{
	(void)state;
	expect(1795000000, 0, 3);
	expect(1795000000, 123456789, 3);   /* the same second, kept */
	expect(1795000000, 999999999, 6);
	expect(1795000001, 1000, 6);        /* the next second */
	expect(1794999999, 500000000, 3);   /* an earlier one */
	expect(0, 0, 6);                    /* the epoch */
}

static void test_day_and_year_edges(void **state)
{
	(void)state;
	expect(1798761599, 999000000, 3);   /* 2026-12-31T23:59:59.999Z */
	expect(1798761600, 1000000, 3);     /* 2027-01-01T00:00:00.001Z */
	expect(951782400, 42000, 6);        /* 2000-02-29 */
}

static void test_digits(void **state)
{
	(void)state;
	for (int d = 1; d <= 9; d++)
		expect(1795000000, 987654321, d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_and_new_seconds),
		cmocka_unit_test(test_day_and_year_edges),
		cmocka_unit_test(test_digits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
