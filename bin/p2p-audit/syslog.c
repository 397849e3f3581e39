/* syslog.c: a record line as an RFC 5424 message, framed by octet counting
 * (RFC 6587 3.4.1, which RFC 5425 requires over TLS):
 *
 *   LEN SP <PRI>1 SP TIMESTAMP SP HOSTNAME SP p2p-audit SP - SP MSGID SP - SP LINE
 *
 * PRI is FACILITY * 8 + severity: 5 (notice) for a denied request, 6
 * (informational) otherwise. TIMESTAMP and HOSTNAME are the record's time
 * and host, MSGID its type, and the message is the record line itself,
 * unchanged, so that whoever stores it can verify the chain. The line is
 * ASCII (non-ASCII characters are escaped in the JSON), so the message is
 * MSG-ANY without a byte order mark. */
#include "audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(char **buf, size_t *len, size_t *cap, size_t more)
{
	if (*len + more > *cap) {
		size_t c = *cap ? *cap : 65536;
		char *p;

		while (c < *len + more)
			c *= 2;
		p = realloc(*buf, c);
		if (!p)
			return -1;
		*buf = p;
		*cap = c;
	}
	return 0;
}

int syslog_frame(char **buf, size_t *len, size_t *cap, int facility, const char *line,
		 size_t linelen, const struct record_info *info)
{
	char head[512], count[24];
	int hn, cn;
	size_t msglen;

	hn = snprintf(head, sizeof head, "<%d>1 %s %s p2p-audit - %s - ",
		      facility * 8 + (info->deny ? 5 : 6), info->time, info->host, info->type);
	if (hn < 0 || (size_t)hn >= sizeof head)
		return -1;
	msglen = (size_t)hn + linelen;
	cn = snprintf(count, sizeof count, "%zu ", msglen);
	if (cn < 0 || reserve(buf, len, cap, (size_t)cn + msglen) < 0)
		return -1;
	memcpy(*buf + *len, count, (size_t)cn);
	memcpy(*buf + *len + cn, head, (size_t)hn);
	memcpy(*buf + *len + cn + hn, line, linelen);
	*len += (size_t)cn + msglen;
	return 0;
}
