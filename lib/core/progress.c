/* lib/core/progress.c: a progress bar on stderr when it is a terminal. */
#include "core/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double hf_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void hf_progress_init(struct hf_progress *p, const char *label, uint64_t total,
		      int bytes)
{
	const char *env = getenv("HF_PROGRESS");

	memset(p, 0, sizeof(*p));
	snprintf(p->label, sizeof(p->label), "%s", label ? label : "");
	p->total = total;
	p->bytes = bytes;
	p->start = hf_now();
	p->enabled = isatty(2) && !(env && !strcmp(env, "0"));
}

static void fmt_amount(char *buf, size_t n, double v, int bytes)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
	int u = 0;

	if (!bytes) {
		snprintf(buf, n, "%.0f", v);
		return;
	}
	while (v >= 1000.0 && u < 4) {
		v /= 1000.0;
		u++;
	}
	snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

/* A duration as a person reads it: 0.4s, 7s, 3m05s, 2h46m. */
static void fmt_secs(char *buf, size_t n, double s)
{
	long t = s < 0 ? 0 : s > 359999 ? 359999 : (long)(s + 0.5);

	if (s < 9.95)
		snprintf(buf, n, "%.1fs", s < 0 ? 0.0 : s);
	else if (t < 60)
		snprintf(buf, n, "%lds", t);
	else if (t < 3600)
		snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
	else
		snprintf(buf, n, "%ldh%02ldm", t / 3600, t % 3600 / 60);
}

/* One line: the bar, the amounts, the rate, and the time left (or, when
 * final, the time it took). */
static void draw(struct hf_progress *p, double now, int final)
{
	char done[32], total[32], rate[32], bar[32], when[32];
	double el = now - p->start;
	uint64_t d = p->total && p->done > p->total ? p->total : p->done;
	double r = el > 0 ? d / el : 0;

	fmt_amount(done, sizeof(done), (double)d, p->bytes);
	fmt_amount(rate, sizeof(rate), r, p->bytes);
	if (final)
		fmt_secs(when, sizeof(when), el);
	else if (p->total && r > 0)
		fmt_secs(when, sizeof(when), (p->total - d) / r);
	else
		snprintf(when, sizeof(when), "--");
	if (p->total) {
		int w = 24, fill = (int)((double)d / p->total * w);

		memset(bar, '#', fill);
		memset(bar + fill, '-', w - fill);
		bar[w] = '\0';
		fmt_amount(total, sizeof(total), (double)p->total, p->bytes);
		fprintf(stderr, "\r%s [%s] %3.0f%% %s/%s %s/s %s %s\033[K",
			p->label, bar, 100.0 * d / p->total, done, total,
			rate, final ? "in" : "ETA", when);
	} else {
		fprintf(stderr, "\r%s %s %s/s%s%s\033[K", p->label, done, rate,
			final ? " in " : "", final ? when : "");
	}
	fflush(stderr);
	p->last_draw = now;
}

void hf_progress_update(struct hf_progress *p, uint64_t done)
{
	double now;

	p->done = done;
	if (!p->enabled)
		return;
	now = hf_now();
	if (now - p->last_draw >= 0.1)
		draw(p, now, 0);
}

void hf_progress_finish(struct hf_progress *p)
{
	if (!p->enabled)
		return;
	draw(p, hf_now(), 1);
	fputc('\n', stderr);
}
