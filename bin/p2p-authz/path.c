/* path.c: the one form of a request path that routes are matched on.
 *
 * Two spellings of one path must never reach different routes, or
 * "/public/..%2Falice" would pass as /public and be served as /alice. So
 * the path is brought to a normal form (RFC 3986 6.2.2: unreserved
 * characters decoded, escapes in upper case, dot segments removed) and
 * repeated slashes merged; what cannot be made unambiguous (an escaped
 * slash, backslash or NUL, which upstreams decode differently, and ';',
 * which some take path parameters off at) is refused.
 * The proxy forwards the normal form, so the upstream serves exactly the
 * path that was authorised. */
#include <string.h>

#include "authz.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* Decode escapes of unreserved characters, upper-case the others. */
static int decode(const char *in, size_t len, char *out, size_t outsize, const char **why)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (o + 4 > outsize) {
			*why = "path too long";
			return -1;
		}
		if (c <= 0x20 || c >= 0x7f) {
			*why = "control, space or non-ASCII byte in the path";
			return -1;
		}
		if (c == '\\') {
			*why = "backslash in the path";
			return -1;
		}
		if (c == ';') {
			/* Servlet containers (Tomcat, Jetty) take ";params" off
			 * each segment before they route: /static/..;/admin is
			 * /admin to them, a file "..;" under /static here */
			*why = "';' in the path (path parameters, read apart by some upstreams)";
			return -1;
		}
		if (c != '%') {
			out[o++] = (char)c;
			continue;
		}
		if (i + 2 >= len) {
			*why = "truncated percent escape";
			return -1;
		}
		if (hexval(in[i + 1]) < 0 || hexval(in[i + 2]) < 0) {
			*why = "bad percent escape";
			return -1;
		}
		c = (unsigned char)(hexval(in[i + 1]) * 16 + hexval(in[i + 2]));
		if (c == '/' || c == '\\' || c == 0) {
			*why = "escaped slash, backslash or NUL in the path";
			return -1;
		}
		if (unreserved(c)) {
			out[o++] = (char)c;
		} else {
			static const char hex[] = "0123456789ABCDEF";

			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
		i += 2;
	}
	out[o] = '\0';
	return 0;
}

/* Merge slashes and remove "." and ".." segments in place (RFC 3986
 * 5.2.4, with ".." above the root staying at the root). */
static void remove_dots(char *p)
{
	char *out = p + 1;       /* p[0] is '/' */
	const char *in = p + 1;

	while (*in) {
		const char *end = strchr(in, '/');
		size_t n = end ? (size_t)(end - in) : strlen(in);

		if (n == 0 || (n == 1 && in[0] == '.')) {
			/* "//" or "/./": nothing to keep */
		} else if (n == 2 && in[0] == '.' && in[1] == '.') {
			/* back to the slash before the last segment */
			if (out > p + 1) {
				out--;                 /* the slash after it */
				while (out > p + 1 && out[-1] != '/')
					out--;
			}
		} else {
			memmove(out, in, n);
			out += n;
			if (end)
				*out++ = '/';
		}
		if (!end)
			break;
		/* a trailing "." or ".." or an empty last segment keeps the slash */
		in = end + 1;
		if (!*in && out[-1] != '/')
			*out++ = '/';
	}
	*out = '\0';
}

int path_normalise(const char *target, char *out, size_t outsize, const char **why)
{
	size_t len = strcspn(target, "?#");

	if (target[0] != '/') {
		*why = "the path does not begin with /";
		return -1;
	}
	if (outsize < 2) {
		*why = "path too long";
		return -1;
	}
	if (decode(target, len, out, outsize, why) < 0)
		return -1;
	remove_dots(out);
	return 0;
}
