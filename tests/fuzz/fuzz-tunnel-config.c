/* fuzz: p2p-tunnel */
/* fuzz-tunnel-config.c: a wg.conf file (the input, up to its first NUL)
 * into config_parse(), as p2p-tunnel -c and SIGHUP read it.
 *
 * Refused: the error names the file and a line ("wg.conf:LINE: why") and
 * the result holds nothing. Accepted: the UAPI text is well-formed
 * key=value lines, lists exactly the peers in PEERS, and a fresh device
 * (in memory: no TUN, no sockets) applies it without an error, since
 * "configuration OK" from -n followed by a refusal at start-up or reload
 * would be a lie. ListenPort lines are left out of that last step only,
 * so that no UDP port is bound. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "device.h"
#include "key.h"

#define FILE_NAME "wg.conf"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz-tunnel-config: %s%s%s\n", what, detail ? ": " : "",
		detail ? detail : "");
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (wg_crypto_init() < 0)
		fail("OpenSSL lacks BLAKE2s", NULL);
	return 0;
}

static int is_hex_key(const char *s, size_t n)
{
	if (n != KEY_HEX_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return 0;
	return 1;
}

static const char *const uapi_keys[] = {
	"private_key", "listen_port", "fwmark", "public_key", "replace_allowed_ips",
	"preshared_key", "allowed_ip", "endpoint", "persistent_keepalive_interval", NULL,
};

/* Check the UAPI text line by line; returns it without listen_port lines. */
static char *check_uapi(const struct wg_config *c, size_t *outlen)
{
	const char *p = c->uapi, *end = c->uapi + c->uapi_len;
	char *out = malloc(c->uapi_len + 1);
	size_t n = 0, peers = 0;

	if (!out)
		fail("out of memory", NULL);
	if (strlen(c->uapi) != c->uapi_len)
		fail("uapi_len is not the length of the text", c->uapi);
	if (c->uapi_len && end[-1] != '\n')
		fail("the UAPI text does not end with a newline", c->uapi);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *eq;
		size_t len = (size_t)(nl - p), klen;
		int known = 0;

		eq = memchr(p, '=', len);
		if (!eq || eq == p)
			fail("a UAPI line is not KEY=VALUE", c->uapi);
		if (len >= 512)
			fail("a UAPI line is over uapi_set's 511 bytes", c->uapi);
		klen = (size_t)(eq - p);
		for (int i = 0; uapi_keys[i]; i++)
			if (strlen(uapi_keys[i]) == klen && !memcmp(uapi_keys[i], p, klen))
				known = 1;
		if (!known)
			fail("an unknown UAPI key", c->uapi);
		if (klen == 10 && !memcmp(p, "public_key", 10)) {
			if (!is_hex_key(eq + 1, (size_t)(nl - eq - 1)))
				fail("public_key is not 64 hex digits", c->uapi);
			if (peers >= c->npeers || memcmp(c->peers[peers], eq + 1, KEY_HEX_LEN) ||
			    strlen(c->peers[peers]) != KEY_HEX_LEN)
				fail("PEERS does not list the UAPI's public keys in order", c->uapi);
			peers++;
		}
		if (!(klen == 11 && !memcmp(p, "listen_port", 11))) {
			memcpy(out + n, p, len + 1);
			n += len + 1;
		}
		p = nl + 1;
	}
	if (peers != c->npeers)
		fail("PEERS lists more peers than the UAPI text", NULL);
	out[n] = '\0';
	*outlen = n;
	return out;
}

static void apply(const char *text, size_t len)
{
	struct device dev = { .tun_fd = -1, .udp4 = -1, .udp6 = -1, .mtu = 1420 };
	int rc;

	dev.loop = loop_new();
	dev.aead = wg_aead_new();
	dev.buf = malloc(MAX_PACKET + 64);
	dev.buf2 = malloc(MAX_PACKET + 64);
	if (!dev.loop || !dev.aead || !dev.buf || !dev.buf2)
		fail("out of memory", NULL);
	rc = uapi_set(&dev, text, len);
	if (rc != 0) {
		fprintf(stderr, "uapi_set: %s\n", strerror(-rc));
		fail("config_parse accepted a file whose UAPI text uapi_set refuses", text);
	}
	peer_remove_all(&dev);
	allowedips_free(&dev.aips);
	udp_close(&dev);
	wg_aead_free(dev.aead);
	free(dev.index);
	free(dev.buf);
	free(dev.buf2);
	loop_free(dev.loop);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), err[512];
	struct wg_config c;
	int rc;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(err, 'x', sizeof err);
	rc = config_parse(FILE_NAME, text, &c, err, sizeof err);
	if (rc < 0) {
		const char *p = err + strlen(FILE_NAME ":");

		if (!memchr(err, '\0', sizeof err))
			fail("refused without a terminated message", NULL);
		if (strncmp(err, FILE_NAME ":", strlen(FILE_NAME ":")) || !isdigit((unsigned char)*p))
			fail("the error does not start with FILE:LINE", err);
		if (c.uapi || c.peers || c.npeers || c.naddrs || c.mtu)
			fail("a refused file left a result behind", err);
	} else if (rc == 0) {
		size_t len;
		char *uapi;

		if (!c.uapi)
			fail("accepted without UAPI text", NULL);
		if (c.naddrs > CONFIG_MAX_ADDRS || (c.mtu && (c.mtu < 576 || c.mtu > 65535)))
			fail("addresses or MTU out of range", NULL);
		uapi = check_uapi(&c, &len);
		apply(uapi, len);
		free(uapi);
		config_free(&c);
	} else {
		fail("config_parse returned neither 0 nor -1", NULL);
	}
	free(text);
	return 0;
}
