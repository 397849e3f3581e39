/* config.c: [Interface] PrivateKey, ListenPort, FwMark (and Address, MTU);
 * [Peer] PublicKey, PresharedKey, AllowedIPs, Endpoint, PersistentKeepalive.
 * Keys are case-insensitive, as in wg(8); comments start with '#'. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "key.h"

struct builder {
	char *p;
	size_t len, cap;
	int failed;
};

static void emit(struct builder *b, const char *key, const char *value)
{
	size_t need = strlen(key) + strlen(value) + 2;

	if (b->failed)
		return;
	if (b->len + need + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		char *q;

		while (cap < b->len + need + 1)
			cap *= 2;
		q = realloc(b->p, cap);
		if (!q) {
			b->failed = 1;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	b->len += (size_t)sprintf(b->p + b->len, "%s=%s\n", key, value);
}

static void emit_raw(struct builder *b, const char *text, size_t len)
{
	if (b->failed || !len)
		return;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		char *q;

		while (cap < b->len + len + 1)
			cap *= 2;
		q = realloc(b->p, cap);
		if (!q) {
			b->failed = 1;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, text, len);
	b->len += len;
	b->p[b->len] = '\0';
}

static void builder_wipe(struct builder *b)
{
	if (b->p) {
		key_wipe(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof *b);
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static int failf(char *err, size_t size, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int failf(char *err, size_t size, const char *file, int line, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(err, size, "%s:%d: %s", file, line, what);
	return -1;
}

/* A base64 key of the file as the UAPI's hex. */
static int key_hex(const char *b64, char hex[KEY_HEX_LEN + 1])
{
	uint8_t k[KEY_LEN];

	if (key_from_base64(k, b64) < 0)
		return -1;
	key_to_hex(hex, k);
	key_wipe(k, sizeof k);
	return 0;
}

static int number(const char *v, unsigned long max, unsigned long *out)
{
	char *end;

	if (!isdigit((unsigned char)*v))
		return -1;
	errno = 0;
	*out = strtoul(v, &end, 10);
	return errno || *end || *out > max ? -1 : 0;
}

/* Decimal or 0x hexadecimal, as wg(8) takes a fwmark. */
static int number_or_hex(const char *v, unsigned long max, unsigned long *out)
{
	char *end;

	if (strncmp(v, "0x", 2) != 0)
		return number(v, max, out);
	if (!isxdigit((unsigned char)v[2]))
		return -1;
	errno = 0;
	*out = strtoul(v + 2, &end, 16);
	return errno || *end || *out > max ? -1 : 0;
}

/* A peer's lines are kept until its section ends: wg(8) lets PublicKey
 * come anywhere in the section, and the UAPI wants it first. */
struct peer_lines {
	struct builder lines;
	char key[KEY_HEX_LEN + 1];
	int has_key, line;
};

static int flush_peer(struct peer_lines *pl, struct builder *peers, struct wg_config *out,
		      const char *file, char *err, size_t errsize)
{
	char **more;

	if (!pl->has_key)
		return failf(err, errsize, file, pl->line, "this [Peer] has no PublicKey");
	emit(peers, "public_key", pl->key);
	emit(peers, "replace_allowed_ips", "true");
	emit_raw(peers, pl->lines.p, pl->lines.len);
	more = realloc(out->peers, (out->npeers + 1) * sizeof *more);
	if (!more)
		return failf(err, errsize, file, pl->line, "out of memory");
	out->peers = more;
	if (!(more[out->npeers] = strdup(pl->key)))
		return failf(err, errsize, file, pl->line, "out of memory");
	out->npeers++;
	builder_wipe(&pl->lines);
	pl->has_key = 0;
	return 0;
}

