/* p2p: the sysadmin's front end. A subcommand table in the manner of wg(8):
 * each subcommand is a small function with its own usage line. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "key.h"
#include "log.h"

#define USAGE "p2p [-r rundir] [-t timeout_ms] status | lookup NAME | reverse ADDR | keygen | pubkey | ipc SOCKET JSON"

static const char *rundir = "/run/p2p";
static int timeout_ms = 5000;

/* One request to the daemon behind SOCKET; returns its reply or NULL. */
static json_t *call(const char *socket_name, json_t *req, int quiet)
{
	char path[4096];
	struct ipc_client *c = malloc(sizeof *c);
	json_t *reply = NULL;

	if (!c)
		log_fatal(EXIT_SYSTEM, "out of memory");
	if (ipc_socket_path(path, sizeof path, rundir, socket_name) < 0)
		log_fatal(EXIT_USAGE, "%s: path too long", socket_name);
	if (ipc_client_connect(c, path) < 0) {
		if (!quiet)
			log_error("unable to connect to %s: %s", path, strerror(errno));
		free(c);
		return NULL;
	}
	if (ipc_client_call(c, req, &reply, timeout_ms) < 0 && !quiet)
		log_error("no reply from %s: %s", path,
			  errno == EPROTO ? "not a JSON line" : strerror(errno));
	ipc_client_close(c);
	free(c);
	return reply;
}

static int cmd_status(int argc, char **argv)
{
	DIR *dir;
	struct dirent *de;
	int failed = 0;
	char **names = NULL;
	size_t n = 0;

	(void)argv;
	if (argc != 1)
		log_usage("p2p status");
	dir = opendir(rundir);
	if (!dir)
		log_fatal(EXIT_SYSTEM, "unable to open %s: %s", rundir, strerror(errno));
	while ((de = readdir(dir))) {
		size_t len = strlen(de->d_name);

		if (len > 5 && strcmp(de->d_name + len - 5, ".sock") == 0) {
			char **more = realloc(names, (n + 1) * sizeof *names);

			if (!more)
				log_fatal(EXIT_SYSTEM, "out of memory");
			names = more;
			names[n++] = strndup(de->d_name, len - 5);
		}
	}
	closedir(dir);
	if (n == 0)
		printf("no daemon sockets in %s\n", rundir);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(names[i], names[j]) > 0) {
				char *t = names[i];

				names[i] = names[j];
				names[j] = t;
			}
	for (size_t i = 0; i < n; i++) {
		json_t *req = json_pack("{s:i,s:s}", "id", 1, "op", "status");
		json_t *reply = call(names[i], req, 1);
		const char *key;
		json_t *v;

		if (!reply || !json_is_true(json_object_get(reply, "ok"))) {
			printf("%-8s down\n", names[i]);
			failed = 1;
		} else {
			printf("%-8s up", names[i]);
			json_object_foreach(reply, key, v) {
				char *text;

				if (!strcmp(key, "id") || !strcmp(key, "ok") || json_is_null(v))
					continue;
				text = json_is_string(v) ? strdup(json_string_value(v))
							 : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
				printf(" %s=%s", key, text ? text : "?");
				free(text);
			}
			printf("\n");
		}
		json_decref(req);
		json_decref(reply);
		free(names[i]);
	}
	free(names);
	return failed ? EXIT_NEGATIVE : EXIT_OK;
}

/* lookup and reverse: print one field of the answer, exit 1 if none. */
static int query(const char *op, const char *arg_key, const char *arg, const char *print)
{
	json_t *req = json_pack("{s:i,s:s,s:s}", "id", 1, "op", op, arg_key, arg);
	json_t *reply = call("mapd", req, 0);
	int rc;

	json_decref(req);
	if (!reply)
		return EXIT_SYSTEM;
	if (json_is_true(json_object_get(reply, "ok"))) {
		/* The DNS and control addresses have a kind but no name. */
		json_t *v = json_object_get(reply, print);

		printf("%s\n", json_string_value(v ? v : json_object_get(reply, "kind")));
		rc = EXIT_OK;
	} else {
		log_error("%s", json_string_value(json_object_get(reply, "error")));
		rc = json_is_true(json_object_get(reply, "notfound")) ? EXIT_NEGATIVE : EXIT_SYSTEM;
	}
	json_decref(reply);
	return rc;
}

static int cmd_lookup(int argc, char **argv)
{
	if (argc != 2)
		log_usage("p2p lookup NAME");
	return query("lookup", "name", argv[1], "addr");
}

static int cmd_reverse(int argc, char **argv)
{
	if (argc != 2)
		log_usage("p2p reverse ADDR");
	return query("reverse", "addr", argv[1], "name");
}

