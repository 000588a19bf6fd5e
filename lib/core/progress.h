/* lib/core/progress.h: a progress bar on stderr, drawn only on a terminal. */
#ifndef HF_CORE_PROGRESS_H
#define HF_CORE_PROGRESS_H

#include <stdint.h>

struct hf_progress {
	char label[64];
	uint64_t total;		/* 0: unknown, shows a count only */
	uint64_t done;
	double start;		/* seconds, monotonic */
	double last_draw;
	int enabled;		/* stderr is a terminal and HF_PROGRESS != 0 */
	int bytes;		/* show sizes as bytes (KB/MB/GB) and a rate */
};

/* Start a bar; label is copied. bytes: format counts as byte sizes. */
void hf_progress_init(struct hf_progress *p, const char *label, uint64_t total,
		      int bytes);
/* Set the amount done; redraws at most 10 times a second. */
void hf_progress_update(struct hf_progress *p, uint64_t done);
/* Draw the final state and end the line. */
void hf_progress_finish(struct hf_progress *p);

/* Seconds from a monotonic clock. */
double hf_now(void);

#endif
