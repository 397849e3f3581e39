/* query.c: answers from a loaded map. Exact names win over wildcards, and
 * the most specific wildcard over the others. */
#include "mapd.h"

#include <ctype.h>
#include <string.h>

const char *map_lookup(const struct map *m, const char *name, const char **zone)
{
	char norm[256];
	json_t *hit;
	const char *p;

	size_t n = strlen(name);

	/* The zone first, from the name as it is (lower case, one trailing
	 * dot off): a name with odd characters inside a private zone is
	 * still private, and must never be sent elsewhere. */
	*zone = NULL;
	if (n && name[n - 1] == '.')
		n--;
	if (n == 0 || n >= sizeof norm)
		return NULL;
	for (size_t i = 0; i < n; i++)
		norm[i] = (char)tolower((unsigned char)name[i]);
	norm[n] = '\0';
	*zone = map_zone_of(m, norm);
	if (!*zone || strchr(norm, '*') || dns_name_normalise(norm, sizeof norm, norm) < 0)
		return NULL;
	hit = json_object_get(m->names, norm);
	if (hit)
		return json_string_value(hit);
	/* "*.apps.example.internal" covers every name below apps.example.internal. */
	for (p = strchr(norm, '.'); p; p = strchr(p + 1, '.')) {
		hit = json_object_get(m->wildcards, p + 1);
		if (hit)
			return json_string_value(hit);
	}
	return NULL;
}

json_t *map_reverse(const struct map *m, const struct addr *a)
{
	char text[ADDR_STRLEN];
	json_t *who = json_object_get(m->addrs, addr_str(a, text)), *out, *entity;
	const char *kind, *name;

	if (!who)
		return NULL;
	out = json_deep_copy(who);
	kind = json_string_value(json_object_get(who, "kind"));
	name = json_string_value(json_object_get(who, "name"));
	if (strcmp(kind, "resource") == 0) {
		entity = json_object_get(json_object_get(m->doc, "resources"), name);
		json_object_set(out, "names", json_object_get(entity, "names"));
	} else if (strcmp(kind, "client") == 0) {
		entity = json_object_get(json_object_get(m->doc, "clients"), name);
		if (json_object_get(entity, "user"))
			json_object_set(out, "user", json_object_get(entity, "user"));
		if (json_object_get(entity, "groups"))
			json_object_set(out, "groups", json_object_get(entity, "groups"));
		json_object_set(out, "key", json_object_get(entity, "key"));
	} else if (strcmp(kind, "connector") == 0) {
		entity = json_object_get(json_object_get(m->doc, "connectors"), name);
		json_object_set(out, "key", json_object_get(entity, "key"));
	}
	return out;
}

json_t *map_settings(const struct map *m)
{
	return json_pack("{s:O,s:O}", "overlay", json_object_get(m->doc, "overlay"),
			 "dns", json_object_get(m->doc, "dns"));
}

static void add_entity(json_t *list, const char *kind, const char *name, json_t *value)
{
	json_array_append_new(list, json_pack("{s:s,s:s,s:O}", "kind", kind, "name", name,
					      "value", value));
}

json_t *map_entities(const struct map *m)
{
	static const struct { const char *section, *kind; } sections[] = {
		{ "connectors", "connector" },
		{ "clients", "client" },
		{ "resources", "resource" },
	};
	json_t *list = json_array(), *control = json_object_get(m->doc, "control"), *v;
	const char *name;

	if (control)
		add_entity(list, "control", "control", control);
	for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
		json_object_foreach(json_object_get(m->doc, sections[i].section), name, v)
			add_entity(list, sections[i].kind, name, v);
	return list;
}
