/* config.h: wg(8)'s configuration format ("wg setconf"), read line by line
 * with file:line errors, turned into a UAPI set transaction so that one
 * parser (uapi.c) applies every configuration. Address= and MTU= of
 * wg-quick files are accepted too and returned separately. */
#ifndef P2P_TUNNEL_CONFIG_H
#define P2P_TUNNEL_CONFIG_H

#include <stddef.h>

#include "addr.h"

#define CONFIG_MAX_ADDRS 64

struct wg_config {
	char *uapi;                    /* "private_key=...\n...": no "set=1", no blank line */
	size_t uapi_len;
	char **peers;                  /* hex public keys of the peers it lists */
	size_t npeers;
	struct prefix addrs[CONFIG_MAX_ADDRS];
	size_t naddrs;
	unsigned mtu;                  /* 0: not given */
};

/* Parse TEXT (the file FILE). Returns 0, or -1 with "FILE:LINE: why" in ERR. */
int config_parse(const char *file, const char *text, struct wg_config *out, char *err,
		 size_t errsize);
void config_free(struct wg_config *c);

#endif
