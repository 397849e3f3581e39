/* test: p2p-mapd */
/* test-map.c: p2p-mapd's map loading, allocation and look-ups in-process.
 * The daemon-level behaviour (socket, reload, restart) is in tests/sh/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapd.h"

#define KEY1 "xsaCT/LgwJlH9DiBvrMYk1883giKn1EpnZiblcLcvn8="
#define KEY2 "Bh2ff53VWnyjuHcO2xm7xo+P4u+PP2mIrEDgqxyLEAg="
#define KEY3 "vGyzgcvGhczVLxRSp0/K4nAjQOnPfx6b+wji9uMydE4="

static const time_t T0 = 1790000000;

static void fresh_state(struct alloc_state *st)
{
	st->doc = json_pack("{s:i,s:{}}", "version", 1, "addresses");
	assert_non_null(st->doc);
}

/* A map with connector ny and the resources named in RES ("a,b,c"), each
 * without an address, inside OVERLAY. */
static char *map_text(int version, const char *overlay, const char *res, const char *extra)
{
	static char buf[16384];
	char list[12000] = "", *names = strdup(res), *tok, *save = NULL;
	int first = 1;

	for (tok = strtok_r(names, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char one[256];

		snprintf(one, sizeof one,
			 "%s\"%s\":{\"names\":[\"%s.example.internal\"],\"connectors\":[\"ny\"],"
			 "\"upstream\":\"http://10.0.0.1:80\"}", first ? "" : ",", tok, tok);
		strcat(list, one);
		first = 0;
	}
	free(names);
	snprintf(buf, sizeof buf,
		 "{\"version\":%d,\"overlay\":\"%s\",\"dns\":{\"zones\":[\"example.internal\"]},"
		 "\"connectors\":{\"ny\":{\"key\":\"" KEY1 "\"}},"
		 "\"resources\":{%s}%s}", version, overlay, list, extra ? extra : "");
	return buf;
}

static struct map *load(const char *text, struct alloc_state *st, time_t now, long grace,
			struct map_errors *errs)
{
	return map_load("map.json", text, strlen(text), st, now, grace, errs);
}

static const char *addr_of(const struct map *m, const char *section, const char *name)
{
	return json_string_value(json_object_get(
		json_object_get(json_object_get(m->doc, section), name), "addr"));
}

static int errors_mention(const struct map_errors *e, const char *what)
{
	for (int i = 0; i < e->count && i < MAP_ERRORS_MAX; i++)
		if (strstr(e->msg[i], what))
			return 1;
	return 0;
}

static void test_example_map_loads(void **ctx)
{
	struct alloc_state st;
	struct map_errors errs = { 0 };
	char *text;
	size_t len;
	FILE *f = fopen("etc/p2p/map.json", "r");
	struct map *m;
	struct addr a;
	struct prefix overlay;

	(void)ctx;
	if (!f) {
		char path[4096];

		snprintf(path, sizeof path, "%s/etc/p2p/map.json", getenv("P2P_TOP") ? getenv("P2P_TOP") : ".");
		f = fopen(path, "r");
	}
	assert_non_null(f);
	text = malloc(1 << 20);
	len = fread(text, 1, 1 << 20, f);
	fclose(f);
	fresh_state(&st);
	m = map_load("map.json", text, len, &st, T0, 86400, &errs);
	if (!m)
		fail_msg("%s", errs.count ? errs.msg[0] : "?");
	assert_string_equal(addr_of(m, "resources", "vault"), "100.96.128.20");
	prefix_parse("100.96.0.0/12", &overlay, 0, 0);
	/* Every entity got an address inside the overlay. */
	assert_int_equal(addr_parse(addr_of(m, "connectors", "ny"), &a), 0);
	assert_true(prefix_contains(&overlay, &a));
	assert_int_equal(addr_parse(addr_of(m, "resources", "apps"), &a), 0);
	assert_true(prefix_contains(&overlay, &a));
	/* Resources come from the upper half of the overlay. */
	assert_true(a.bytes[1] >= 104);
	map_free(m);
	alloc_state_free(&st);
	free(text);
}

static void test_same_map_same_addresses_on_a_fresh_host(void **ctx)
{
	struct alloc_state s1, s2;
	struct map_errors errs = { 0 };
	struct map *a, *b;

	(void)ctx;
	fresh_state(&s1);
	fresh_state(&s2);
	a = load(map_text(1, "100.96.0.0/12", "web,db,wiki", NULL), &s1, T0, 60, &errs);
	b = load(map_text(1, "100.96.0.0/12", "wiki,db,web", NULL), &s2, T0, 60, &errs);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(addr_of(a, "resources", "web"), addr_of(b, "resources", "web"));
	assert_string_equal(addr_of(a, "resources", "wiki"), addr_of(b, "resources", "wiki"));
	assert_string_not_equal(addr_of(a, "resources", "web"), addr_of(a, "resources", "db"));
	map_free(a);
	map_free(b);
	alloc_state_free(&s1);
	alloc_state_free(&s2);
}

static void test_addresses_stable_across_edits(void **ctx)
{
	struct alloc_state st;
	struct map_errors errs = { 0 };
	struct map *a, *b;
	char web[ADDR_STRLEN], wiki[ADDR_STRLEN];

	(void)ctx;
	fresh_state(&st);
	a = load(map_text(1, "100.96.0.0/12", "web,db,wiki", NULL), &st, T0, 60, &errs);
	assert_non_null(a);
	strcpy(web, addr_of(a, "resources", "web"));
	strcpy(wiki, addr_of(a, "resources", "wiki"));
	/* Remove db, add four others: web and wiki keep theirs. */
	b = load(map_text(2, "100.96.0.0/12", "n1,wiki,n2,web,n3,n4", NULL), &st, T0 + 1, 60, &errs);
	assert_non_null(b);
	assert_string_equal(addr_of(b, "resources", "web"), web);
	assert_string_equal(addr_of(b, "resources", "wiki"), wiki);
	map_free(a);
	map_free(b);
	alloc_state_free(&st);
}

/* A /29 has six usable addresses: with connector ny, dns and four
 * resources it is full, so a newcomer can only get a released one. */
static void test_released_address_reserved_for_grace(void **ctx)
{
	struct alloc_state st;
	struct map_errors errs = { 0 };
	struct map *m;
	char d_addr[ADDR_STRLEN];

	(void)ctx;
	fresh_state(&st);
	m = load(map_text(1, "100.96.0.0/29", "a,b,c,d", NULL), &st, T0, 60, &errs);
	assert_non_null(m);
	strcpy(d_addr, addr_of(m, "resources", "d"));
	map_free(m);
	/* d leaves, e arrives within the grace period: no address for e. */
	m = load(map_text(2, "100.96.0.0/29", "a,b,c,e", NULL), &st, T0 + 10, 60, &errs);
	assert_null(m);
	assert_true(errors_mention(&errs, ".resources.e.addr: no free address left"));
	map_errors_clear(&errs);
	/* d may come back, and gets its own address again. */
	m = load(map_text(2, "100.96.0.0/29", "a,b,c,d", NULL), &st, T0 + 20, 60, &errs);
	assert_non_null(m);
	assert_string_equal(addr_of(m, "resources", "d"), d_addr);
	map_free(m);
	/* d leaves for good; after the grace period e may have the address. */
	m = load(map_text(3, "100.96.0.0/29", "a,b,c", NULL), &st, T0 + 30, 60, &errs);
	assert_non_null(m);
	map_free(m);
	m = load(map_text(4, "100.96.0.0/29", "a,b,c,e", NULL), &st, T0 + 30 + 61, 60, &errs);
	assert_non_null(m);
	assert_string_equal(addr_of(m, "resources", "e"), d_addr);
	map_free(m);
	alloc_state_free(&st);
}

static void test_explicit_address_may_not_take_a_live_one(void **ctx)
{
	struct alloc_state st;
	struct map_errors errs = { 0 };
	struct map *m;
	char extra[512], web[ADDR_STRLEN];

	(void)ctx;
	fresh_state(&st);
	m = load(map_text(1, "100.96.0.0/12", "web", NULL), &st, T0, 60, &errs);
	assert_non_null(m);
	strcpy(web, addr_of(m, "resources", "web"));
	map_free(m);
	snprintf(extra, sizeof extra, ",\"clients\":{\"pc\":{\"key\":\"" KEY2 "\",\"addr\":\"%s\"}}", web);
	m = load(map_text(2, "100.96.0.0/12", "web", extra), &st, T0, 60, &errs);
	assert_null(m);
	assert_true(errors_mention(&errs, ".clients.pc.addr: "));
	assert_true(errors_mention(&errs, "allocated address of resource/web"));
	map_errors_clear(&errs);
	alloc_state_free(&st);
}

static void test_refused_map_leaves_state_alone(void **ctx)
{
	struct alloc_state st;
	struct map_errors errs = { 0 };
	struct map *m;
	char *before, *after;

	(void)ctx;
	fresh_state(&st);
	m = load(map_text(1, "100.96.0.0/12", "web", NULL), &st, T0, 60, &errs);
	assert_non_null(m);
	map_free(m);
	before = json_dumps(st.doc, JSON_SORT_KEYS);
	/* A new resource plus an error elsewhere: nothing may be allocated. */
	m = load(map_text(2, "100.96.0.0/12", "web,other", ",\"bogus\":1"), &st, T0, 60, &errs);
	assert_null(m);
	assert_true(errors_mention(&errs, "unknown member \"bogus\""));
	after = json_dumps(st.doc, JSON_SORT_KEYS);
	assert_string_equal(before, after);
	free(before);
	free(after);
	map_errors_clear(&errs);
	alloc_state_free(&st);
}

static void test_lookup_rules(void **ctx)
{
	struct alloc_state st;
	struct map_errors errs = { 0 };
	const char *zone;
	struct map *m;
	const char *text =
		"{\"version\":1,\"dns\":{\"zones\":[\"example.internal\"]},"
		"\"connectors\":{\"ny\":{\"key\":\"" KEY1 "\"}},"
		"\"resources\":{"
		"\"apps\":{\"names\":[\"*.apps.example.internal\"],\"connectors\":[\"ny\"],\"upstream\":\"http://a\"},"
		"\"deep\":{\"names\":[\"*.x.apps.example.internal\"],\"connectors\":[\"ny\"],\"upstream\":\"http://a\"},"
		"\"one\":{\"names\":[\"one.apps.example.internal\",\"Vault.Example.Internal\"],\"connectors\":[\"ny\"],\"upstream\":\"http://a\"}}}";

	(void)ctx;
	fresh_state(&st);
	m = load(text, &st, T0, 60, &errs);
	if (!m)
		fail_msg("%s", errs.msg[0]);
	assert_string_equal(map_lookup(m, "VAULT.example.internal.", &zone), "one");
	assert_string_equal(zone, "example.internal");
	assert_string_equal(map_lookup(m, "one.apps.example.internal", &zone), "one");
	assert_string_equal(map_lookup(m, "two.apps.example.internal", &zone), "apps");
	assert_string_equal(map_lookup(m, "a.b.apps.example.internal", &zone), "apps");
	assert_string_equal(map_lookup(m, "y.x.apps.example.internal", &zone), "deep");
	/* The wildcard covers names below it, not its own owner name. */
	assert_null(map_lookup(m, "apps.example.internal", &zone));
	assert_string_equal(zone, "example.internal");
	assert_null(map_lookup(m, "www.example.com", &zone));
	assert_null(zone);
	assert_null(map_lookup(m, "*.apps.example.internal", &zone));
	assert_null(map_lookup(m, "bad..name.example.internal", &zone));
	map_free(m);
	alloc_state_free(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_map_loads),
		cmocka_unit_test(test_same_map_same_addresses_on_a_fresh_host),
		cmocka_unit_test(test_addresses_stable_across_edits),
		cmocka_unit_test(test_released_address_reserved_for_grace),
		cmocka_unit_test(test_explicit_address_may_not_take_a_live_one),
		cmocka_unit_test(test_refused_map_leaves_state_alone),
		cmocka_unit_test(test_lookup_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
