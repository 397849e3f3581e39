/* kernel.h: the kernel's WireGuard through generic netlink (libnl-genl),
 * where the module exists. The daemon keeps the same configuration in its
 * own structures (so the UAPI, the wg.conf reload and the map follower work
 * unchanged) and pushes it to the kernel after each change; the kernel does
 * the protocol and the data path. */
#ifndef P2P_TUNNEL_KERNEL_H
#define P2P_TUNNEL_KERNEL_H

#include "device.h"

/* Create the kernel device NAME (type wireguard). 0, or -1 with errno
 * (EOPNOTSUPP where the module is missing). */
int kernel_create(const char *name);
void kernel_destroy(const char *name);
/* Make the kernel device match DEV: device keys, port and fwmark, every
 * peer with its AllowedIPs (replaced), and peers gone since the last push
 * removed. Sessions of peers that stay are kept. 0 or a negative errno. */
int kernel_push(struct device *dev);
/* Read the kernel's live fields (handshake time, counters, endpoints,
 * the port it chose) into DEV's peers, before answering "get". */
int kernel_refresh(struct device *dev);

#endif
