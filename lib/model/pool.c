/* lib/model/pool.c: sentence embeddings from hidden states, configured as
 * sentence-transformers configures them (modules.json, 1_Pooling). */
#include "model/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"

/* The Pooling module's directory from modules.json, or NULL. */
static char *pooling_dir(const struct hf_model *m, int *normalize,
			 struct hf_err *err)
{
	char *path = hf_path_join(m->dir, "modules.json"), *dir = NULL;
	json_t *mods = NULL, *e;
	size_t i;

	*normalize = 0;
	if (!path || !hf_file_exists(path))
		goto out;
	if (hf_json_load_file(&mods, path, err))
		goto out;
	json_array_foreach(mods, i, e) {
		const char *type = json_string_value(json_object_get(e, "type"));
		const char *p = json_string_value(json_object_get(e, "path"));

		if (!type)
			continue;
		if (strstr(type, "Normalize"))
			*normalize = 1;
		if (strstr(type, "Pooling") && p && !dir)
			dir = hf_path_join(m->dir, p);
	}
out:
	json_decref(mods);
	free(path);
	return dir;
}

int hf_model_pooling(const struct hf_model *m, enum hf_pooling *mode,
		     int *normalize, struct hf_err *err)
{
	char *dir, *path = NULL;
	json_t *cfg = NULL;
	int cls = 0, mean = 0, max = 0, last = 0, rc = 0;

	*mode = m->encoder ? HF_POOL_MEAN : HF_POOL_LAST;
	err->code = 0;
	dir = pooling_dir(m, normalize, err);
	if (err->code)
		return err->code;
	if (!dir) {
		char *p = hf_path_join(m->dir, "1_Pooling");

		if (p && hf_dir_exists(p))
			dir = p;
		else
			free(p);
	}
	if (!dir)
		return 0;
	path = hf_path_join(dir, "config.json");
	if (!path) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	if (!hf_file_exists(path))
		goto out;
	if ((rc = hf_json_load_file(&cfg, path, err)) ||
	    (rc = hf_json_bool(cfg, "pooling_mode_cls_token", 0, &cls, path,
			       err)) ||
	    (rc = hf_json_bool(cfg, "pooling_mode_mean_tokens", 0, &mean, path,
			       err)) ||
	    (rc = hf_json_bool(cfg, "pooling_mode_max_tokens", 0, &max, path,
			       err)) ||
	    (rc = hf_json_bool(cfg, "pooling_mode_lasttoken", 0, &last, path,
			       err)))
		goto out;
	if (cls)
		*mode = HF_POOL_CLS;
	else if (mean)
		*mode = HF_POOL_MEAN;
	else if (max)
		*mode = HF_POOL_MAX;
	else if (last)
		*mode = HF_POOL_LAST;
	else
		rc = hf_err_set(err, HF_EUNSUPPORTED,
				"%s: no pooling mode this build supports "
				"(cls, mean, max, lasttoken)", path);
out:
	json_decref(cfg);
	free(path);
	free(dir);
	return rc;
}

void hf_pool_hidden(float *out, const float *hidden, const int32_t *mask,
		    size_t B, size_t T, size_t H, enum hf_pooling mode,
		    int normalize)
{
	for (size_t b = 0; b < B; b++) {
		const float *hb = hidden + b * T * H;
		const int32_t *mb = mask ? mask + b * T : NULL;
		float *o = out + b * H;
		size_t last = 0, n = 0;

		for (size_t t = 0; t < T; t++)
			if (!mb || mb[t]) {
				last = t;
				n++;
			}
		for (size_t i = 0; i < H; i++) {
			double acc = 0.0;
			float mx = -INFINITY;

			switch (mode) {
			case HF_POOL_CLS:
				o[i] = hb[i];
				break;
			case HF_POOL_LAST:
				o[i] = hb[last * H + i];
				break;
			case HF_POOL_MAX:
				for (size_t t = 0; t < T; t++)
					if ((!mb || mb[t]) && hb[t * H + i] > mx)
						mx = hb[t * H + i];
				o[i] = n ? mx : 0.0f;
				break;
			case HF_POOL_MEAN:
				for (size_t t = 0; t < T; t++)
					if (!mb || mb[t])
						acc += hb[t * H + i];
				/* sentence-transformers clamps the count at 1e-9 */
				o[i] = (float)(acc / (n ? (double)n : 1e-9));
				break;
			}
		}
		if (normalize) {
			double ss = 0.0;

			for (size_t i = 0; i < H; i++)
				ss += (double)o[i] * o[i];
			/* F.normalize: x / max(||x||, 1e-12) */
			ss = sqrt(ss);
			for (size_t i = 0; i < H; i++)
				o[i] = (float)(o[i] / (ss > 1e-12 ? ss : 1e-12));
		}
	}
}
