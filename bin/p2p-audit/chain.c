/* chain.c: the files that hold one chain, and the end of a file as found
 * after a crash. */
#include "audit.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int chain_rotated_name(const char *name, uint64_t *first)
{
	uint64_t v = 0;

	if (strlen(name) != AUDIT_ROTATED_LEN || strncmp(name, "audit-", 6) != 0 ||
	    strcmp(name + 26, ".log") != 0)
		return 0;
	for (int i = 6; i < 26; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		if (v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	if (v == 0)
		return 0;
	*first = v;
	return 1;
}

static int by_first(const void *a, const void *b)
{
	const struct chain_file *x = a, *y = b;

	/* audit.log (first 0) goes last. */
	if (x->first == 0 || y->first == 0)
		return (x->first == 0) - (y->first == 0);
	return x->first < y->first ? -1 : x->first > y->first;
}

int chain_list(const char *dir, struct chain_file **files, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct chain_file *list = NULL;
	size_t count = 0, cap = 0;

	*files = NULL;
	*n = 0;
	if (!d)
		return -1;
	errno = 0;
	while ((de = readdir(d))) {
		uint64_t first = 0;

		if (strcmp(de->d_name, AUDIT_CURRENT) != 0 && !chain_rotated_name(de->d_name, &first))
			continue;
		if (count == cap) {
			struct chain_file *more;

			cap = cap ? 2 * cap : 16;
			more = realloc(list, cap * sizeof *list);
			if (!more) {
				free(list);
				closedir(d);
				errno = ENOMEM;
				return -1;
			}
			list = more;
		}
		memcpy(list[count].name, de->d_name, strlen(de->d_name) + 1); /* checked above */
		list[count].first = first;
		count++;
		errno = 0;
	}
	if (errno) {
		int saved = errno;

		free(list);
		closedir(d);
		errno = saved;
		return -1;
	}
	closedir(d);
	if (count)
		qsort(list, count, sizeof *list, by_first);
	*files = list;
	*n = count;
	return 0;
}

int chain_tail(const char *buf, size_t len, int whole, size_t *torn, size_t *start,
	       size_t *linelen)
{
	size_t end = len, s;

	*torn = 0;
	*start = 0;
	*linelen = 0;
	if (len == 0)
		return 0;
	/* Bytes after the last newline are a line the crash cut short. */
	while (end > 0 && buf[end - 1] != '\n')
		end--;
	*torn = len - end;
	if (end == 0)
		return whole && len <= AUDIT_LINE_MAX ? 0 : -1;
	if (*torn >= AUDIT_LINE_MAX)
		return -1;
	s = end - 1;
	while (s > 0 && buf[s - 1] != '\n')
		s--;
	if (s == 0 && !whole)
		return -1;  /* the line goes on before the window: over the limit */
	if (end - s > AUDIT_LINE_MAX)
		return -1;
	*start = s;
	*linelen = end - 1 - s;
	return 1;
}
