/* lib/train/merge.c: a PEFT LoRA adapter folded into its base model and
 * written as a plain HF model directory (PEFT's merge_and_unload, then
 * save_pretrained): W + scale * B A per targeted module (transposed for
 * GPT-2's Conv1D), computed in float32 and cast back to the weight's
 * stored dtype as PEFT does on the CPU; every other tensor and file as
 * the base has it. hf-run --merge -o and hf-export --merge-adapter. */
#include "train/peft.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "model/adapter.h"
#include "model/model.h"
#include "st/st.h"
#include "tensor/dtype.h"
#include "train/lora.h"

/* The merged tensor that replaces a checkpoint tensor. */
struct merged {
	char tensor[220];
	void *data;		/* in the tensor's dtype */
};

static int copy_file(const char *src, const char *dst, struct hf_err *err)
{
	struct hf_atomic a;
	char *buf;
	size_t len;
	int rc;

	if ((rc = hf_file_read(&buf, &len, src, err)))
		return rc;
	if ((rc = hf_atomic_open(&a, dst, err))) {
		free(buf);
		return rc;
	}
	if (len && fwrite(buf, 1, len, a.f) != len) {
		rc = hf_err_errno(err, "%s", dst);
		hf_atomic_abort(&a);
	} else {
		rc = hf_atomic_commit(&a, err);
	}
	free(buf);
	return rc;
}

/* Every plain file of the base but its weights: config, tokenizer,
 * generation config, chat template, model card. */
static int copy_files(const char *base, const char *out, struct hf_err *err)
{
	DIR *d = opendir(base);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return hf_err_errno(err, "%s", base);
	while (!rc && (e = readdir(d))) {
		const char *n = e->d_name;
		size_t l = strlen(n);
		char *s, *t;

		if (n[0] == '.' || (l > 12 && !strcmp(n + l - 12, ".safetensors")) ||
		    !strcmp(n, "model.safetensors.index.json") ||
		    !strncmp(n, "adapter_", 8))
			continue;
		s = hf_path_join(base, n);
		t = hf_path_join(out, n);
		if (!s || !t)
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		else if (hf_file_exists(s) && !hf_dir_exists(s))
			rc = copy_file(s, t, err);
		free(s);
		free(t);
	}
	closedir(d);
	return rc;
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char *p;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if ((p = hf_path_join(dir, e->d_name))) {
			unlink(p);
			free(p);
		}
	}
	closedir(d);
	rmdir(dir);
}

/* n float32 values as t's dtype (F32, F16, BF16) into *out; w is
 * consumed (freed or returned). */
static int to_stored(float *w, const struct hf_tensor *t, size_t n, void **out,
		     struct hf_err *err)
{
	if (t->dtype == HF_DTYPE_F32) {
		*out = w;
		return 0;
	}
	if (!(*out = malloc(n * 2))) {
		free(w);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	if (t->dtype == HF_DTYPE_F16)
		hf_f32_to_f16_n(*out, w, n);
	else
		hf_f32_to_bf16_n(*out, w, n);
	free(w);
	return 0;
}

static int float_dtype(const struct hf_tensor *t, struct hf_err *err)
{
	if (t->dtype == HF_DTYPE_F32 || t->dtype == HF_DTYPE_F16 ||
	    t->dtype == HF_DTYPE_BF16)
		return 0;
	return hf_err_set(err, HF_EUNSUPPORTED,
			  "tensor '%s' has dtype %s: adapters merge into F32, "
			  "F16 or BF16 weights", t->name, hf_dtype_name(t->dtype));
}

/* modules_to_save: the trained Linear's W (out, in) in t's layout
 * (Conv1D: (in, out)) and dtype. */
static int whole_tensor(const struct hf_tensor *t, const struct hf_lin_module *md,
			const float *W, void **out, struct hf_err *err)
{
	size_t n = md->in * md->out;
	float *w;

	*out = NULL;
	if (float_dtype(t, err))
		return err->code;
	if ((uint64_t)n != hf_tensor_numel(t))
		return hf_err_set(err, HF_EFORMAT,
				  "tensor '%s' does not hold module '%s' (%zu x %zu)",
				  t->name, md->name, md->out, md->in);
	if (!(w = malloc(n * sizeof(float))))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (size_t o = 0; o < md->out; o++)
		for (size_t i = 0; i < md->in; i++)
			w[md->conv1d ? i * md->out + o : o * md->in + i] =
				W[o * md->in + i];
	return to_stored(w, t, n, out, err);
}

/* W (as stored in t) + the delta, back in t's dtype, into *out. */
static int merge_tensor(const struct hf_tensor *t, const struct hf_lin_module *md,
			const struct hf_peft_delta *d, void **out,
			struct hf_err *err)
{
	size_t n = md->in * md->out;
	float *w;

