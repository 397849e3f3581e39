/* decimal.c: see decimal.h. */
#include "decimal.h"

char *decimal_u64(char *out, uint64_t v)
{
	char digits[20];
	int n = 0;

	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		*out++ = digits[--n];
	return out;
}

char *decimal_i64(char *out, int64_t v)
{
	if (v >= 0)
		return decimal_u64(out, (uint64_t)v);
	*out++ = '-';
	return decimal_u64(out, 0 - (uint64_t)v);
}
