/* mapfollow.c: the map decides the tunnel. On a connector its peers are the
 * clients (each with its /32) and the control plane, and the addresses of
 * the resources it serves are local on the interface. On a client its
 * peers are the connectors (each with its /32, plus the resources placed on
 * it) and the control plane; its own address and the overlay DNS address
 * are on the interface, and the overlay prefix is routed to it.
 *
 * A resource is placed on the first connector the map lists for it, once:
 * p2p-probe moves resources between connectors through the UAPI, and a map
 * change moves only resources that are new or whose connector went away.
 * The device's AllowedIPs are the record of the placement. */
#include "mapfollow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel.h"
#include "key.h"
#include "log.h"
#include "mapwatch.h"
#include "tun.h"

#define CLIENT_KEEPALIVE 25

static struct {
	struct device *dev;
	const char *host;
	void (*on_first)(void);
	struct mapwatch *watch;
	json_t *addrs;        /* prefixes we put on the interface */
	json_t *routes;
	json_t *endpoints;    /* peer base64 key -> the endpoint the map gave */
	int applied_once;
} mf;

static json_t *section(const char *kind)
{
	return mapwatch_section(mf.watch, kind);
}

static int host_prefix(const char *addr, struct prefix *p)
{
	if (!addr || addr_parse(addr, &p->addr) < 0)
		return -1;
	p->len = addr_bits(&p->addr);
	return 0;
}

static void want_allowed(json_t *peers, const char *key, const char *addr)
{
	json_t *peer = json_object_get(peers, key);

	if (peer && addr)
		json_array_append_new(json_object_get(peer, "allowed"), json_string(addr));
}

static void want_peer(json_t *peers, json_t *entity, const char *endpoint, int keepalive)
{
	const char *key = json_string_value(json_object_get(entity, "key"));

	if (!key)
		return;
	json_object_set_new(peers, key, json_pack("{s:[s],s:s?,s:i}", "allowed",
		json_string_value(json_object_get(entity, "addr")), "endpoint", endpoint,
		"keepalive", keepalive));
}

/* The first endpoint of an entity that is an address literal: host names
 * would need DNS, which a tunnel daemon must not wait on. */
static const char *literal_endpoint(json_t *entity)
{
	json_t *list = json_object_get(entity, "endpoints"), *one = json_object_get(entity, "endpoint");
	size_t i;
	json_t *e;
	struct addr a;
	uint16_t port;

	if (json_is_string(one) && endpoint_parse(json_string_value(one), &a, &port) == 0)
		return json_string_value(one);
	json_array_foreach(list, i, e)
		if (json_is_string(e) && endpoint_parse(json_string_value(e), &a, &port) == 0)
			return json_string_value(e);
	return NULL;
}

/* The connector a resource sits on now: the one whose peer owns its
 * address, if the map still lists it for the resource. */
static const char *current_placement(json_t *res, json_t *connectors)
{
	struct prefix p;
	struct peer *owner;
	size_t i;
	json_t *c;

	if (host_prefix(json_string_value(json_object_get(res, "addr")), &p) < 0)
		return NULL;
	owner = allowedips_lookup(&mf.dev->aips, p.addr.family, p.addr.bytes);
	if (!owner)
		return NULL;
	json_array_foreach(json_object_get(res, "connectors"), i, c) {
		json_t *conn = json_object_get(connectors, json_string_value(c));
		uint8_t key[KEY_LEN];

		if (conn && key_from_base64(key, json_string_value(json_object_get(conn, "key"))) == 0 &&
		    !memcmp(key, owner->remote.pub, KEY_LEN))
			return json_string_value(c);
	}
	return NULL;
}

static const char *first_existing(json_t *res, json_t *connectors)
{
	size_t i;
	json_t *c;

	json_array_foreach(json_object_get(res, "connectors"), i, c)
		if (json_object_get(connectors, json_string_value(c)))
			return json_string_value(c);
	return NULL;
}

/* What the map asks of this host: peers (base64 key -> allowed, endpoint,
 * keepalive), local addresses and routes. */
