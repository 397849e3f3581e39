/* fuzz: p2p-dnsd */
/* fuzz-dns-answer.c: an answer as libunbound might hand one back, into
 * dns_strip_opt(), which p2p-dnsd runs on every forwarded answer before it
 * adds its own OPT.
 *
 * Checks beyond the sanitizers: a message it accepts comes back no longer,
 * with the header, question and the answer and authority sections
 * untouched, ARCOUNT down by the OPT records removed (11 bytes or more
 * each), and no OPT left: running it again changes nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns-wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz-dns-answer: %s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                                          \
			abort();                                                           \
		}                                                                          \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *msg, *again;
	size_t n, m;
	unsigned ar_before, ar_after;

	if (size > 65535)
		return 0;
	msg = malloc(size ? size : 1);
	CHECK(msg);
	memcpy(msg, data, size);
	n = dns_strip_opt(msg, size);
	if (n == 0) { /* refused (the caller answers SERVFAIL, whatever is left in msg) */
		free(msg);
		return 0;
	}
	CHECK(n <= size);
	CHECK(memcmp(msg, data, 10) == 0); /* id, flags, QD, AN, NS counts */
	ar_before = (unsigned)data[10] << 8 | data[11];
	ar_after = (unsigned)msg[10] << 8 | msg[11];
	CHECK(ar_after <= ar_before);
	CHECK(size - n >= 11 * (size_t)(ar_before - ar_after));
	CHECK((size == n) == (ar_before == ar_after));
	again = malloc(n);
	CHECK(again);
	memcpy(again, msg, n);
	m = dns_strip_opt(again, n);
	CHECK(m == n && memcmp(again, msg, n) == 0);
	free(again);
	free(msg);
	return 0;
}
