/* lib/core/log.c: leveled logging to stderr. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int level = -1;

static int parse_level(const char *s)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	if (!s || !*s)
		return HF_LOG_WARN;
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	if (!strcmp(s, "warning"))
		return HF_LOG_WARN;
	return HF_LOG_WARN;
}

/* Threads (hf-pull's downloads, the pool) log at once: the level is read
 * and set atomically; two first readers both parse HF_LOG, to one value. */
enum hf_log_level hf_log_level(void)
{
	int l = __atomic_load_n(&level, __ATOMIC_RELAXED);

	if (l < 0) {
		l = parse_level(getenv("HF_LOG"));
		__atomic_store_n(&level, l, __ATOMIC_RELAXED);
	}
	return (enum hf_log_level)l;
}

void hf_log_set_level(enum hf_log_level l)
{
	__atomic_store_n(&level, (int)l, __ATOMIC_RELAXED);
}

void hf_log(enum hf_log_level l, const char *fmt, ...)
{
	static const char *const tags[] = { "error", "warning", "info", "debug" };
	char buf[2048];
	va_list ap;

	if ((int)l > (int)hf_log_level())
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* one fprintf so lines from threads do not interleave */
	fprintf(stderr, "hf: %s: %s\n", tags[l], buf);
}
