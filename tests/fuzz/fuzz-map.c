/* fuzz: p2p-mapd */
/* fuzz-map.c: map.json text into map_load(), with a fresh empty allocation
 * state. A map that loads is then queried (every name, every address, the
 * entity dump) and loaded a second time against the state the first load
 * left: the same text must give the same addresses, or addresses would move
 * on every restart. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapd.h"

#define NOW ((time_t)1700000000)
#define GRACE 86400L

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	json_object_seed(1); /* the same input takes the same path every run */
	return 0;
}

static void query_everything(const struct map *m)
{
	const char *key, *zone;
	json_t *v, *list;
	size_t i;

	/* Every name the map declares answers with its own resource. */
	json_object_foreach(m->names, key, v) {
		const char *res = map_lookup(m, key, &zone);

		if (!res || strcmp(res, json_string_value(v)) != 0 || !zone) {
			fprintf(stderr, "lookup %s: %s, want %s\n", key, res ? res : "nothing",
				json_string_value(v));
			abort();
		}
	}
	json_object_foreach(m->wildcards, key, v) {
		char below[300];

		snprintf(below, sizeof below, "x.%s.", key);
		if (strlen(below) <= 254 && !map_lookup(m, below, &zone)) {
			fprintf(stderr, "lookup %s: nothing, want %s\n", below, json_string_value(v));
			abort();
		}
	}
	/* Every address reverses to an entity. */
	json_object_foreach(m->addrs, key, v) {
		struct addr a;
		json_t *who;

		if (addr_parse(key, &a) < 0 || !(who = map_reverse(m, &a))) {
			fprintf(stderr, "reverse %s: nothing\n", key);
			abort();
		}
		json_decref(who);
	}
	list = map_entities(m);
	json_array_foreach(list, i, v) {
		char *text = json_dumps(v, JSON_COMPACT);

		free(text);
	}
	json_decref(list);
	json_decref(map_settings(m));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct alloc_state st = { .doc = json_pack("{s:i,s:{}}", "version", 1, "addresses") };
	struct map_errors errs = { 0 };
	struct map *m, *again;
	json_t *state1;

	if (!st.doc)
		abort();
	m = map_load("map.json", (const char *)data, size, &st, NOW, GRACE, &errs);
	if (!m) {
		if (errs.count == 0) {
			fprintf(stderr, "map refused without a reason\n");
			abort();
		}
		map_errors_clear(&errs);
		alloc_state_free(&st);
		return 0;
	}
	if (errs.count != 0) {
		fprintf(stderr, "map loaded with %d errors\n", errs.count);
		abort();
	}
	query_everything(m);

	state1 = json_deep_copy(st.doc);
	again = map_load("map.json", (const char *)data, size, &st, NOW, GRACE, &errs);
	if (!again || !json_equal(again->doc, m->doc) || !json_equal(st.doc, state1)) {
		fprintf(stderr, "the same map loaded twice gave different addresses%s%s\n",
			errs.count ? ": " : "", errs.count ? errs.msg[0] : "");
		abort();
	}
	map_free(again);
	json_decref(state1);
	map_free(m);
	map_errors_clear(&errs);
	alloc_state_free(&st);
	return 0;
}
