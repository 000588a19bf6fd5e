/* lib/train/peft.h: PEFT LoRA adapters as PEFT saves them (docs
 * peft-lora.md): adapter_config.json (LoraConfig's fields and defaults),
 * adapter_model.safetensors keyed base_model.model.<module>.lora_A.weight
 * (r, in) and .lora_B.weight (out, r), target matching as PEFT's
 * check_target_module_exists does it, and an adapter applied to a model
 * (lib/model/adapter.h), unmerged or merged.
 *
 * What we write: float32 tensors (the training dtype of hf-finetune; a
 * float32 base trains float32 A and B, as PEFT saves them), metadata
 * {"format": "pt"}, the config with every key PEFT 0.17 writes, sorted,
 * 2-space indent, no final newline. What we read: F32, F16 or BF16 A and
 * B, and the Linears of modules_to_save (a classifier head) whole; DoRA,
 * lora_bias, embedding adapters, trained biases and non-Linear
 * modules_to_save are refused with a message naming them. */
#ifndef HF_TRAIN_PEFT_H
#define HF_TRAIN_PEFT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "model/adapter.h"

/* The PEFT release whose file layout we follow; written as peft_version. */
#define HF_PEFT_VERSION "0.17.0"

/* A LoraConfig. Strings are owned (freed by hf_peft_config_free). */
struct hf_peft_config {
	char *task_type;	/* "CAUSAL_LM", "SEQ_CLS", ... or NULL */
	char *base_model;	/* base_model_name_or_path, or NULL */
	char *revision;		/* or NULL */
	size_t r;		/* 8 */
	double alpha;		/* lora_alpha, 8 */
	double dropout;		/* lora_dropout, 0 */
	/* target_modules: a list of names (ntargets), a regex that must
	 * match the whole module name (target_regex), "all-linear", or
	 * nothing given (PEFT's default for the model_type) */
	char **targets;
	size_t ntargets;
	char *target_regex;
	int all_linear;
	char **exclude;		/* exclude_modules, the same kinds */
	size_t nexclude;
	char *exclude_regex;
	char *bias;		/* "none" */
	int fan_in_fan_out, use_rslora, use_dora, lora_bias, inference_mode;
	int init_lora_weights;	/* 1 true, 0 false; else init_str */
	char *init_str;		/* "gaussian", "pissa", ... or NULL */
	char **modules_to_save;
	size_t nmodules_to_save;
	int64_t *layers;	/* layers_to_transform, or NULL */
	size_t nlayers;
	char **layers_pattern;
	size_t nlayers_pattern;
	json_t *rank_pattern;	/* objects {pattern: value}, never NULL */
	json_t *alpha_pattern;
};

/* LoraConfig()'s defaults (task_type CAUSAL_LM, no targets given). */
int hf_peft_config_init(struct hf_peft_config *c, struct hf_err *err);
void hf_peft_config_free(struct hf_peft_config *c);	/* zeroed is fine */
/* Read adapter_config.json at path; errors name the file and key. */
int hf_peft_config_load(struct hf_peft_config *c, const char *path,
			struct hf_err *err);
/* Write it as PEFT does: json.dumps(asdict(config), indent=2,
 * sort_keys=True), through a temporary file renamed into place. */
int hf_peft_config_write(const struct hf_peft_config *c, const char *path,
			 struct hf_err *err);
/* The same text into a malloc'd string. */
int hf_peft_config_dump(const struct hf_peft_config *c, char **out,
			struct hf_err *err);

/* "base_model.model." + module + "." + what ("lora_A.weight", ...). */
void hf_peft_key(char *buf, size_t cap, const char *module,
		 const char *what);

/* Whether module name key is a target (PEFT's check_target_module_exists
 * on a config whose target_modules is a list, a regex or all-linear
 * already resolved by hf_peft_targets): exclude_modules, modules_to_save,
 * the list (equal, or ending in "." + entry) or the regex (full match),
 * layers_to_transform and layers_pattern. */
int hf_peft_match(const struct hf_peft_config *c, const char *key);

