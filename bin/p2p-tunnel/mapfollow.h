/* mapfollow.h: configure the tunnel from p2p-mapd's watch stream for one
 * host of the map (-m mapd.sock -H HOST). */
#ifndef P2P_TUNNEL_MAPFOLLOW_H
#define P2P_TUNNEL_MAPFOLLOW_H

#include "device.h"

/* Start following; ON_FIRST is called once the first map has been applied
 * (the daemon is then ready). 0 or -1. */
int mapfollow_start(struct device *dev, const char *sock_path, const char *host,
		    void (*on_first)(void));
void mapfollow_stop(void);

#endif
