/* authz-check: the cost of a p2p-authz check seen from the proxy, over one
 * connection to authz.sock.
 *
 *   authz-check [-n count] [-w window] [-s status] SOCKET TOKENFILE PATH
 *
 * Sends COUNT checks of GET PATH on resource "apps" with the token of
 * TOKENFILE in Authorization: Bearer, WINDOW of them in flight (1: each
 * waits for the previous reply, the latency a proxy sees), and checks that
 * every reply is ok with STATUS (200 by default). Prints
 * "checks=N seconds=S us_per_check=U"; exit 0, or 1 on a wrong reply, 111
 * on a system error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "ipc.h"

#define USAGE "usage: authz-check [-n count] [-w window] [-s status] SOCKET TOKENFILE PATH\n"
#define REPLY_TIMEOUT_MS 10000

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long count = 10000, window = 1, want = 200, sent = 0, got = 0;
	struct ipc_client *c = malloc(sizeof *c);
	char *token;
	size_t len;
	json_t *req;
	double t0;
	int opt;

	while ((opt = getopt(argc, argv, "n:w:s:")) != -1) {
		switch (opt) {
		case 'n': count = atol(optarg); break;
		case 'w': window = atol(optarg); break;
		case 's': want = atol(optarg); break;
		default: fputs(USAGE, stderr); return 100;
		}
	}
	if (argc - optind != 3 || count < 1 || window < 1) {
		fputs(USAGE, stderr);
		return 100;
	}
	token = file_read(argv[optind + 1], 65536, &len);
	if (!c || !token) {
		fprintf(stderr, "authz-check: %s: %s\n", argv[optind + 1], strerror(errno));
		return 111;
	}
	while (len && (token[len - 1] == '\n' || token[len - 1] == ' '))
		token[--len] = '\0';
	if (ipc_client_connect(c, argv[optind]) < 0) {
		fprintf(stderr, "authz-check: %s: %s\n", argv[optind], strerror(errno));
		return 111;
	}
	req = json_pack("{s:s,s:s,s:s,s:s,s:{s:s+}}", "op", "check", "resource", "apps",
			"method", "GET", "path", argv[optind + 2], "headers", "authorization",
			"Bearer ", token);
	t0 = now_s();
	while (got < count) {
		json_t *reply;

		while (sent < count && sent - got < window) {
			if (ipc_client_send(c, req) < 0) {
				fprintf(stderr, "authz-check: send: %s\n", strerror(errno));
				return 111;
			}
			sent++;
		}
		if (ipc_client_recv(c, &reply, REPLY_TIMEOUT_MS) < 0) {
			fprintf(stderr, "authz-check: reply %ld: %s\n", got, strerror(errno));
			return 111;
		}
		if (!json_is_true(json_object_get(reply, "ok")) ||
		    json_integer_value(json_object_get(reply, "status")) != want) {
			char *text = json_dumps(reply, JSON_COMPACT);

			fprintf(stderr, "authz-check: reply %ld: %.300s\n", got, text);
			return 1;
		}
		json_decref(reply);
		got++;
	}
	{
		double s = now_s() - t0;

		printf("checks=%ld seconds=%.3f us_per_check=%.1f\n", got, s, s * 1e6 / (double)got);
	}
	json_decref(req);
	free(token);
	ipc_client_close(c);
	free(c);
	return 0;
}