static int desired(json_t **peers_out, json_t **addrs_out, json_t **routes_out,
		   const char **role_out, json_t **self_out)
{
	json_t *connectors = section("connector"), *clients = section("client");
	json_t *resources = section("resource"), *control = mapwatch_get(mf.watch, "control", "control");
	json_t *peers = json_object(), *addrs = json_array(), *routes = json_array();
	json_t *self, *v, *settings = mapwatch_settings(mf.watch);
	json_t *dns = json_object_get(settings, "dns");
	const char *role = NULL, *name;

	if ((self = json_object_get(connectors, mf.host)))
		role = "connector";
	else if ((self = json_object_get(clients, mf.host)))
		role = "client";
	else if (!strcmp(mf.host, "control") && (self = control))
		role = "control";
	if (!role) {
		json_decref(connectors);
		json_decref(clients);
		json_decref(resources);
		json_decref(peers);
		json_decref(addrs);
		json_decref(routes);
		return -1;
	}
	json_array_append(addrs, json_object_get(self, "addr"));
	json_array_append(routes, json_object_get(settings, "overlay"));
	if (control && strcmp(role, "control"))
		want_peer(peers, control, literal_endpoint(control), 0);
	if (!strcmp(role, "connector") || !strcmp(role, "control"))
		json_object_foreach(clients, name, v)
			want_peer(peers, v, NULL, 0);
	if (!strcmp(role, "client") || !strcmp(role, "control"))
		json_object_foreach(connectors, name, v)
			want_peer(peers, v, literal_endpoint(v),
				  !strcmp(role, "client") ? CLIENT_KEEPALIVE : 0);
	if (!strcmp(role, "client") && json_object_get(dns, "addr"))
		json_array_append(addrs, json_object_get(dns, "addr"));
	json_object_foreach(resources, name, v) {
		const char *on;
		size_t i;
		json_t *c;

		if (!strcmp(role, "connector")) {
			json_array_foreach(json_object_get(v, "connectors"), i, c)
				if (!strcmp(json_string_value(c), mf.host))
					json_array_append(addrs, json_object_get(v, "addr"));
		} else if (!strcmp(role, "client")) {
			on = current_placement(v, connectors);
			if (!on)
				on = first_existing(v, connectors);
			if (on)
				want_allowed(peers, json_string_value(json_object_get(
					json_object_get(connectors, on), "key")),
					json_string_value(json_object_get(v, "addr")));
		}
	}
	*peers_out = peers;
	*addrs_out = addrs;
	*routes_out = routes;
	*role_out = role;
	*self_out = self;
	json_decref(connectors);
	json_decref(clients);
	json_decref(resources);
	return 0;
}

static void collect_prefix(const struct prefix *p, void *peer, void *arg)
{
	char text[PREFIX_STRLEN];

	(void)peer;
	json_object_set_new(arg, prefix_str(p, text), json_true());
}

/* Make PEER's AllowedIPs exactly WANT, touching only the differences, so
 * traffic to the prefixes that stay is never interrupted. */
static void sync_allowed(struct peer *peer, json_t *want)
{
	json_t *have = json_object(), *wantset = json_object(), *v;
	const char *text;
	size_t i;
	struct prefix p;

	allowedips_walk(&mf.dev->aips, peer, collect_prefix, have);
	json_array_foreach(want, i, v) {
		char norm[PREFIX_STRLEN];

		if (host_prefix(json_string_value(v), &p) == 0)
			json_object_set_new(wantset, prefix_str(&p, norm), json_true());
	}
	json_object_foreach(have, text, v)
		if (!json_object_get(wantset, text) && prefix_parse(text, &p, 0, 0) == 0)
			allowedips_remove(&mf.dev->aips, &p, peer);
	json_object_foreach(wantset, text, v)
		if (!json_object_get(have, text) && prefix_parse(text, &p, 0, 0) == 0)
			allowedips_insert(&mf.dev->aips, &p, peer);
	json_decref(have);
	json_decref(wantset);
}

static void apply_peers(json_t *peers)
{
	struct device *dev = mf.dev;
	struct peer *p, *next;
	const char *b64;
	json_t *want;

	/* Peers the map no longer names go, with their sessions. */
	for (p = dev->peers; p; p = next) {
		char key[KEY_B64_LEN + 1];

		next = p->next;
		key_to_base64(key, p->remote.pub);
		if (!json_object_get(peers, key)) {
			json_object_del(mf.endpoints, key);
			peer_remove(dev, p);
		}
	}
	json_object_foreach(peers, b64, want) {
		uint8_t key[KEY_LEN];
		const char *ep = json_string_value(json_object_get(want, "endpoint"));
		json_t *given = json_object_get(mf.endpoints, b64);
		int keepalive = (int)json_integer_value(json_object_get(want, "keepalive"));

		if (key_from_base64(key, b64) < 0)
			continue;
		if (dev->local.has_key && !memcmp(key, dev->local.pub, KEY_LEN))
			continue;
		p = peer_find(dev, key);
		if (!p && !(p = peer_create(dev, key))) {
			log_error("out of memory adding a peer");
			continue;
		}
		/* The map's endpoint is set when it changes; roaming may move
		 * the peer in between, as WireGuard intends. */
		if (ep && (!given || strcmp(json_string_value(given), ep))) {
			if (endpoint_from_string(&p->endpoint, ep) == 0) {
				p->has_endpoint = 1;
				json_object_set_new(mf.endpoints, b64, json_string(ep));
			}
		}
		if (p->persistent_keepalive != keepalive) {
			p->persistent_keepalive = (uint16_t)keepalive;
			timers_persistent_keepalive_changed(p);
		}
		sync_allowed(p, json_object_get(want, "allowed"));
	}
}

