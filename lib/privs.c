/* privs.c: setuid keeps capabilities only when asked (PR_SET_KEEPCAPS);
 * after it, the kept set is cut down to KEEP and made effective again. */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <sys/prctl.h>
#include <unistd.h>

int privs_drop(const struct passwd *pw, const cap_value_t *keep, int n)
{
	cap_t caps;
	int rc = -1, saved;

	if (n > 0 && prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) < 0)
		return -1;
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
		return -1;
	caps = cap_init(); /* all clear */
	if (!caps)
		return -1;
	if ((n == 0 || (cap_set_flag(caps, CAP_PERMITTED, n, keep, CAP_SET) == 0 &&
			cap_set_flag(caps, CAP_EFFECTIVE, n, keep, CAP_SET) == 0)) &&
	    cap_set_proc(caps) == 0)
		rc = 0;
	saved = errno;
	cap_free(caps);
	if (n > 0)
		prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L);
	errno = saved;
	return rc;
}