/* The modules of mods that c targets, as indices into mods (*out,
 * malloc'd), with the rank and alpha of each (rank_pattern,
 * alpha_pattern), for a model of model_type. "all-linear": every module
 * but the output head (and the score/classifier head of a SEQ_CLS task
 * when there is no output head). No target given: PEFT's default for the
 * model_type. Nothing matched: HF_ENOTFOUND naming the targets and the
 * model's module names; where prefixes the errors. */
struct hf_peft_target {
	size_t module;		/* index into mods */
	size_t r;
	double alpha;
	float scale;		/* alpha / r, or / sqrt(r) with use_rslora */
};
int hf_peft_targets(const struct hf_peft_config *c, const char *model_type,
		    const struct hf_lin_module *mods, size_t nmods,
		    struct hf_peft_target **out, size_t *n, const char *where,
		    struct hf_err *err);

/* ---- an adapter directory ---- */

struct hf_peft;		/* opaque: the config and the mapped tensors */

/* dir holds adapter_config.json and adapter_model.safetensors. */
int hf_peft_open(struct hf_peft **out, const char *dir, struct hf_err *err);
void hf_peft_free(struct hf_peft *p);	/* NULL is fine */
/* Borrowed until hf_peft_free(). */
const struct hf_peft_config *hf_peft_config(const struct hf_peft *p);

/* Resolve p's targets on mods and read each target's A (r, in) and B
 * (out, r) as float32 (malloc'd: hf_peft_deltas_free()), then the Linears
 * of modules_to_save that the file holds whole (W set). Errors: a target whose tensors are missing or of the
 * wrong shape or dtype, a tensor that names no target, a feature we
 * refuse; each names the file and tensor. */
struct hf_peft_delta {
	size_t module;		/* index into mods */
	size_t r;
	float scale;
	float *A, *B;		/* NULL for a module of modules_to_save */
	/* modules_to_save: the whole trained Linear, W (out, in) float32 as
	 * the model multiplies by it (a Conv1D's transposed from its stored
	 * (in, out)) and its bias (out) or NULL (the base's stays) */
	float *W, *bias;
};
int hf_peft_deltas(const struct hf_peft *p, const char *model_type,
		   const struct hf_lin_module *mods, size_t nmods,
		   struct hf_peft_delta **out, size_t *n, struct hf_err *err);
void hf_peft_deltas_free(struct hf_peft_delta *d, size_t n);

/* Run m with the adapter in dir: unmerged (merge 0) or folded into
 * float32 weights (merge 1). */
int hf_peft_apply(struct hf_model *m, const char *dir, int merge,
		  struct hf_err *err);

/* ---- writing one (hf-finetune) ---- */

struct hf_peft_tensors {
	const char *module;	/* "model.layers.0.self_attn.q_proj" */
	const float *A, *B;	/* (r, in), (out, r) */
	size_t r, in, out;
};
/* dir/adapter_config.json and dir/adapter_model.safetensors (float32),
 * each written to a temporary name and renamed; dir is made if absent.
 * A config with all_linear is written as PEFT saves it after resolving
 * it: target_modules the full names of the modules in t. */
int hf_peft_save(const char *dir, const struct hf_peft_config *c,
		 const struct hf_peft_tensors *t, size_t n, struct hf_err *err);

/* ---- merged into the base (merge.c; also in export/export.h) ---- */

/* Fold the adapter in adapter_dir into the float weights of the model in
 * base_dir and write a complete HF model directory at out_dir (made as
 * "<out_dir>.tmp.<pid>", renamed when complete): W + scale * B A per
 * targeted module in float32 (transposed for GPT-2's Conv1D), cast back
 * to the stored dtype, as PEFT's merge_and_unload and save_pretrained;
 * every other tensor (one model.safetensors) and file as the base has
 * it. An existing out_dir is HF_EINVAL; a quantized base, a module tied
 * to the embeddings, an adapter feature we do not read: HF_EUNSUPPORTED
 * naming it; targets that match nothing: HF_ENOTFOUND. */
int hf_merge_adapter(const char *base_dir, const char *adapter_dir,
		     const char *out_dir, struct hf_err *err);

#endif
