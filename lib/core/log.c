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

enum hf_log_level hf_log_level(void)
{
	if (level < 0)
		level = parse_level(getenv("HF_LOG"));
	return (enum hf_log_level)level;
}

void hf_log_set_level(enum hf_log_level l)
{
	level = l;
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
