/* fuzz: p2p-mapd */
/* fuzz-alloc-state.c: the input as mapd-alloc.json, read by
 * alloc_state_load() (through a memfd, so no file is written per run). A
 * state that loads is then used to load a fixed map, as p2p-mapd does at
 * start: whatever the state says, the map is either refused with a reason or
 * loaded with every entity at a distinct address inside the overlay, and a
 * second load against the state the first left gives the same addresses. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mapd.h"

#define NOW ((time_t)1700000000)
#define GRACE 86400L

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The keys match the example map's entities ("resource/vault", ...), so the
 * state's records meet them. Two addresses are explicit, the rest allocated;
 * a /26 overlay keeps the pools small enough to fill. */
static const char map_text[] =
	"{\"version\":1,\"overlay\":\"100.96.0.0/26\","
	"\"dns\":{\"zones\":[\"example.internal\"]},"
	"\"control\":{\"key\":\"IXa2w3cvIIylob3mbYgV/GjVUa7rPatkN40xsoijSSI=\",\"addr\":\"100.96.0.1\"},"
	"\"connectors\":{"
	"\"ny\":{\"key\":\"M88tNfFb2kZ9ZQQPVAOTW4v9Bql4Ul0HdlAsdr9SYiI=\"},"
	"\"ldn\":{\"key\":\"qDFXQfj1NQoeY3st0LqzuFpsmm+E8vGR7i5e3lyz4j8=\"}},"
	"\"clients\":{\"alice-laptop\":{\"key\":\"KFNiqKKdSaH+NJHW8p3aRzpuk5ZZp12vSgqADiqku2Y=\"}},"
	"\"resources\":{"
	"\"vault\":{\"names\":[\"vault.example.internal\"],\"addr\":\"100.96.0.40\","
	"\"connectors\":[\"ny\"],\"upstream\":\"http://10.0.10.15:8080\"},"
	"\"apps\":{\"names\":[\"*.apps.example.internal\"],\"connectors\":[\"ny\",\"ldn\"],"
	"\"upstream\":\"http://10.0.10.15:8081\"},"
	"\"git-ssh\":{\"names\":[\"git.example.internal\"],\"connectors\":[\"ldn\"],"
	"\"kind\":\"tcp\",\"upstream\":\"10.0.10.20:22\",\"ports\":[22]}}}";

static int memfd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	json_object_seed(1);
	memfd = memfd_create("mapd-alloc.json", 0);
	if (memfd < 0) {
		perror("memfd_create");
		abort();
	}
	snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
	return 0;
}

static void check_addresses(const struct map *m)
{
	const char *key;
	json_t *who;
	size_t n = 0;

	json_object_foreach(m->addrs, key, who) {
		struct addr a;

		if (addr_parse(key, &a) < 0 || !prefix_contains(&m->overlay, &a)) {
			fprintf(stderr, "address %s outside the overlay\n", key);
			abort();
		}
		n++;
	}
	/* dns, control, 2 connectors, 1 client, 3 resources: one address each. */
	if (n != 8) {
		fprintf(stderr, "%zu distinct addresses for 8 entities\n", n);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct alloc_state st;
	struct map_errors errs = { 0 };
	struct map *m, *again;
	json_t *state1;

	if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data, size, 0) != (ssize_t)size)
		abort();
	if (alloc_state_load(&st, path, &errs) < 0) {
		if (errs.count == 0 || st.doc) {
			fprintf(stderr, "state refused without a reason\n");
			abort();
		}
		map_errors_clear(&errs);
		return 0;
	}
	m = map_load("map.json", map_text, sizeof map_text - 1, &st, NOW, GRACE, &errs);
	if (!m) {
		if (errs.count == 0)
			abort();
		map_errors_clear(&errs);
		alloc_state_free(&st);
		return 0;
	}
	check_addresses(m);
	state1 = json_deep_copy(st.doc);
	again = map_load("map.json", map_text, sizeof map_text - 1, &st, NOW, GRACE, &errs);
	if (!again || !json_equal(again->doc, m->doc) || !json_equal(st.doc, state1)) {
		fprintf(stderr, "the same map loaded twice gave different addresses%s%s\n",
			errs.count ? ": " : "", errs.count ? errs.msg[0] : "");
		abort();
	}
	map_free(again);
	map_free(m);
	json_decref(state1);
	map_errors_clear(&errs);
	alloc_state_free(&st);
	return 0;
}
