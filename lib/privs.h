/* privs.h: become an unprivileged user, keeping only the capabilities a
 * daemon needs (p2p-tunnel keeps CAP_NET_ADMIN; most keep none). */
#ifndef P2P_PRIVS_H
#define P2P_PRIVS_H

#include <pwd.h>
#include <sys/capability.h>

/* Switch to PW's uid and gid (no supplementary groups) and keep exactly
 * the N capabilities in KEEP, effective and permitted. 0, or -1 with
 * errno. */
int privs_drop(const struct passwd *pw, const cap_value_t *keep, int n);

#endif