	*out = NULL;
	if (float_dtype(t, err))
		return err->code;
	if ((uint64_t)n != hf_tensor_numel(t))
		return hf_err_set(err, HF_EFORMAT,
				  "tensor '%s' does not hold module '%s' (%zu x %zu)",
				  t->name, md->name, md->out, md->in);
	if (!(w = malloc(n * sizeof(float))))
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	hf_to_f32_n(w, t->data, t->dtype, n);
	hf_lora_merge(w, d->A, d->B, md->in, d->r, md->out, d->scale,
		      md->conv1d, 1);
	return to_stored(w, t, n, out, err);
}

int hf_merge_adapter(const char *base_dir, const char *adapter_dir,
		     const char *out_dir, struct hf_err *err)
{
	struct hf_model *m = NULL;
	struct hf_peft *p = NULL;
	struct hf_st_model *st = NULL;
	struct hf_st_writer *w = NULL;
	struct hf_lin_module *mods = NULL;
	struct hf_peft_delta *d = NULL;
	struct merged *mg = NULL;
	size_t nm = 0, nd = 0, nmg = 0;
	char tmp[4096], *path = NULL;
	int rc, made = 0;

	if (hf_dir_exists(out_dir) || hf_file_exists(out_dir))
		return hf_err_set(err, HF_EINVAL,
				  "%s exists: the merged model goes to a new "
				  "directory", out_dir);
	if ((rc = hf_model_open(&m, base_dir, NULL, 1, err)))
		return rc;
	if (json_object_get(hf_model_config(m)->json, "quantization_config")) {
		rc = hf_err_set(err, HF_EUNSUPPORTED,
				"%s: a quantized base: merging would requantize "
				"and lose the adapter's exactness; merge into the "
				"float base model (hf-quantize --dequantize makes "
				"one)", base_dir);
		goto out;
	}
	if ((rc = hf_peft_open(&p, adapter_dir, err)) ||
	    (rc = hf_model_modules(m, &mods, &nm, err)) ||
	    (rc = hf_peft_deltas(p, hf_model_config(m)->model_type, mods, nm,
				 &d, &nd, err)) ||
	    (rc = hf_st_open_dir(&st, base_dir, err)) ||
	    (rc = hf_st_writer_new(&w, err)))
		goto out;
	if (!(mg = calloc(2 * nd + 1, sizeof(*mg)))) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nd; i++) {
		const struct hf_lin_module *md = &mods[d[i].module];
		const struct hf_tensor *t;

		if (!md->tensor[0] || !(t = hf_st_model_get(st, md->tensor))) {
			rc = hf_err_set(err, HF_EUNSUPPORTED,
					"%s: module '%s' has no weight of its own "
					"(it is tied to the embeddings): the "
					"merged model could not hold its delta",
					adapter_dir, md->name);
			goto out;
		}
		snprintf(mg[nmg].tensor, sizeof(mg[nmg].tensor), "%s", md->tensor);
		if ((rc = d[i].W ? whole_tensor(t, md, d[i].W, &mg[nmg++].data, err) :
			  merge_tensor(t, md, &d[i], &mg[nmg++].data, err))) {
			hf_err_prefix(err, "%s", base_dir);
			goto out;
		}
		if (d[i].bias) {
			size_t l = strlen(md->tensor);
			float *b;

			/* <module>.bias beside <module>.weight */
			snprintf(mg[nmg].tensor, sizeof(mg[nmg].tensor), "%.*s.bias",
				 (int)(l > 7 ? l - 7 : l), md->tensor);
			if (!(t = hf_st_model_get(st, mg[nmg].tensor)) ||
			    hf_tensor_numel(t) != md->out) {
				rc = hf_err_set(err, HF_EUNSUPPORTED,
						"%s: module '%s' has a trained bias "
						"but no bias '%s' of %zu in the base",
						adapter_dir, md->name,
						mg[nmg].tensor, md->out);
				goto out;
			}
			if ((rc = float_dtype(t, err)))
				goto out;
			if (!(b = malloc(md->out * sizeof(float)))) {
				rc = hf_err_set(err, HF_ENOMEM, "out of memory");
				goto out;
			}
			memcpy(b, d[i].bias, md->out * sizeof(float));
			if ((rc = to_stored(b, t, md->out, &mg[nmg++].data, err)))
				goto out;
		}
	}
	for (size_t k = 0; k < hf_st_model_count(st); k++) {
		const struct hf_tensor *t = hf_st_model_tensor(st, k);
		const void *data = t->data;

		for (size_t i = 0; i < nmg; i++)
			if (!strcmp(mg[i].tensor, t->name))
				data = mg[i].data;
		if ((rc = hf_st_writer_add(w, t->name, t->dtype, t->ndim,
					   t->shape, data, err)))
			goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", out_dir, (long)getpid());
	if (mkdir(tmp, 0777)) {
		rc = hf_err_errno(err, "%s", tmp);
		goto out;
	}
	made = 1;
	if (!(path = hf_path_join(tmp, "model.safetensors"))) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = hf_st_writer_write(w, path, err)) ||
	    (rc = copy_files(base_dir, tmp, err)))
		goto out;
	if (rename(tmp, out_dir)) {
		rc = hf_err_errno(err, "rename %s to %s", tmp, out_dir);
		goto out;
	}
	made = 0;
out:
	if (made)
		remove_dir(tmp);
	for (size_t i = 0; mg && i < nmg; i++)
		free(mg[i].data);
	free(mg);
	free(path);
	hf_st_writer_free(w);
	hf_st_model_free(st);
	hf_peft_deltas_free(d, nd);
	free(mods);
	hf_peft_free(p);
	hf_model_free(m);
	return rc;
}
