/* test: p2p-tunnel */
/* test-tunnel-staged.c: packets kept for a peer until it has a session
 * (peer_stage, peer_flush_staged). Flushing while the session is still
 * not there (a keepalive timer that fires between handshake attempts, a
 * key not set yet) stages each packet again: it must be kept whole, as it
 * was, and freed once, not freed under the array that holds it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "device.h"

static void test_flush_without_a_session_keeps_them(void **ctx)
{
	static struct device dev;   /* no private key: no handshake goes */
	uint8_t pub[WG_KEY_LEN] = { 9 }, pkt[3][40];
	struct peer *p;

	(void)ctx;
	memset(&dev, 0, sizeof dev);
	p = peer_create(&dev, pub);
	assert_non_null(p);
	for (int i = 0; i < 3; i++) {
		memset(pkt[i], 'a' + i, sizeof pkt[i]);
		peer_stage(p, pkt[i], sizeof pkt[i] - (size_t)i);
	}
	peer_flush_staged(p);   /* no session: each is staged again */
	assert_int_equal(p->nstaged, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(p->staged[i].len, sizeof pkt[i] - i);
		assert_memory_equal(p->staged[i].data, pkt[i], p->staged[i].len);
	}
	peer_flush_staged(p);   /* and again: the same three, each freed once */
	assert_int_equal(p->nstaged, 3);
	assert_memory_equal(p->staged[2].data, pkt[2], p->staged[2].len);
	peer_clear_staged(p);
	assert_int_equal(p->nstaged, 0);
	peer_remove(&dev, p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flush_without_a_session_keeps_them),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
