/* config.c: [Interface] PrivateKey, ListenPort, FwMark (and Address, MTU);
 * [Peer] PublicKey, PresharedKey, AllowedIPs, Endpoint, PersistentKeepalive.
 * Keys are case-insensitive, as in wg(8); comments start with '#'. */
#include "config.h"

#include <ctype.h>
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
	*out = strtoul(v, &end, 10);
	return *end || *out > max ? -1 : 0;
}

int config_parse(const char *file, const char *text, struct wg_config *out, char *err,
		 size_t errsize)
{
	struct builder b = { 0 };
	enum { NONE, INTERFACE, PEER } section = NONE;
	int lineno = 0, peer_has_key = 0, rc = -1;
	char *copy = strdup(text), *save = NULL, *line;
	char hex[KEY_HEX_LEN + 1];

	memset(out, 0, sizeof *out);
	if (!copy)
		return failf(err, errsize, file, 0, "out of memory");
	for (line = copy; line; line = save) {
		char *nl = strchr(line, '\n'), *eq, *key, *value, *hash;
		unsigned long n;

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
			if (section == PEER && !peer_has_key) {
				failf(err, errsize, file, lineno, "the [Peer] before has no PublicKey");
				goto out;
			}
			section = !strcasecmp(line, "[Peer]") ? PEER : INTERFACE;
			peer_has_key = 0;
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
		if (section == PEER && !peer_has_key && strcasecmp(key, "PublicKey")) {
			failf(err, errsize, file, lineno, "%s before the peer's PublicKey", key);
			goto out;
		}
		if (section == INTERFACE && !strcasecmp(key, "PrivateKey")) {
			if (key_hex(value, hex) < 0) {
				failf(err, errsize, file, lineno, "PrivateKey: not a key (44 characters of base64)");
				goto out;
			}
			emit(&b, "private_key", hex);
		} else if (section == INTERFACE && !strcasecmp(key, "ListenPort")) {
			if (number(value, 65535, &n) < 0) {
				failf(err, errsize, file, lineno, "ListenPort: %s is not a port", value);
				goto out;
			}
			emit(&b, "listen_port", value);
		} else if (section == INTERFACE && !strcasecmp(key, "FwMark")) {
			if (!strcasecmp(value, "off"))
				value = "0";
			if (number(value, 0xffffffffu, &n) < 0 &&
			    !(strncmp(value, "0x", 2) == 0 && (n = strtoul(value, NULL, 16), 1))) {
				failf(err, errsize, file, lineno, "FwMark: %s is not a number", value);
				goto out;
			}
			{
				char num[16];

				snprintf(num, sizeof num, "%lu", n);
				emit(&b, "fwmark", num);
			}
		} else if (section == INTERFACE && !strcasecmp(key, "Address")) {
			char *tok, *tsave = NULL;

			for (tok = strtok_r(value, ",", &tsave); tok; tok = strtok_r(NULL, ",", &tsave)) {
				tok = trim(tok);
				if (out->naddrs == CONFIG_MAX_ADDRS ||
				    prefix_parse(tok, &out->addrs[out->naddrs], 1, 1) < 0) {
					failf(err, errsize, file, lineno, "Address: %s is not ADDR[/LEN]", tok);
					goto out;
				}
				out->naddrs++;
			}
		} else if (section == INTERFACE && !strcasecmp(key, "MTU")) {
			if (number(value, 65535, &n) < 0 || n < 576) {
				failf(err, errsize, file, lineno, "MTU: %s is not an MTU (576 to 65535)", value);
				goto out;
			}
			out->mtu = (unsigned)n;
		} else if (section == PEER && !strcasecmp(key, "PublicKey")) {
			char **more;

			if (peer_has_key || key_hex(value, hex) < 0) {
				failf(err, errsize, file, lineno, peer_has_key ? "a second PublicKey in one [Peer]"
				      : "PublicKey: not a key (44 characters of base64)");
				goto out;
			}
			peer_has_key = 1;
			emit(&b, "public_key", hex);
			emit(&b, "replace_allowed_ips", "true");
			more = realloc(out->peers, (out->npeers + 1) * sizeof *more);
			if (!more || !(more[out->npeers] = strdup(hex))) {
				out->peers = more;
				failf(err, errsize, file, lineno, "out of memory");
				goto out;
			}
			out->peers = more;
			out->npeers++;
		} else if (section == PEER && !strcasecmp(key, "PresharedKey")) {
			if (key_hex(value, hex) < 0) {
				failf(err, errsize, file, lineno, "PresharedKey: not a key (44 characters of base64)");
				goto out;
			}
			emit(&b, "preshared_key", hex);
		} else if (section == PEER && !strcasecmp(key, "AllowedIPs")) {
			char *tok, *tsave = NULL;

			for (tok = strtok_r(value, ",", &tsave); tok; tok = strtok_r(NULL, ",", &tsave)) {
				struct prefix p;
				char text_p[PREFIX_STRLEN];

				tok = trim(tok);
				if (!*tok)
					continue;
				if (prefix_parse(tok, &p, 1, 1) < 0) {
					failf(err, errsize, file, lineno, "AllowedIPs: %s is not ADDR[/LEN]", tok);
					goto out;
				}
				emit(&b, "allowed_ip", prefix_str(&p, text_p));
			}
		} else if (section == PEER && !strcasecmp(key, "Endpoint")) {
			struct addr a;
			uint16_t port;

			/* Host names are resolved by the caller's tools: a daemon
			 * must not block on DNS at reload. */
			if (endpoint_parse(value, &a, &port) < 0) {
				failf(err, errsize, file, lineno,
				      "Endpoint: %s is not ADDR:PORT ([ADDR]:PORT for IPv6)", value);
				goto out;
			}
			emit(&b, "endpoint", value);
		} else if (section == PEER && !strcasecmp(key, "PersistentKeepalive")) {
			if (!strcasecmp(value, "off"))
				value = "0";
			if (number(value, 65535, &n) < 0) {
				failf(err, errsize, file, lineno, "PersistentKeepalive: %s is not 0 to 65535", value);
				goto out;
			}
			emit(&b, "persistent_keepalive_interval", value);
		} else {
			failf(err, errsize, file, lineno, "unknown key '%s' in [%s]", key,
			      section == PEER ? "Peer" : "Interface");
			goto out;
		}
	}
	if (section == PEER && !peer_has_key) {
		failf(err, errsize, file, lineno, "the last [Peer] has no PublicKey");
		goto out;
	}
	if (b.failed) {
		failf(err, errsize, file, lineno, "out of memory");
		goto out;
	}
	out->uapi = b.p ? b.p : strdup("");
	out->uapi_len = b.len;
	b.p = NULL;
	rc = 0;
out:
	key_wipe(hex, sizeof hex);
	if (b.p) {
		key_wipe(b.p, b.cap);
		free(b.p);
	}
	key_wipe(copy, strlen(text));
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
