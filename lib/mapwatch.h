/* mapwatch.h: follow p2p-mapd's "watch" stream from an event loop: the
 * map's entities kept current, a callback at every complete version, and
 * reconnection (keeping the last map) when p2p-mapd goes away. Used by
 * every daemon that acts on the map. */
#ifndef P2P_MAPWATCH_H
#define P2P_MAPWATCH_H

#include <jansson.h>

#include "loop.h"

struct mapwatch;

/* Called once the stream has delivered a whole version of the map. */
typedef void mapwatch_fn(struct mapwatch *w, void *arg);

/* Start following SOCK_PATH (connecting now or, while it is missing,
 * every second). NULL with errno on a system error. */
struct mapwatch *mapwatch_new(struct loop *loop, const char *sock_path, mapwatch_fn *on_map,
			      void *arg);
void mapwatch_free(struct mapwatch *w);

json_int_t mapwatch_version(const struct mapwatch *w);
/* {"overlay":..,"dns":{..}} of the current version (borrowed). */
json_t *mapwatch_settings(const struct mapwatch *w);
/* The entity KIND/NAME ("control"'s name is "control"), borrowed, or NULL. */
json_t *mapwatch_get(const struct mapwatch *w, const char *kind, const char *name);
/* Every entity of KIND as a new object NAME -> value (caller decrefs). */
json_t *mapwatch_section(const struct mapwatch *w, const char *kind);
/* Whether a whole map has arrived at least once. */
int mapwatch_ready(const struct mapwatch *w);

#endif