/* One KEY = VALUE of [Interface]: 0, or -1 with the reason in ERR. */
static int interface_key(const char *key, char *value, struct builder *dev, struct wg_config *out,
			 const char *file, int lineno, char *err, size_t errsize)
{
	char hex[KEY_HEX_LEN + 1], num[16];
	unsigned long n;

	if (!strcasecmp(key, "PrivateKey")) {
		if (key_hex(value, hex) < 0)
			return failf(err, errsize, file, lineno, "PrivateKey: not a key (44 characters of base64)");
		emit(dev, "private_key", hex);
		key_wipe(hex, sizeof hex);
	} else if (!strcasecmp(key, "ListenPort")) {
		if (number(value, 65535, &n) < 0)
			return failf(err, errsize, file, lineno, "ListenPort: %s is not a port", value);
		snprintf(num, sizeof num, "%lu", n);
		emit(dev, "listen_port", num);
	} else if (!strcasecmp(key, "FwMark")) {
		if (strcasecmp(value, "off") == 0)
			n = 0;
		else if (number_or_hex(value, 0xffffffffu, &n) < 0)
			return failf(err, errsize, file, lineno, "FwMark: %s is not a number", value);
		snprintf(num, sizeof num, "%lu", n);
		emit(dev, "fwmark", num);
	} else if (!strcasecmp(key, "Address")) {
		char *tok, *save = NULL;

		for (tok = strtok_r(value, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			tok = trim(tok);
			if (out->naddrs == CONFIG_MAX_ADDRS ||
			    prefix_parse(tok, &out->addrs[out->naddrs], 1, 1) < 0)
				return failf(err, errsize, file, lineno, "Address: %s is not ADDR[/LEN]", tok);
			out->naddrs++;
		}
	} else if (!strcasecmp(key, "MTU")) {
		if (number(value, 65535, &n) < 0 || n < 576)
			return failf(err, errsize, file, lineno, "MTU: %s is not an MTU (576 to 65535)", value);
		out->mtu = (unsigned)n;
	} else {
		return failf(err, errsize, file, lineno, "unknown key '%s' in [Interface]", key);
	}
	return 0;
}

/* One KEY = VALUE of [Peer]. */
static int peer_key(const char *key, char *value, struct peer_lines *pl, const char *file,
		    int lineno, char *err, size_t errsize)
{
	char hex[KEY_HEX_LEN + 1];
	unsigned long n;

	if (!strcasecmp(key, "PublicKey")) {
		if (pl->has_key)
			return failf(err, errsize, file, lineno, "a second PublicKey in one [Peer]");
		if (key_hex(value, pl->key) < 0)
			return failf(err, errsize, file, lineno, "PublicKey: not a key (44 characters of base64)");
		pl->has_key = 1;
	} else if (!strcasecmp(key, "PresharedKey")) {
		if (key_hex(value, hex) < 0)
			return failf(err, errsize, file, lineno, "PresharedKey: not a key (44 characters of base64)");
		emit(&pl->lines, "preshared_key", hex);
		key_wipe(hex, sizeof hex);
	} else if (!strcasecmp(key, "AllowedIPs")) {
		char *tok, *save = NULL;

		for (tok = strtok_r(value, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			struct prefix p;
			char text[PREFIX_STRLEN];

			tok = trim(tok);
			if (!*tok)
				continue;
			if (prefix_parse(tok, &p, 1, 1) < 0)
				return failf(err, errsize, file, lineno, "AllowedIPs: %s is not ADDR[/LEN]", tok);
			emit(&pl->lines, "allowed_ip", prefix_str(&p, text));
		}
	} else if (!strcasecmp(key, "Endpoint")) {
		struct addr a;
		uint16_t port;

		/* Host names are resolved by the caller's tools: a daemon must
		 * not block on DNS at reload. */
		if (endpoint_parse(value, &a, &port) < 0)
			return failf(err, errsize, file, lineno,
				     "Endpoint: %s is not ADDR:PORT ([ADDR]:PORT for IPv6)", value);
		emit(&pl->lines, "endpoint", value);
	} else if (!strcasecmp(key, "PersistentKeepalive")) {
		char num[16];

		if (strcasecmp(value, "off") == 0)
			n = 0;
		else if (number(value, 65535, &n) < 0)
			return failf(err, errsize, file, lineno, "PersistentKeepalive: %s is not 0 to 65535", value);
		snprintf(num, sizeof num, "%lu", n);
		emit(&pl->lines, "persistent_keepalive_interval", num);
	} else {
		return failf(err, errsize, file, lineno, "unknown key '%s' in [Peer]", key);
	}
	return 0;
}

int config_parse(const char *file, const char *text, struct wg_config *out, char *err,
		 size_t errsize)
{
	struct builder dev = { 0 }, peers = { 0 };
	struct peer_lines pl = { 0 };
	enum { NONE, INTERFACE, PEER } section = NONE;
	int lineno = 0, rc = -1;
	char *copy = strdup(text), *save = NULL, *line;
	size_t textlen = strlen(text);

	memset(out, 0, sizeof *out);
	if (!copy)
		return failf(err, errsize, file, 0, "out of memory");
	for (line = copy; line; line = save) {
		char *nl = strchr(line, '\n'), *eq, *key, *value, *hash;

		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		lineno++;
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		line = trim(line);
		if (!*line)
			continue;
		if (!strcasecmp(line, "[Interface]") || !strcasecmp(line, "[Peer]")) {
			if (section == PEER && flush_peer(&pl, &peers, out, file, err, errsize) < 0)
				goto out;
			section = !strcasecmp(line, "[Peer]") ? PEER : INTERFACE;
			pl.line = lineno;
			continue;
		}
		eq = strchr(line, '=');
		if (!eq || section == NONE) {
			failf(err, errsize, file, lineno, section == NONE
			      ? "a key before [Interface] or [Peer]" : "not KEY = VALUE");
			goto out;
		}
		*eq = '\0';
		key = trim(line);
		value = trim(eq + 1);
		if ((section == INTERFACE
			     ? interface_key(key, value, &dev, out, file, lineno, err, errsize)
			     : peer_key(key, value, &pl, file, lineno, err, errsize)) < 0)
			goto out;
	}
	if (section == PEER && flush_peer(&pl, &peers, out, file, err, errsize) < 0)
		goto out;
	/* The device's settings first, then the peers. */
	emit_raw(&dev, peers.p, peers.len);
	if (dev.failed || peers.failed || pl.lines.failed) {
		failf(err, errsize, file, lineno, "out of memory");
		goto out;
	}
	out->uapi = dev.p ? dev.p : strdup("");
	out->uapi_len = dev.len;
	dev.p = NULL;
	rc = 0;
out:
	builder_wipe(&dev);
	builder_wipe(&peers);
	builder_wipe(&pl.lines);
	key_wipe(pl.key, sizeof pl.key);
	key_wipe(copy, textlen);
	free(copy);
	if (rc < 0)
		config_free(out);
	return rc;
}

void config_free(struct wg_config *c)
{
	if (c->uapi) {
		key_wipe(c->uapi, c->uapi_len);
		free(c->uapi);
	}
	for (size_t i = 0; i < c->npeers; i++)
		free(c->peers[i]);
	free(c->peers);
	memset(c, 0, sizeof *c);
}