static int cmd_keygen(int argc, char **argv)
{
	uint8_t priv[KEY_LEN];
	char text[KEY_B64_LEN + 1];

	(void)argv;
	if (argc != 1)
		log_usage("p2p keygen");
	if (key_generate(priv) < 0)
		log_fatal(EXIT_SYSTEM, "unable to generate a key: no randomness");
	key_to_base64(text, priv);
	printf("%s\n", text);
	key_wipe(priv, sizeof priv);
	key_wipe(text, sizeof text);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_SYSTEM;
}

/* Like wg pubkey: a private key on stdin (surrounding white space allowed),
 * its public key on stdout. */
static int cmd_pubkey(int argc, char **argv)
{
	char line[256], *p, *end;
	uint8_t priv[KEY_LEN], pub[KEY_LEN];
	char text[KEY_B64_LEN + 1];
	size_t n;

	(void)argv;
	if (argc != 1)
		log_usage("p2p pubkey");
	n = fread(line, 1, sizeof line - 1, stdin);
	line[n] = '\0';
	for (p = line; *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'; p++)
		;
	for (end = p + strlen(p); end > p && (end[-1] == ' ' || end[-1] == '\t' ||
					       end[-1] == '\n' || end[-1] == '\r');)
		*--end = '\0';
	if (key_from_base64(priv, p) < 0) {
		key_wipe(line, sizeof line);
		log_fatal(EXIT_CONFIG, "stdin: not a private key (44 characters of base64)");
	}
	key_wipe(line, sizeof line);
	if (key_public(pub, priv) < 0)
		log_fatal(EXIT_SYSTEM, "unable to compute the public key");
	key_wipe(priv, sizeof priv);
	key_to_base64(text, pub);
	printf("%s\n", text);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_SYSTEM;
}

/* One raw request; every line the daemon sends for it is printed, so
 * streamed answers (get) come out whole. */
static int cmd_ipc(int argc, char **argv)
{
	char path[4096];
	json_error_t jerr;
	json_t *req, *msg;
	struct ipc_client *c;
	int rc = EXIT_OK, follow;

	if (argc != 3)
		log_usage("p2p ipc SOCKET JSON");
	req = json_loads(argv[2], JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(req))
		log_fatal(EXIT_USAGE, "JSON: %s", req ? "not an object" : jerr.text);
	if (!json_object_get(req, "id"))
		json_object_set_new(req, "id", json_integer(1));
	/* A watch streams until the daemon or the user ends it. */
	follow = json_is_string(json_object_get(req, "op")) &&
		 strcmp(json_string_value(json_object_get(req, "op")), "watch") == 0;
	c = malloc(sizeof *c);
	if (!c || ipc_socket_path(path, sizeof path, rundir, argv[1]) < 0)
		log_fatal(EXIT_SYSTEM, "out of memory or path too long");
	if (ipc_client_connect(c, path) < 0)
		log_fatal(EXIT_SYSTEM, "unable to connect to %s: %s", path, strerror(errno));
	if (ipc_client_send(c, req) < 0)
		log_fatal(EXIT_SYSTEM, "unable to send to %s: %s", path, strerror(errno));
	for (;;) {
		char *text;
		int done;

		if (ipc_client_recv(c, &msg, follow ? -1 : timeout_ms) < 0)
			log_fatal(EXIT_SYSTEM, "no reply from %s: %s", path, strerror(errno));
		text = json_dumps(msg, JSON_COMPACT);
		printf("%s\n", text);
		fflush(stdout); /* a watch feeds a pipe line by line */
		free(text);
		if (json_is_false(json_object_get(msg, "ok")))
			rc = EXIT_NEGATIVE;
		/* A streamed answer ends with its "end" event; a plain one at once. */
		done = json_object_get(msg, "event")
			       ? !strcmp(json_string_value(json_object_get(msg, "event")), "end")
			       : !json_object_get(msg, "count") || json_is_false(json_object_get(msg, "ok"));
		json_decref(msg);
		if (done && !follow)
			break;
	}
	ipc_client_close(c);
	free(c);
	json_decref(req);
	return rc;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "status", cmd_status },
	{ "lookup", cmd_lookup },
	{ "reverse", cmd_reverse },
	{ "keygen", cmd_keygen },
	{ "pubkey", cmd_pubkey },
	{ "ipc", cmd_ipc },
};

int main(int argc, char **argv)
{
	int opt;

	log_init("p2p");
	while ((opt = getopt(argc, argv, "+r:t:")) != -1) {
		switch (opt) {
		case 'r': rundir = optarg; break;
		case 't': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*optarg == '\0' || *end || v < 1 || v > 3600000)
				log_usage(USAGE);
			timeout_ms = (int)v;
			break;
		}
		default: log_usage(USAGE);
		}
	}
	if (optind >= argc)
		log_usage(USAGE);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			return commands[i].fn(argc - optind, argv + optind);
	log_error("unknown command '%s'", argv[optind]);
	log_usage(USAGE);
}
