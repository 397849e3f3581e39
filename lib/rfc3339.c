/* rfc3339.c: see rfc3339.h. */
#include "rfc3339.h"

#include <string.h>

void rfc3339_utc(char *out, const struct timespec *ts, int digits)
{
	static time_t last = -1;
	static char second[20];
	long frac = ts->tv_nsec % 1000000000L;

	if (ts->tv_sec != last) {
		struct tm tm;

		/* 19 characters until the year 10000 */
		if (!gmtime_r(&ts->tv_sec, &tm) ||
		    strftime(second, sizeof second, "%Y-%m-%dT%H:%M:%S", &tm) != 19)
			memcpy(second, "9999-12-31T23:59:59", 20);
		last = ts->tv_sec;
	}
	if (digits < 1)
		digits = 1;
	if (digits > 9)
		digits = 9;
	for (int i = digits; i < 9; i++)
		frac /= 10;
	memcpy(out, second, 19);
	out[19] = '.';
	for (int i = 19 + digits; i > 19; i--, frac /= 10)
		out[i] = (char)('0' + frac % 10);
	out[20 + digits] = 'Z';
	out[21 + digits] = '\0';
}
