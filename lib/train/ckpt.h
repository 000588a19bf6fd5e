/* lib/train/ckpt.h: training checkpoints, written whole or not at all,
 * and restored bit for bit.
 *
 * A checkpoint is a directory:
 *   trainer_state.json     {"format": "hf-finetune/1", "step", "data_epoch",
 *                           "data_index", "rng": ["0x..." x4], "options",
 *                           "config"} (config: the base model's
 *                           config.json, to refuse another model)
 *   optimizer.safetensors  "<param>.exp_avg", "<param>.exp_avg_sq" (F32),
 *                           __metadata__ "step"
 *   <weights>.safetensors  the trainable parameters (F32), named by the
 *                           caller's file (model.safetensors for full
 *                           fine-tuning, adapter_model.safetensors for LoRA)
 *   + whatever else the caller writes (config.json, tokenizer files ...)
 * Everything is written under a temporary directory beside the target
 * and renamed into place at the end; an existing checkpoint of the same
 * name is swapped out atomically (renameat2 RENAME_EXCHANGE) and removed
 * only after the new one is in place, so a crash leaves the last good one. */
#ifndef HF_TRAIN_CKPT_H
#define HF_TRAIN_CKPT_H

#include <jansson.h>
#include <stdint.h>

#include "core/err.h"
#include "train/data.h"
#include "train/optim.h"

struct hf_ckpt;		/* opaque: a checkpoint being written */

/* Create the temporary directory for dir (its parent must exist). */
int hf_ckpt_begin(struct hf_ckpt **out, const char *dir, struct hf_err *err);
/* The temporary directory, for the caller's own files; borrowed. */
const char *hf_ckpt_tmpdir(const struct hf_ckpt *ck);
/* Rename into place as dir; frees ck whatever happens. */
int hf_ckpt_commit(struct hf_ckpt *ck, struct hf_err *err);
/* Remove the temporary directory and free ck (NULL is fine). */
void hf_ckpt_abort(struct hf_ckpt *ck);

/* The parameters as F32 tensors into <dir>/<file> (with metadata
 * {"format": "pt"}), written to a temporary name and renamed. dir is a
 * checkpoint's hf_ckpt_tmpdir() or any directory (a final model). */
int hf_ckpt_write_params(const char *dir, const char *file,
			 const struct hf_params *ps, struct hf_err *err);
/* The moments and step of a into <tmp>/optimizer.safetensors. */
int hf_ckpt_write_optim(struct hf_ckpt *ck, struct hf_adamw *a,
			const struct hf_params *ps, struct hf_err *err);

/* What a checkpoint records besides tensors. */
struct hf_train_state {
	uint64_t step;		/* optimizer steps taken */
	struct hf_data_pos pos;	/* where the next batch starts */
	struct hf_rng rng;	/* the training RNG (dropout) */
	json_t *options;	/* the run's options (object, borrowed when
				 * writing; a new reference when read) */
	json_t *config;		/* the base model's config.json, same */
};

int hf_ckpt_write_state(struct hf_ckpt *ck, const struct hf_train_state *st,
			struct hf_err *err);
/* Copy into dir (as hf_ckpt_write_params) the files of model_dir that
 * make a directory of weights a model directory: config.json,
 * generation_config.json, tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json, tokenizer.model, chat_template.jinja, those
 * that exist. f32: config.json's torch_dtype (and dtype) become
 * "float32", as the weights are written. */
int hf_ckpt_copy_model_files(const char *dir, const char *model_dir,
			     int f32, struct hf_err *err);

/* Remove checkpoint dir and everything in it, if it is one (it holds
 * trainer_state.json); 0 if it was removed or did not exist. */
int hf_ckpt_remove(const char *dir, struct hf_err *err);

/* ---- resuming ---- */

/* dir itself when it holds trainer_state.json, else its checkpoint-<N>
 * subdirectory with the largest N that does; *out is malloc'd. None:
 * HF_ENOTFOUND naming dir. */
int hf_ckpt_find(char **out, const char *dir, struct hf_err *err);

/* Read trainer_state.json of checkpoint dir into st (options and config
 * are new references: hf_train_state_clear() drops them). */
int hf_ckpt_read_state(const char *dir, struct hf_train_state *st,
		       struct hf_err *err);
void hf_train_state_clear(struct hf_train_state *st);

/* HF_EINVAL unless config (the model being trained) equals the one the
 * checkpoint at dir was made from, ignoring _name_or_path and
 * transformers_version; the message names dir and the first key that
 * differs. */
int hf_ckpt_check_config(const char *dir, const struct hf_train_state *st,
			 const json_t *config, struct hf_err *err);

/* Fill every parameter of ps from <dir>/<file>: each must be there as
 * F32 of the same shape (errors name the file and the tensor). */
int hf_ckpt_read_params(const char *dir, const char *file,
			struct hf_params *ps, struct hf_err *err);
/* Fill a's moments and step from <dir>/optimizer.safetensors. */
int hf_ckpt_read_optim(const char *dir, struct hf_adamw *a,
		       const struct hf_params *ps, struct hf_err *err);

/* ---- signals ---- */

/* SIGINT and SIGTERM set a flag instead of killing the process, so the
 * loop can save a resumable checkpoint and exit 128 + signal (130, 143). */
void hf_ckpt_signals_install(void);
/* The signal received since install (SIGINT or SIGTERM), or 0. */
int hf_ckpt_signal(void);
/* Back to the default actions. */
void hf_ckpt_signals_restore(void);

#endif
