/* tun.h: the TUN device and its configuration through rtnetlink (libnl-route):
 * link state and MTU, addresses, routes. */
#ifndef P2P_TUNNEL_TUN_H
#define P2P_TUNNEL_TUN_H

#include "addr.h"

/* Create (or attach to) the TUN interface NAME; returns a non-blocking fd.
 * The interface lives as long as the fd. *VNET is set when the device
 * carries virtio headers with TSO and checksum offload. */
int tun_open(const char *name, int *vnet);
/* Set the MTU and bring the link up. */
int tun_up(const char *name, unsigned mtu);
/* Addresses and routes on the interface. ERR gets libnl's reason. */
int tun_addr(const char *name, const struct prefix *p, int add, const char **err);
int tun_route(const char *name, const struct prefix *p, int add, const char **err);

#endif
