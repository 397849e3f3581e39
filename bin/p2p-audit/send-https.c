/* send-https.c: batches to a p2p-audit collector, POSTed over HTTPS with
 * a client certificate, with libcurl's multi interface driven by the
 * daemon's event loop (its sockets and its timer are the loop's), so the
 * writer never waits on the network. The collector answers after its own
 * fdatasync, so a 200 means the batch is durable there. */
#include "audit.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "key.h"
#include "log.h"

#define RESPONSE_MAX 65536

struct https {
	struct loop *loop;
	CURLM *multi;
	CURL *easy;
	struct curl_slist *headers;
	struct loop_timer *timer;
	struct forwarder *f;
	int in_multi;
	char *url;
	char resp[RESPONSE_MAX + 1];
	size_t resplen;
	char errbuf[CURL_ERROR_SIZE];
};

static void check_done(struct https *h);

static void on_fd(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct https *h = arg;
	int running, flags = 0;

	(void)loop;
	if (events & (EPOLLIN | EPOLLHUP))
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & EPOLLERR)
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(h->multi, fd, flags, &running);
	check_done(h);
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct https *h = userp;
	uint32_t ev = 0;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (socketp) {
			loop_del_fd(h->loop, s);
			curl_multi_assign(h->multi, s, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev |= EPOLLOUT;
	if (socketp)
		return loop_mod_fd(h->loop, s, ev) < 0 ? -1 : 0;
	if (loop_add_fd(h->loop, s, ev, on_fd, h) < 0)
		return -1;
	curl_multi_assign(h->multi, s, h);
	return 0;
}

static void on_timeout(struct loop *loop, void *arg)
{
	struct https *h = arg;
	int running;

	(void)loop;
	h->timer = NULL;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(h);
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct https *h = userp;

	(void)m;
	if (h->timer) {
		loop_timer_cancel(h->loop, h->timer);
		h->timer = NULL;
	}
	if (timeout_ms >= 0) {
		h->timer = loop_timer_add(h->loop, (uint64_t)timeout_ms, on_timeout, h);
		if (!h->timer)
			return -1;
	}
	return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct https *h = arg;
	size_t len = size * n, room = RESPONSE_MAX - h->resplen;

	if (len > room)
		len = room; /* the rest of an over-long answer is not needed */
	memcpy(h->resp + h->resplen, data, len);
	h->resplen += len;
	return size * n;
}

/* The collector's answer: {"ok":true,"next":N,...} or an error. */
static void finish(struct https *h, CURLcode result)
{
	struct forwarder *f = h->f;
	char why[512];
	long code = 0;
	json_t *doc, *next, *error;
	uint64_t restart = 0;

	if (result != CURLE_OK) {
		snprintf(why, sizeof why, "%s: %s", h->url,
			 h->errbuf[0] ? h->errbuf : curl_easy_strerror(result));
		forwarder_done(f, 0, 0, why);
		return;
	}
	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &code);
	h->resp[h->resplen] = '\0';
	doc = json_loadb(h->resp, h->resplen, 0, NULL);
	next = json_object_get(doc, "next");
	error = json_object_get(doc, "error");
	if (code == 200 && json_is_true(json_object_get(doc, "ok"))) {
		json_decref(doc);
		forwarder_done(f, 1, 0, NULL);
		return;
	}
	if (code == 409 && json_is_integer(next) && json_integer_value(next) > 0)
		restart = (uint64_t)json_integer_value(next);
	snprintf(why, sizeof why, "%s: HTTP %ld: %s", h->url, code,
		 json_is_string(error) ? json_string_value(error) : "no error message from the collector");
	json_decref(doc);
	forwarder_done(f, 0, restart, why);
}

static void check_done(struct https *h)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(h->multi, &left))) {
		if (msg->msg != CURLMSG_DONE || msg->easy_handle != h->easy)
			continue;
		CURLcode result = msg->data.result;

		curl_multi_remove_handle(h->multi, h->easy);
		h->in_multi = 0;
		finish(h, result);
	}
}