/* Local addresses and routes: add what is new, remove what went. */
static void sync_interface(json_t **applied, json_t *want, int routes)
{
	json_t *wantset = json_object(), *v;
	const char *text, *err = NULL;
	size_t i;
	struct prefix p;
	void *tmp;

	json_array_foreach(want, i, v) {
		char norm[PREFIX_STRLEN];

		if (!json_is_string(v))
			continue;
		if (routes ? prefix_parse(json_string_value(v), &p, 0, 0) < 0
			   : host_prefix(json_string_value(v), &p) < 0)
			continue;
		json_object_set_new(wantset, prefix_str(&p, norm), json_true());
	}
	json_object_foreach_safe(*applied, tmp, text, v)
		if (!json_object_get(wantset, text) && prefix_parse(text, &p, 0, 0) == 0) {
			if ((routes ? tun_route(mf.dev->ifname, &p, 0, &err)
				    : tun_addr(mf.dev->ifname, &p, 0, &err)) < 0)
				log_warning("unable to remove %s from %s: %s", text, mf.dev->ifname, err);
			json_object_del(*applied, text);
		}
	json_object_foreach(wantset, text, v)
		if (!json_object_get(*applied, text) && prefix_parse(text, &p, 0, 0) == 0) {
			if ((routes ? tun_route(mf.dev->ifname, &p, 1, &err)
				    : tun_addr(mf.dev->ifname, &p, 1, &err)) < 0)
				log_error("unable to add %s to %s: %s", text, mf.dev->ifname, err);
			else
				json_object_set_new(*applied, text, json_true());
		}
	json_decref(wantset);
}

/* Connectors and the control plane listen where the map says peers reach
 * them. */
static void sync_listen_port(json_t *self)
{
	const char *ep = literal_endpoint(self);
	struct addr a;
	uint16_t port;

	if (!ep || endpoint_parse(ep, &a, &port) < 0 || port == mf.dev->listen_port)
		return;
	if (udp_bind(mf.dev, port) < 0)
		log_error("unable to listen on UDP port %u (the map's endpoint %s): %s", port, ep,
			  strerror(errno));
}

static void apply(struct mapwatch *w, void *arg)
{
	json_t *peers, *addrs, *routes, *self;
	const char *role, *key;
	uint8_t pub[KEY_LEN];

	(void)arg;
	if (desired(&peers, &addrs, &routes, &role, &self) < 0) {
		log_error("map version %lld names no connector, client or control \"%s\"; "
			  "keeping the tunnel as it is", (long long)mapwatch_version(w), mf.host);
		return;
	}
	key = json_string_value(json_object_get(self, "key"));
	if (mf.dev->local.has_key && (!key || key_from_base64(pub, key) < 0 ||
				      memcmp(pub, mf.dev->local.pub, KEY_LEN)))
		log_error("the map's key for %s %s is not the public key of our private key",
			  role, mf.host);
	if (strcmp(role, "client"))
		sync_listen_port(self);
	apply_peers(peers);
	if (mf.dev->kernel)
		kernel_push(mf.dev);
	sync_interface(&mf.addrs, addrs, 0);
	sync_interface(&mf.routes, routes, 1);
	log_info("applied map version %lld as %s %s: %zu peers", (long long)mapwatch_version(w),
		 role, mf.host, mf.dev->npeers);
	json_decref(peers);
	json_decref(addrs);
	json_decref(routes);
	if (!mf.applied_once) {
		mf.applied_once = 1;
		if (mf.on_first)
			mf.on_first();
	}
}

int mapfollow_start(struct device *dev, const char *sock_path, const char *host,
		    void (*on_first)(void))
{
	mf.dev = dev;
	mf.host = host;
	mf.on_first = on_first;
	mf.addrs = json_object();
	mf.routes = json_object();
	mf.endpoints = json_object();
	if (!mf.addrs || !mf.routes || !mf.endpoints)
		return -1;
	mf.watch = mapwatch_new(dev->loop, sock_path, apply, NULL);
	return mf.watch ? 0 : -1;
}

void mapfollow_stop(void)
{
	if (!mf.dev)
		return;
	mapwatch_free(mf.watch);
	json_decref(mf.addrs);
	json_decref(mf.routes);
	json_decref(mf.endpoints);
	memset(&mf, 0, sizeof mf);
}
