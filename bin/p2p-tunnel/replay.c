/* replay.c: the window moves forward by clearing the blocks it passes. */
#include "replay.h"

#include <string.h>

void replay_init(struct replay *r)
{
	memset(r, 0, sizeof *r);
}

int replay_accept(struct replay *r, uint64_t counter, uint64_t limit)
{
	uint64_t block = counter / 64, bit = (uint64_t)1 << (counter % 64);
	uint64_t *word;

	if (counter >= limit)
		return 0;
	if (!r->seen_any || counter > r->greatest) {
		uint64_t current = r->greatest / 64, diff = block - current;

		if (!r->seen_any || diff >= REPLAY_BLOCKS)
			memset(r->ring, 0, sizeof r->ring);
		else
			for (uint64_t i = 1; i <= diff; i++)
				r->ring[(current + i) % REPLAY_BLOCKS] = 0;
		r->greatest = counter;
		r->seen_any = 1;
	} else if (r->greatest - counter > REPLAY_WINDOW) {
		return 0;
	}
	word = &r->ring[block % REPLAY_BLOCKS];
	if (*word & bit)
		return 0;
	*word |= bit;
	return 1;
}
