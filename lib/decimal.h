/* decimal.h: integers written in decimal by hand, for lines made once a
 * request or once a record, where printf's cost shows (p2p-tlsterm's
 * records and calls, p2p-audit's lines and acknowledgements). */
#ifndef P2P_DECIMAL_H
#define P2P_DECIMAL_H

#include <stdint.h>

/* V at OUT, at most 20 bytes, no NUL: the end. */
char *decimal_u64(char *out, uint64_t v);
/* V at OUT, at most 20 bytes with the sign, no NUL: the end. */
char *decimal_i64(char *out, int64_t v);

#endif
