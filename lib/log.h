/* log.h: one line per event on stderr, "PROG: level: text" (s6-log adds the time). */
#ifndef P2P_LOG_H
#define P2P_LOG_H

#include <stdarg.h>

enum log_level { LOG_FATAL, LOG_ERROR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

/* Exit codes shared by every program (see DESIGN.md). */
enum {
	EXIT_OK = 0,
	EXIT_NEGATIVE = 1,
	EXIT_USAGE = 100,
	EXIT_CONFIG = 102,
	EXIT_SYSTEM = 111,
};

void log_init(const char *prog);
const char *log_prog(void);
/* -1: errors only; 0: and warnings; 1 (the default): and info; 2 (-v): and debug. */
void log_set_verbosity(int verbosity);
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Log at level fatal and exit with CODE. */
void log_fatal(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
/* Print "usage: USAGE" and exit 100. */
void log_usage(const char *usage) __attribute__((noreturn));

#endif
