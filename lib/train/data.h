/* lib/train/data.h: training data from JSON Lines, tokenized, labelled,
 * packed or padded, shuffled with our own PRNG, sharded by rank, and
 * read batch by batch from a position that can be saved and restored.
 *
 * Records, one JSON object a line (blank lines are skipped):
 *   {"text": s}                 loss on every token
 *   {"prompt": p, "completion": c}
 *                               loss on the completion only
 *   {"messages": [...]}         rendered with the model's chat template;
 *                               loss on the assistant turns only
 *   {"ids": [...], "labels": [...]}
 *                               pre-tokenized ("labels" optional: the ids;
 *                               -100 excludes a position)
 *   {"text": s, "label": k}     sequence classification (encoders), with
 *                               opts.classify
 * Labels are per position and not shifted: a decoder's loss shifts them
 * inside (position i predicts label i + 1), as transformers does. */
#ifndef HF_TRAIN_DATA_H
#define HF_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "gen/gen.h"

struct hf_tok;
struct hf_chat;

#define HF_IGNORE_INDEX (-100)

/* ---- the PRNG: lib/gen's hf_rng, xoshiro256** (Blackman and Vigna
 * 2018) seeded by splitmix64 from a 64-bit seed, so that a run reproduces
 * on any machine and its whole state (four words) fits a checkpoint. ---- */
/* Uniform in [0, n), n > 0: rejection of the top partial range of 2^64,
 * so no value is favoured. */
uint64_t hf_rng_below(struct hf_rng *r, uint64_t n);
/* Uniform float in [0, 1) from the top 24 bits. */
float hf_rng_float(struct hf_rng *r);

/* ---- the data set ---- */

struct hf_data_opts {
	size_t seq_len;		/* longest row; 0: no limit (pack needs one) */
	int pack;		/* concatenate samples into rows of seq_len */
	int truncate;		/* cut a sample longer than seq_len; else it is an
				 * error (without pack) */
	int shuffle;		/* a new permutation of the rows each epoch */
	uint64_t seed;		/* permutation of epoch e: Fisher-Yates with an
				 * hf_rng seeded by seed + e */
	int shift;		/* labels are shifted by the loss (decoders):
				 * token counts skip each row's first label */
	int classify;		/* {"text","label"} records, one label a row */
	int add_eos;		/* text and completion end with eos_token (as
				 * TRL's SFT does) when they do not already */
	int rank, world;	/* this process's shard; world 0 means 1 */
};

struct hf_data;		/* opaque */

/* Read and tokenize every record of path now, so that any bad line is
 * reported before training starts: "<path>:<line>: <what>" for malformed
 * JSON, a record with none of the known keys, a sample longer than
 * seq_len without truncation, a chat record whose template raises, and
 * "<path>: no records" for an empty file. tok is needed unless every
 * record is {"ids"}; chat only for {"messages"} records (NULL: such a
 * record is an error naming the line). Both are borrowed during the call
 * only. */
int hf_data_load(struct hf_data **out, const char *path, struct hf_tok *tok,
		 const struct hf_chat *chat, const struct hf_data_opts *o,
		 struct hf_err *err);
void hf_data_free(struct hf_data *d);	/* NULL is fine */

/* Rows (packed rows, or one a sample) and samples read. */
size_t hf_data_rows(const struct hf_data *d);
size_t hf_data_samples(const struct hf_data *d);
/* Row i in file (unshuffled) order, borrowed until hf_data_free(). */
const int32_t *hf_data_row(const struct hf_data *d, size_t i, size_t *len,
			   const int32_t **labels);
/* The id padding uses: pad_token, else eos_token, else 0. */
int32_t hf_data_pad_id(const struct hf_data *d);

/* Where the next batch starts: epoch and row index in that epoch's
 * permutation. Saved in checkpoints; setting it resumes exactly. */
struct hf_data_pos {
	uint64_t epoch;
	uint64_t index;
};

struct hf_data_pos hf_data_tell(const struct hf_data *d);
void hf_data_seek(struct hf_data *d, struct hf_data_pos p);

/* One batch for this rank. Rows are right-padded to the longest row of
 * the global batch: ids with the pad id, labels with -100, mask 0. */
struct hf_batch {
	size_t rows, T;		/* this rank's rows (may be 0 in the last batch
				 * of an epoch) and columns */
	int32_t *ids;		/* (rows, T) */
	int32_t *labels;	/* (rows, T); classify: the ids, unused */
	int32_t *mask;		/* (rows, T): 1 token, 0 padding */
	int32_t *cls;		/* (rows) class labels; -1 unless classify */
	size_t tokens;		/* labels this rank's loss counts (shifted for
				 * decoders; classify: rows) */
	size_t global_rows;	/* rows of the batch over all ranks */
	size_t global_tokens;	/* tokens over all ranks */
	uint64_t epoch;		/* the epoch these rows belong to */
	int last;		/* the last batch of its epoch */
	size_t cap, cls_cap;	/* allocated rows * T, and rows of cls */
};

/* Fill b with the next global batch of batch * world rows (fewer at the
 * end of an epoch: batches never span epochs) and advance the position;
 * this rank gets rows [rank * batch, (rank + 1) * batch) of it. b is
 * reused between calls; zero-initialise it and free it with
 * hf_batch_free(). */
int hf_data_next(struct hf_data *d, size_t batch, struct hf_batch *b,
		 struct hf_err *err);
void hf_batch_free(struct hf_batch *b);

/* Optimizer steps per epoch for batch rows a rank and accum micro-batches
 * a step: ceil(ceil(rows / (batch * world)) / accum). */
uint64_t hf_data_steps_per_epoch(const struct hf_data *d, size_t batch,
				 size_t accum);

#endif
