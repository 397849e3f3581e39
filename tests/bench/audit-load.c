/* audit-load: records to p2p-audit's audit.sock as fast as it acknowledges
 * them, from CONNS connections with WINDOW records in flight on each, for
 * SECONDS. Every reply must be an acknowledgement of the record it answers
 * (by id), with a seq above every seq before it on that connection. Prints
 * one line:
 *
 *   acked N in S s: R records/s, latency p50 A ms, p99 B ms, max C ms
 *
 * latency being from writing a record to reading its acknowledgement.
 * Usage: audit-load SOCKET CONNS WINDOW SECONDS */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define CONNS_MAX 256

struct conn {
	int fd;
	long next_id;               /* ids are per connection */
	long acked_id;              /* the id acknowledged last */
	long long last_seq;
	double *sent_at;            /* by id % window */
	char in[65536];
	size_t inlen;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void die(const char *what)
{
	fprintf(stderr, "audit-load: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void send_record(struct conn *c, int k, long window)
{
	char line[512];
	int n = snprintf(line, sizeof line,
			 "{\"id\":%ld,\"op\":\"log\",\"record\":{\"type\":\"request\",\"resource\":\"vault\","
			 "\"method\":\"GET\",\"path\":\"/v1/secret/%ld\",\"src\":\"100.96.0.5:%d\","
			 "\"user\":\"alice\",\"groups\":[\"eng\"],\"auth\":\"jwt\",\"decision\":\"allow\","
			 "\"rule\":\"vault-read\",\"status\":200,\"bytes_in\":0,\"bytes_out\":512,"
			 "\"duration_ms\":3,\"upstream\":\"http://10.0.10.15:8080\",\"request_id\":\"%d-%ld\"}}\n",
			 c->next_id, c->next_id, 40000 + k, k, c->next_id);

	c->sent_at[c->next_id % window] = now_ms();
	if (write(c->fd, line, (size_t)n) != n)
		die("write");
	c->next_id++;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct conn *conns;
	struct pollfd pfd[CONNS_MAX];
	long nconns, window, seconds, acked = 0, cap = 1 << 20;
	double *lat, start, end;

	if (argc != 5) {
		fprintf(stderr, "usage: audit-load SOCKET CONNS WINDOW SECONDS\n");
		return 100;
	}
	nconns = atol(argv[2]);
	window = atol(argv[3]);
	seconds = atol(argv[4]);
	if (nconns < 1 || nconns > CONNS_MAX || window < 1 || window > 4096 || seconds < 1 ||
	    strlen(argv[1]) >= sizeof sa.sun_path) {
		fprintf(stderr, "audit-load: bad arguments\n");
		return 100;
	}
	strcpy(sa.sun_path, argv[1]);
	conns = calloc((size_t)nconns, sizeof *conns);
	lat = malloc((size_t)cap * sizeof *lat);
	if (!conns || !lat)
		die("malloc");
	for (long i = 0; i < nconns; i++) {
		conns[i].fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (conns[i].fd < 0 || connect(conns[i].fd, (struct sockaddr *)&sa, sizeof sa) < 0)
			die(argv[1]);
		conns[i].sent_at = calloc((size_t)window, sizeof(double));
		conns[i].next_id = 1;
		pfd[i].fd = conns[i].fd;
		pfd[i].events = POLLIN;
	}
	start = now_ms();
	end = start + seconds * 1e3;
	for (long i = 0; i < nconns; i++)
		for (long w = 0; w < window; w++)
			send_record(&conns[i], (int)i, window);
	while (now_ms() < end) {
		if (poll(pfd, (nfds_t)nconns, 1000) < 0 && errno != EINTR)
			die("poll");
		for (long i = 0; i < nconns; i++) {
			struct conn *c = &conns[i];
			ssize_t n;
			char *nl;

			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
			if (n <= 0) {
				fprintf(stderr, "audit-load: connection %ld closed\n", i);
				return 1;
			}
			c->inlen += (size_t)n;
			while ((nl = memchr(c->in, '\n', c->inlen))) {
				json_t *r = json_loadb(c->in, (size_t)(nl - c->in), 0, NULL);
				long id = (long)json_integer_value(json_object_get(r, "id"));
				long long seq = json_integer_value(json_object_get(r, "seq"));

				if (!json_is_true(json_object_get(r, "ok")) || id != c->acked_id + 1 ||
				    seq <= c->last_seq) {
					fprintf(stderr, "audit-load: a wrong reply: %.*s\n", (int)(nl - c->in), c->in);
					return 1;
				}
				json_decref(r);
				c->acked_id = id;
				c->last_seq = seq;
				if (acked < cap)
					lat[acked] = now_ms() - c->sent_at[id % window];
				acked++;
				memmove(c->in, nl + 1, c->inlen - (size_t)(nl + 1 - c->in));
				c->inlen -= (size_t)(nl + 1 - c->in);
				send_record(c, (int)i, window);
			}
		}
	}
	end = now_ms();
	{
		long n = acked < cap ? acked : cap;

		if (n == 0) {
			fprintf(stderr, "audit-load: nothing acknowledged\n");
			return 1;
		}
		qsort(lat, (size_t)n, sizeof *lat, cmp_double);
		printf("acked %ld in %.1f s: %.0f records/s, latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		       acked, (end - start) / 1e3, acked / ((end - start) / 1e3), lat[n / 2],
		       lat[(long)(n * 0.99)], lat[n - 1]);
	}
	return 0;
}
