/* rfc3339.h: times in UTC as RFC 3339 text, for the audit records that
 * p2p-tlsterm and p2p-audit write for every request. */
#ifndef P2P_RFC3339_H
#define P2P_RFC3339_H

#include <time.h>

/* TS as 2026-11-22T10:11:12.345Z with DIGITS (1..9) digits of the
 * second's fraction, truncated: 21 + DIGITS characters and the NUL at OUT.
 * The date and time of day are made once a second (the last second is
 * kept: one thread). */
void rfc3339_utc(char *out, const struct timespec *ts, int digits);

#endif
