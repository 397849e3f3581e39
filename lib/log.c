/* log.c: stderr logging in the s6 style. Each message is formatted into one
 * buffer and written with a single write(2), so concurrent writers on the
 * same pipe never interleave within a line. */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *prog_name = "p2p";
/* Info is on by default: starts, reloads and stops belong in the s6 log. */
static int verbosity = 1;

static const char *const level_names[] = {
	[LOG_FATAL] = "fatal",
	[LOG_ERROR] = "error",
	[LOG_WARNING] = "warning",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

void log_init(const char *prog)
{
	const char *slash = strrchr(prog, '/');
	prog_name = slash ? slash + 1 : prog;
}

const char *log_prog(void)
{
	return prog_name;
}

void log_set_verbosity(int v)
{
	verbosity = v;
}

int log_enabled(enum log_level level)
{
	/* Errors always; warnings unless silenced with -1 (the fuzz targets). */
	if (level <= LOG_ERROR)
		return 1;
	return verbosity >= (int)level - (int)LOG_WARNING;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048];
	int saved_errno = errno;
	int n, m;

	if (!log_enabled(level))
		return;
	/* The name is bounded so the message always has room. */
	n = snprintf(line, sizeof line, "%.100s: %s: ", prog_name, level_names[level]);
	if (n < 0)
		return;
	m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2; /* truncated: still one whole line */
	/* A message must never break the one-line-per-event rule. */
	for (char *p = line; p < line + n; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
	errno = saved_errno;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_fatal(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_FATAL, fmt, ap);
	va_end(ap);
	exit(code);
}

void log_usage(const char *usage)
{
	fprintf(stderr, "%s: usage: %s\n", prog_name, usage);
	exit(EXIT_USAGE);
}
