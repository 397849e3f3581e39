/* mapd.h: p2p-mapd's parts. map.c reads and checks map.json, alloc.c gives
 * stable addresses to the entities that omit one, query.c answers look-ups,
 * main.c serves mapd.sock. */
#ifndef P2P_MAPD_H
#define P2P_MAPD_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"

#define MAP_FILE_MAX (64u << 20)
#define MAP_ERRORS_MAX 50
/* Bytes of JSON one entity may take (its IPC line must stay under 64 KiB). */
#define MAP_ENTITY_MAX 60000

/* Every problem found in a map, each "PATH: what is wrong". */
struct map_errors {
	char *msg[MAP_ERRORS_MAX];
	int count;      /* how many were found; only MAP_ERRORS_MAX are kept */
};

void map_errors_add(struct map_errors *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void map_errors_clear(struct map_errors *e);

/* Entity kinds, in the order the map lists them. */
enum entity_kind { ENT_DNS, ENT_CONTROL, ENT_CONNECTOR, ENT_CLIENT, ENT_RESOURCE, ENT_NKINDS };

extern const char *const entity_kind_name[ENT_NKINDS];

/* A loaded, checked map. DOC is what clients see: the input with every
 * address filled in. */
struct map {
	json_int_t version;
	struct prefix overlay;
	int ttl;            /* of look-up answers, seconds */
	json_t *doc;
	json_t *zones;      /* array of lower-case zone names */
	json_t *names;      /* lower-case exact name -> resource name */
	json_t *wildcards;  /* lower-case suffix of "*.suffix" -> resource name */
	json_t *addrs;      /* address text -> {"kind":..,"name":..} */
	size_t count[ENT_NKINDS];
};

/* One entity that needs an address: its allocation key ("resource/vault"),
 * the JSON path of its "addr", the object to fill in, and the address the
 * map gave explicitly, if any. */
struct alloc_request {
	enum entity_kind kind;
	char key[160];
	char path[4400];   /* "FILE: .section.name.addr", for messages */
	json_t *obj;
	int explicit_addr;  /* the map gave ADDR */
	int placed;         /* ADDR kept from the allocation state */
	struct addr addr;
};

/* The persisted allocation state (mapd-alloc.json). */
struct alloc_state {
	json_t *doc;       /* {"version":1,"addresses":{key:{"addr":..,["released_until":T]}}} */
};

int alloc_state_load(struct alloc_state *st, const char *path, struct map_errors *errs);
int alloc_state_save(const struct alloc_state *st, const char *path);
void alloc_state_free(struct alloc_state *st);
int alloc_state_copy(struct alloc_state *dst, const struct alloc_state *src);
/* Give every request an address (explicit ones checked, the others kept
 * from ST or newly chosen), then record them in ST: entities no longer in
 * the map keep their address reserved for GRACE seconds. Returns the number
 * of changes made to ST, or -1 with the reasons in ERRS. */
int alloc_assign(struct alloc_state *st, const struct prefix *overlay,
		 struct alloc_request *reqs, size_t nreqs, time_t now,
		 long grace, struct map_errors *errs);

/* Parse and check TEXT (the content of FILE, named in messages). ST is the
 * allocation state to use and update (pass a copy when the result may be
 * refused). Returns NULL with the reasons in ERRS. */
struct map *map_load(const char *file, const char *text, size_t len,
		     struct alloc_state *st, time_t now, long grace,
		     struct map_errors *errs);
void map_free(struct map *m);

/* Look-ups. NAME in any case, with or without its trailing dot. */
const char *map_lookup(const struct map *m, const char *name, const char **zone);
json_t *map_reverse(const struct map *m, const struct addr *a);
/* Normalise NAME into OUT (lower case, no trailing dot); -1 if not a name. */
int dns_name_normalise(char *out, size_t size, const char *name);
/* The private zone that holds NAME (normalised), or NULL. */
const char *map_zone_of(const struct map *m, const char *name);

/* The map as change lines: every entity as {"kind","name","value"}. */
json_t *map_entities(const struct map *m);
json_t *map_settings(const struct map *m);

#endif
