/* fuzz: p2p-tunnel */
/* fuzz-tunnel-uapi.c: UAPI "set=1" transactions into uapi_set(), as wg(8)
 * sends them over /var/run/wireguard/IFACE.sock, then uapi_get().
 *
 * The input is the body of one or more transactions: the lines after
 * "set=1", transactions separated by a blank line, all applied in order to
 * one device held in memory (an event loop, no TUN, no UDP socket until a
 * listen_port line). listen_port=DIGITS is applied as listen_port=0, so a
 * transaction binds an ephemeral UDP port (closed again before the next
 * input) and never a fixed one that something on the host may use; other
 * listen_port values go through unchanged and are refused.
 *
 * Then the answer to "get=1" must be well-formed key=value lines, and must
 * survive the round trip a backup and restore does (wg showconf | wg
 * setconf): its settable lines, applied to a fresh device, are accepted, and
 * applying that device's answer to a third device gives back the first
 * answer (twice, because each round trip reverses the order of the peers). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"

#define LINE_MAX_UAPI 512

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *a, const char *b)
{
	fprintf(stderr, "fuzz-tunnel-uapi: %s\n", what);
	if (a)
		fprintf(stderr, "--- first:\n%s", a);
	if (b)
		fprintf(stderr, "--- second:\n%s", b);
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (wg_crypto_init() < 0)
		fail("OpenSSL lacks BLAKE2s", NULL, NULL);
	return 0;
}

static struct device *device_new(void)
{
	struct device *dev = calloc(1, sizeof *dev);

	if (!dev)
		fail("out of memory", NULL, NULL);
	dev->tun_fd = dev->udp4 = dev->udp6 = -1;
	dev->mtu = 1420;
	dev->loop = loop_new();
	dev->aead = wg_aead_new();
	dev->buf = malloc(MAX_PACKET + 64);
	dev->buf2 = malloc(MAX_PACKET + 64);
	if (!dev->loop || !dev->aead || !dev->buf || !dev->buf2)
		fail("out of memory", NULL, NULL);
	return dev;
}

/* What main() does at exit, minus the TUN device. */
static void device_free(struct device *dev)
{
	peer_remove_all(dev);
	allowedips_free(&dev->aips);
	udp_close(dev);
	wg_aead_free(dev->aead);
	free(dev->index);
	free(dev->buf);
	free(dev->buf2);
	loop_free(dev->loop);
	free(dev);
}

/* One transaction, with listen_port=DIGITS turned into listen_port=0. */
static void apply(struct device *dev, const char *text, size_t len)
{
	char *copy = malloc(len + 1), *q = copy;
	const char *p = text, *end = text + len;

	if (!copy)
		fail("out of memory", NULL, NULL);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		size_t digits = 0;

		if (n > 12 && n < LINE_MAX_UAPI && !memcmp(p, "listen_port=", 12)) {
			while (12 + digits < n && p[12 + digits] >= '0' && p[12 + digits] <= '9')
				digits++;
		}
		if (digits && 12 + digits == n) {
			memcpy(q, "listen_port=0", 13);
			q += 13;
		} else {
			memcpy(q, p, n);
			q += n;
		}
		if (nl)
			*q++ = '\n';
		p += n + (nl ? 1 : 0);
	}
	(void)uapi_set(dev, copy, (size_t)(q - copy));
	free(copy);
}

static const char *const settable[] = {
	"private_key", "fwmark", "public_key", "preshared_key", "protocol_version",
	"endpoint", "persistent_keepalive_interval", "allowed_ip", NULL,
};
static const char *const read_only[] = {
	"listen_port", "last_handshake_time_sec", "last_handshake_time_nsec", "tx_bytes",
	"rx_bytes", NULL,
};

static int key_in(const char *line, size_t klen, const char *const *list)
{
	for (int i = 0; list[i]; i++)
		if (strlen(list[i]) == klen && !memcmp(list[i], line, klen))
			return 1;
	return 0;
}

/* The settable lines of a get answer (what wg showconf keeps), checking
 * that every line is KEY=VALUE with a key the UAPI defines. */
static char *settable_lines(const char *get)
{
	size_t len = strlen(get), n = 0;
	char *out = malloc(len + 1);
	const char *p = get;

	if (!out)
		fail("out of memory", NULL, NULL);
	if (len && get[len - 1] != '\n')
		fail("the get answer does not end with a newline", get, NULL);
	while (*p) {
		const char *nl = strchr(p, '\n'), *eq = memchr(p, '=', (size_t)(nl - p));
		size_t klen;

		if (nl == p || !eq || eq == p)
			fail("a get line is not KEY=VALUE", get, NULL);
		if (nl - p >= LINE_MAX_UAPI)
			fail("a get line is too long for uapi_set", get, NULL);
		klen = (size_t)(eq - p);
		if (key_in(p, klen, settable)) {
			memcpy(out + n, p, (size_t)(nl - p) + 1);
			n += (size_t)(nl - p) + 1;
		} else if (!key_in(p, klen, read_only)) {
			fail("a get line with an unknown key", get, NULL);
		}
		p = nl + 1;
	}
	out[n] = '\0';
	return out;
}

/* Apply SETTABLE to a fresh device and return that device's settable lines. */
static char *round_trip(const char *set)
{
	struct device *dev = device_new();
	char *get, *lines;
	int rc = uapi_set(dev, set, strlen(set));

	if (rc != 0) {
		fprintf(stderr, "uapi_set: %s\n", strerror(-rc));
		fail("a get answer is refused by set", set, NULL);
	}
	get = uapi_get(dev);
	if (!get)
		fail("uapi_get failed", NULL, NULL);
	lines = settable_lines(get);
	free(get);
	device_free(dev);
	return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *p = text, *end = text + size;
	struct device *dev = device_new();
	char *get, *first, *second, *third;

	/* Transactions end at a blank line, as in the socket's stream. */
	while (p < end) {
		const char *stop = p;

		while (stop < end && !(stop[0] == '\n' && stop + 1 < end && stop[1] == '\n'))
			stop++;
		if (stop < end)
			stop++; /* keep the last line's newline */
		apply(dev, p, (size_t)(stop - p));
		p = stop < end ? stop + 1 : end;
	}
	get = uapi_get(dev);
	if (!get)
		fail("uapi_get failed", NULL, NULL);
	first = settable_lines(get);
	free(get);
	device_free(dev);

	second = round_trip(first);
	third = round_trip(second);
	if (strcmp(first, third) != 0)
		fail("get | set | get | set | get changed the configuration", first, third);
	free(first);
	free(second);
	free(third);
	return 0;
}
