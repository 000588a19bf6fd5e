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

static void draw(struct hf_progress *p, double now)
{
	char done[32], total[32], rate[32], bar[32];
	double el = now - p->start;
	double r = el > 0 ? p->done / el : 0;

	fmt_amount(done, sizeof(done), (double)p->done, p->bytes);
	fmt_amount(rate, sizeof(rate), r, p->bytes);
	if (p->total) {
		int w = 24, fill = (int)((double)p->done / p->total * w);
		double eta = r > 0 ? (p->total - p->done) / r : 0;

		if (fill > w)
			fill = w;
		memset(bar, '#', fill);
		memset(bar + fill, '-', w - fill);
		bar[w] = '\0';
		fmt_amount(total, sizeof(total), (double)p->total, p->bytes);
		fprintf(stderr, "\r%s [%s] %3.0f%% %s/%s %s/s ETA %.0fs\033[K",
			p->label, bar, 100.0 * p->done / p->total, done, total,
			rate, eta);
	} else {
		fprintf(stderr, "\r%s %s %s/s\033[K", p->label, done, rate);
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
		draw(p, now);
}

void hf_progress_finish(struct hf_progress *p)
{
	if (!p->enabled)
		return;
	draw(p, hf_now());
	fputc('\n', stderr);
}
