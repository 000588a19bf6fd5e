/* lib/quant/calib.h: the calibration set of hf-quantize --method gptq:
 * token ids cut into equal sequences, from a file of text lines, of
 * {"text": ...} JSON Lines (tokenized with the model's tokenizer) or of
 * {"ids": [...]} records. */
#ifndef HF_QUANT_CALIB_H
#define HF_QUANT_CALIB_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct hf_calib {
	size_t n, T;		/* sequences, tokens each */
	int32_t *ids;		/* (n, T), owned */
};

/* Read path. A file whose first non-blank line starts with '{' is JSON
 * Lines, each record {"text": "..."} or {"ids": [int, ...]}; else every
 * non-empty line is one text. Texts are encoded with model_dir's
 * tokenizer.json, special tokens added as the tokenizer's template adds
 * them (as GPTQModel's tokenizer(text) call does). The tokens of all
 * records, in file order, are concatenated and cut into sequences of
 * seq_len (a remainder shorter than seq_len is dropped, unless it is all
 * there is: then one shorter sequence); samples > 0 keeps the first
 * samples of them. (GPTQModel pads per-example batches instead; equal
 * lengths let a layer run all sequences as one batch with no mask.)
 * vocab > 0: ids must be below it. Errors, one line naming the file and
 * line: an empty file or no tokens, invalid UTF-8, bad JSON or a record
 * with neither key, ids out of range, text with no tokenizer. */
int hf_calib_load(struct hf_calib *c, const char *path,
		  const char *model_dir, size_t samples, size_t seq_len,
		  size_t vocab, struct hf_err *err);
void hf_calib_free(struct hf_calib *c);	/* zeroes it; zeroed is fine */

#endif
