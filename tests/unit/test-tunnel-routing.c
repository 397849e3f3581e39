/* test: p2p-tunnel */
/* test-tunnel-routing.c: cryptokey routing (longest-prefix match over
 * AllowedIPs, checked against a brute-force search on random prefixes) and
 * the replay window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "allowedips.h"
#include "replay.h"

static int peers[8];

static struct prefix P(const char *text)
{
	struct prefix p;

	assert_int_equal(prefix_parse(text, &p, 1, 1), 0);
	return p;
}

static void *look(struct allowedips *t, const char *addr)
{
	struct addr a;

	assert_int_equal(addr_parse(addr, &a), 0);
	return allowedips_lookup(t, a.family, a.bytes);
}

static void test_longest_prefix_wins(void **ctx)
{
	struct allowedips t = { 0 };
	struct prefix p;

	(void)ctx;
	p = P("100.96.0.0/12");
	assert_int_equal(allowedips_insert(&t, &p, &peers[0]), 0);
	p = P("100.96.128.20/32");
	assert_int_equal(allowedips_insert(&t, &p, &peers[1]), 0);
	p = P("100.96.128.0/24");
	assert_int_equal(allowedips_insert(&t, &p, &peers[2]), 0);
	p = P("0.0.0.0/0");
	assert_int_equal(allowedips_insert(&t, &p, &peers[3]), 0);
	p = P("fd00::/8");
	assert_int_equal(allowedips_insert(&t, &p, &peers[4]), 0);
	p = P("fd00::1/128");
	assert_int_equal(allowedips_insert(&t, &p, &peers[5]), 0);
	assert_ptr_equal(look(&t, "100.96.128.20"), &peers[1]);
	assert_ptr_equal(look(&t, "100.96.128.21"), &peers[2]);
	assert_ptr_equal(look(&t, "100.97.0.1"), &peers[0]);
	assert_ptr_equal(look(&t, "8.8.8.8"), &peers[3]);
	assert_ptr_equal(look(&t, "fd00::1"), &peers[5]);
	assert_ptr_equal(look(&t, "fd00::2"), &peers[4]);
	assert_null(look(&t, "fe80::1"));
	assert_int_equal(t.count, 6);
	/* Host bits are cleared: 100.96.128.77/24 is 100.96.128.0/24, same owner slot. */
	p = P("100.96.128.77/24");
	assert_int_equal(allowedips_insert(&t, &p, &peers[6]), 0);
	assert_ptr_equal(look(&t, "100.96.128.21"), &peers[6]);
	assert_int_equal(t.count, 6);
	/* Removing a peer leaves the others. */
	allowedips_remove_peer(&t, &peers[1]);
	assert_ptr_equal(look(&t, "100.96.128.20"), &peers[6]);
	p = P("100.96.128.0/24");
	assert_int_equal(allowedips_remove(&t, &p, &peers[1]), -1); /* not its owner */
	assert_int_equal(allowedips_remove(&t, &p, &peers[6]), 0);
	assert_ptr_equal(look(&t, "100.96.128.20"), &peers[0]);
	assert_int_equal(t.count, 4);
	allowedips_free(&t);
}

static void collect(const struct prefix *p, void *peer, void *arg)
{
	int *n = arg;

	(void)p;
	(void)peer;
	(*n)++;
}

/* Random prefixes, random look-ups, against a linear search. */
static void test_matches_brute_force(void **ctx)
{
	enum { N = 400, Q = 4000 };
	static struct prefix list[N];
	static void *owner[N];
	struct allowedips t = { 0 };
	unsigned seed = 12345;
	int walked = 0, live = 0;

	(void)ctx;
	for (int i = 0; i < N; i++) {
		struct prefix *p = &list[i];

		memset(p, 0, sizeof *p);
		p->addr.family = AF_INET;
		p->addr.bytes[0] = 10;
		p->addr.bytes[1] = (uint8_t)(rand_r(&seed) % 4);
		p->addr.bytes[2] = (uint8_t)rand_r(&seed);
		p->addr.bytes[3] = (uint8_t)rand_r(&seed);
		p->len = 8 + rand_r(&seed) % 25;
		for (int b = p->len; b < 32; b++)
			p->addr.bytes[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
		owner[i] = &peers[rand_r(&seed) % 8];
		assert_int_equal(allowedips_insert(&t, p, owner[i]), 0);
	}
	for (int q = 0; q < Q; q++) {
		struct addr a = { .family = AF_INET };
		void *want = NULL;
		int best = -1;

		a.bytes[0] = 10;
		a.bytes[1] = (uint8_t)(rand_r(&seed) % 4);
		a.bytes[2] = (uint8_t)rand_r(&seed);
		a.bytes[3] = (uint8_t)rand_r(&seed);
		/* The last insert of an identical prefix wins. */
		for (int i = 0; i < N; i++)
			if (prefix_contains(&list[i], &a) && list[i].len >= best) {
				best = list[i].len;
				want = owner[i];
			}
		assert_ptr_equal(allowedips_lookup(&t, AF_INET, a.bytes), want);
	}
	allowedips_walk(&t, NULL, collect, &walked);
	assert_int_equal((size_t)walked, t.count);
	for (int k = 0; k < 8; k += 2)
		allowedips_remove_peer(&t, &peers[k]);
	allowedips_walk(&t, NULL, collect, &live);
	assert_int_equal((size_t)live, t.count);
	assert_true(live < walked);
	allowedips_free(&t);
}

static void test_replay_window(void **ctx)
{
	struct replay r;
	const uint64_t limit = UINT64_MAX - 8192;

	(void)ctx;
	replay_init(&r);
	assert_true(replay_accept(&r, 0, limit));
	assert_false(replay_accept(&r, 0, limit));
	assert_true(replay_accept(&r, 2, limit));
	assert_true(replay_accept(&r, 1, limit));   /* late but in the window */
	assert_false(replay_accept(&r, 1, limit));
	assert_true(replay_accept(&r, 20000, limit));
	assert_false(replay_accept(&r, 2, limit));  /* fell out of the window */
	assert_true(replay_accept(&r, 20000 - REPLAY_WINDOW, limit));
	assert_false(replay_accept(&r, 20000 - REPLAY_WINDOW - 1, limit));
	assert_true(replay_accept(&r, 19999, limit));
	assert_false(replay_accept(&r, 19999, limit));
	/* A jump far ahead clears everything behind. */
	assert_true(replay_accept(&r, 1000000, limit));
	assert_false(replay_accept(&r, 20000, limit));
	assert_true(replay_accept(&r, 999999, limit));
	/* Counters at the limit are refused (reject after messages). */
	assert_false(replay_accept(&r, limit, limit));
	/* Every counter in a long shuffled run is accepted exactly once. */
	replay_init(&r);
	for (uint64_t base = 0; base < 100000; base += 64)
		for (uint64_t k = 0; k < 64; k++) {
			uint64_t c = base + (k * 37) % 64;

			assert_true(replay_accept(&r, c, limit));
			assert_false(replay_accept(&r, c, limit));
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_longest_prefix_wins),
		cmocka_unit_test(test_matches_brute_force),
		cmocka_unit_test(test_replay_window),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