static void https_send(struct forwarder *f)
{
	struct https *h = f->ctx;
	CURLMcode rc;

	h->f = f;
	h->resplen = 0;
	h->errbuf[0] = '\0';
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, f->batch);
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)f->blen);
	rc = curl_multi_add_handle(h->multi, h->easy);
	if (rc != CURLM_OK) {
		char why[256];

		snprintf(why, sizeof why, "unable to start a transfer: %s", curl_multi_strerror(rc));
		forwarder_done(f, 0, 0, why);
		return;
	}
	h->in_multi = 1;
}

static void https_reset(struct forwarder *f)
{
	struct https *h = f->ctx;

	if (h->in_multi) {
		curl_multi_remove_handle(h->multi, h->easy);
		h->in_multi = 0;
	}
}

static void https_free(struct forwarder *f)
{
	struct https *h = f->ctx;

	if (!h)
		return;
	https_reset(f);
	curl_easy_cleanup(h->easy);
	curl_multi_cleanup(h->multi);
	curl_slist_free_all(h->headers);
	if (h->timer)
		loop_timer_cancel(h->loop, h->timer);
	free(h->url);
	free(h);
	f->ctx = NULL;
}

const struct transport https_transport = {
	.name = "collector",
	.send = https_send,
	.reset = https_reset,
	.free = https_free,
	.settle_ms = 0,
};

/* Give libcurl the file PATH's content (it copies it): the key stays
 * readable by root only, and is read before p2p-audit drops privileges. */
static int set_blob(CURL *easy, CURLoption opt, const char *path, char *err, size_t errsize)
{
	size_t len;
	char *data = file_read(path, 1 << 20, &len);
	struct curl_blob blob;
	CURLcode rc;

	if (!data) {
		snprintf(err, errsize, "unable to read %s: %s", path, strerror(errno));
		return -1;
	}
	blob.data = data;
	blob.len = len;
	blob.flags = CURL_BLOB_COPY;
	rc = curl_easy_setopt(easy, opt, &blob);
	key_wipe(data, len);
	free(data);
	if (rc != CURLE_OK) {
		snprintf(err, errsize, "libcurl refuses %s: %s", path, curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

void *https_new(struct loop *loop, const struct https_options *o, char *err, size_t errsize)
{
	struct https *h = calloc(1, sizeof *h);
	struct curl_slist *more;

	if (!h) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	h->loop = loop;
	h->url = strdup(o->url);
	h->multi = curl_multi_init();
	h->easy = curl_easy_init();
	h->headers = curl_slist_append(NULL, "Content-Type: application/x-ndjson");
	more = h->headers ? curl_slist_append(h->headers, "Expect:") : NULL;
	if (!h->url || !h->multi || !h->easy || !more) {
		snprintf(err, errsize, "unable to set up libcurl");
		goto fail;
	}
	h->headers = more;
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	if (curl_easy_setopt(h->easy, CURLOPT_URL, o->url) != CURLE_OK ||
	    curl_easy_setopt(h->easy, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(h->easy, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(h->easy, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers) != CURLE_OK ||
	    curl_easy_setopt(h->easy, CURLOPT_POST, 1L) != CURLE_OK ||
	    curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
	    curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, h) != CURLE_OK ||
	    curl_easy_setopt(h->easy, CURLOPT_ERRORBUFFER, h->errbuf) != CURLE_OK ||
	    curl_easy_setopt(h->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h->easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L) != CURLE_OK ||
	    curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, 60000L) != CURLE_OK ||
	    curl_easy_setopt(h->easy, CURLOPT_USERAGENT, "p2p-audit") != CURLE_OK) {
		snprintf(err, errsize, "unable to set up libcurl for %s", o->url);
		goto fail;
	}
	if (set_blob(h->easy, CURLOPT_CAINFO_BLOB, o->ca, err, errsize) < 0 ||
	    set_blob(h->easy, CURLOPT_SSLCERT_BLOB, o->cert, err, errsize) < 0 ||
	    set_blob(h->easy, CURLOPT_SSLKEY_BLOB, o->key, err, errsize) < 0)
		goto fail;
	return h;
fail:
	curl_easy_cleanup(h->easy);
	curl_multi_cleanup(h->multi);
	curl_slist_free_all(h->headers);
	free(h->url);
	free(h);
	return NULL;
}
