/* lib/train/ckpt.c: checkpoints written to a temporary directory and
 * renamed, and read back (see ckpt.h). */
#define _GNU_SOURCE
#include "train/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "core/json.h"
#include "st/st.h"

#define STATE_FILE "trainer_state.json"
#define OPTIM_FILE "optimizer.safetensors"
#define STATE_FORMAT "hf-finetune/1"

struct hf_ckpt {
	char *dir, *tmp;
};

/* rm -r path (files and directories below it); errors ignored. */
static void rm_rf(const char *path)
{
	DIR *dp = opendir(path);
	struct dirent *e;

	if (!dp) {
		unlink(path);
		return;
	}
	while ((e = readdir(dp))) {
		char *p;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		p = hf_path_join(path, e->d_name);
		if (p) {
			struct stat st;

			if (!lstat(p, &st) && S_ISDIR(st.st_mode))
				rm_rf(p);
			else
				unlink(p);
			free(p);
		}
	}
	closedir(dp);
	rmdir(path);
}

static void ckpt_free(struct hf_ckpt *ck)
{
	if (!ck)
		return;
	free(ck->dir);
	free(ck->tmp);
	free(ck);
}

int hf_ckpt_begin(struct hf_ckpt **out, const char *dir, struct hf_err *err)
{
	struct hf_ckpt *ck = calloc(1, sizeof(*ck));
	const char *slash;
	size_t n;

	*out = NULL;
	if (!ck || !(ck->dir = strdup(dir)))
		goto nomem;
	n = strlen(dir);
	while (n > 1 && ck->dir[n - 1] == '/')
		ck->dir[--n] = '\0';
	slash = strrchr(ck->dir, '/');
	ck->tmp = malloc(n + 64);
	if (!ck->tmp)
		goto nomem;
	/* <parent>/.<name>.tmp.<pid>: same file system, so rename works */
	if (slash)
		snprintf(ck->tmp, n + 64, "%.*s/.%s.tmp.%ld", (int)(slash - ck->dir),
			 ck->dir, slash + 1, (long)getpid());
	else
		snprintf(ck->tmp, n + 64, ".%s.tmp.%ld", ck->dir, (long)getpid());
	rm_rf(ck->tmp);
	if (mkdir(ck->tmp, 0755)) {
		int rc = hf_err_errno(err, "cannot create checkpoint directory '%s'", ck->tmp);

		ckpt_free(ck);
		return rc;
	}
	*out = ck;
	return 0;
nomem:
	ckpt_free(ck);
	return hf_err_set(err, HF_ENOMEM, "out of memory");
}

const char *hf_ckpt_tmpdir(const struct hf_ckpt *ck)
{
	return ck->tmp;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);

	if (fd < 0)
		return -1;
	fsync(fd);
	close(fd);
	return 0;
}

int hf_ckpt_commit(struct hf_ckpt *ck, struct hf_err *err)
{
	int rc = 0;

	fsync_dir(ck->tmp);
	if (hf_dir_exists(ck->dir)) {
		/* swap: the old checkpoint stays whole until the new one is in */
		if (renameat2(AT_FDCWD, ck->tmp, AT_FDCWD, ck->dir, RENAME_EXCHANGE) == 0) {
			rm_rf(ck->tmp);
			goto done;
		}
		if (errno != EINVAL && errno != ENOSYS) {
			rc = hf_err_errno(err, "cannot rename '%s' to '%s'", ck->tmp, ck->dir);
			rm_rf(ck->tmp);
			goto done;
		}
		/* no RENAME_EXCHANGE here: old aside, new in, old removed */
		{
			size_t n = strlen(ck->tmp) + 8;
			char *old = malloc(n);

			if (!old) {
				rc = hf_err_set(err, HF_ENOMEM, "out of memory");
				rm_rf(ck->tmp);
				goto done;
			}
			snprintf(old, n, "%s.old", ck->tmp);
			rm_rf(old);
			if (rename(ck->dir, old) || rename(ck->tmp, ck->dir)) {
				rc = hf_err_errno(err, "cannot rename '%s' to '%s'", ck->tmp, ck->dir);
				rename(old, ck->dir);
				rm_rf(ck->tmp);
			} else {
				rm_rf(old);
			}
			free(old);
		}
	} else if (rename(ck->tmp, ck->dir)) {
		rc = hf_err_errno(err, "cannot rename '%s' to '%s'", ck->tmp, ck->dir);
		rm_rf(ck->tmp);
	}
done:
	ckpt_free(ck);
	return rc;
}

void hf_ckpt_abort(struct hf_ckpt *ck)
{
	if (!ck)
		return;
	rm_rf(ck->tmp);
	ckpt_free(ck);
}


static int write_st(struct hf_st_writer *w, const char *path, struct hf_err *err)
{
	int rc = path ? hf_st_writer_write(w, path, err) :
		hf_err_set(err, HF_ENOMEM, "out of memory");

	return rc;
}

int hf_ckpt_write_params(const char *dir, const char *file,
			 const struct hf_params *ps, struct hf_err *err)
{
	struct hf_st_writer *w = NULL;
	char *path = NULL;
	int rc;

	if ((rc = hf_st_writer_new(&w, err)))
		return rc;
	for (size_t i = 0; i < ps->n; i++) {
		const struct hf_optparam *p = &ps->p[i];

		if ((rc = hf_st_writer_add(w, p->name, HF_DTYPE_F32, p->ndim, p->shape,
					   p->w, err)))
			goto out;
	}
	path = hf_path_join(dir, file);
	rc = write_st(w, path, err);
out:
	free(path);
	hf_st_writer_free(w);
	return rc;
}

int hf_ckpt_write_optim(struct hf_ckpt *ck, struct hf_adamw *a,
			const struct hf_params *ps, struct hf_err *err)
{
	struct hf_st_writer *w = NULL;
	char *path = NULL, name[600], step[32];
	int rc;

	if ((rc = hf_st_writer_new(&w, err)))
		return rc;
	snprintf(step, sizeof(step), "%" PRIu64, hf_adamw_steps(a));
	if ((rc = hf_st_writer_meta(w, "step", step, err)))
		goto out;
	for (size_t i = 0; i < ps->n; i++) {
		const struct hf_optparam *p = &ps->p[i];

		snprintf(name, sizeof(name), "%s.exp_avg", p->name);
		if ((rc = hf_st_writer_add(w, name, HF_DTYPE_F32, p->ndim, p->shape,
					   hf_adamw_m(a, i), err)))
			goto out;
		snprintf(name, sizeof(name), "%s.exp_avg_sq", p->name);
		if ((rc = hf_st_writer_add(w, name, HF_DTYPE_F32, p->ndim, p->shape,
					   hf_adamw_v(a, i), err)))
			goto out;
	}
	path = hf_path_join(ck->tmp, OPTIM_FILE);
	rc = write_st(w, path, err);
out:
	free(path);
	hf_st_writer_free(w);
	return rc;
}

/* Write text to <dir>/<file> through hf_atomic. */
static int write_file(const char *dir, const char *file, const char *text,
		      size_t len, struct hf_err *err)
{
	struct hf_atomic a;
	char *path = hf_path_join(dir, file);
	int rc;

	if (!path)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	rc = hf_atomic_open(&a, path, err);
	free(path);
	if (rc)
		return rc;
	if (fwrite(text, 1, len, a.f) != len) {
		rc = hf_err_errno(err, "cannot write '%s'", a.path);
		hf_atomic_abort(&a);
		return rc;
	}
	return hf_atomic_commit(&a, err);
}

int hf_ckpt_write_state(struct hf_ckpt *ck, const struct hf_train_state *st,
			struct hf_err *err)
{
	json_t *j = json_object(), *rng = json_array();
	char *text = NULL, hex[24];
	int rc;

	if (!j || !rng)
		goto nomem;
	for (int i = 0; i < 4; i++) {
		snprintf(hex, sizeof(hex), "0x%016" PRIx64, st->rng.s[i]);
		json_array_append_new(rng, json_string(hex));
	}
	json_object_set_new(j, "format", json_string(STATE_FORMAT));
	json_object_set_new(j, "step", json_integer((json_int_t)st->step));
	json_object_set_new(j, "data_epoch", json_integer((json_int_t)st->pos.epoch));
	json_object_set_new(j, "data_index", json_integer((json_int_t)st->pos.index));
	json_object_set_new(j, "rng", rng);
	rng = NULL;
	json_object_set(j, "options", st->options ? st->options : json_null());
	json_object_set(j, "config", st->config ? st->config : json_null());
	text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
	if (!text)
		goto nomem;
	rc = write_file(ck->tmp, STATE_FILE, text, strlen(text), err);
	free(text);
	json_decref(j);
	return rc;
nomem:
	json_decref(rng);
	json_decref(j);
	return hf_err_set(err, HF_ENOMEM, "out of memory");
}

/* In config.json text, the string value of "key" becomes "float32"
 * (textually, so every other byte, numbers included, stays as written). */
static char *set_dtype(char *text, const char *key)
{
	char pat[32], *k, *q1, *q2, *out;
	size_t n;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	k = strstr(text, pat);
	if (!k)
		return text;
	q1 = k + strlen(pat);
	while (*q1 == ' ' || *q1 == '\t' || *q1 == '\n' || *q1 == '\r' || *q1 == ':')
		q1++;
	if (*q1 != '"' || !(q2 = strchr(q1 + 1, '"')))
		return text;
	n = strlen(text);
	out = malloc(n + 16);
	if (!out)
		return text;
	snprintf(out, n + 16, "%.*s\"float32\"%s", (int)(q1 - text), text, q2 + 1);
	free(text);
	return out;
}

int hf_ckpt_copy_model_files(const char *dir, const char *model_dir,
			     int f32, struct hf_err *err)
{
	static const char *const files[] = {
		"config.json", "generation_config.json", "tokenizer.json",
		"tokenizer_config.json", "special_tokens_map.json",
		"tokenizer.model", "chat_template.jinja",
	};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *src = hf_path_join(model_dir, files[i]), *text = NULL;
		size_t len;
		int rc;

		if (!src)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		if (!hf_file_exists(src)) {
			free(src);
			continue;
		}
		rc = hf_file_read(&text, &len, src, err);
		free(src);
		if (rc)
			return rc;
		if (f32 && i == 0) {
			text = set_dtype(text, "torch_dtype");
			text = set_dtype(text, "dtype");
			len = strlen(text);
		}
		rc = write_file(dir, files[i], text, len, err);
		free(text);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- resuming ---- */

static int has_state(const char *dir)
{
	char *p = hf_path_join(dir, STATE_FILE);
	int ok = p && hf_file_exists(p);

	free(p);
	return ok;
}

int hf_ckpt_remove(const char *dir, struct hf_err *err)
{
	if (!hf_dir_exists(dir))
		return 0;
	if (!has_state(dir))
		return hf_err_set(err, HF_EINVAL, "'%s' is not a checkpoint: not removing it", dir);
	rm_rf(dir);
	return hf_dir_exists(dir) ? hf_err_set(err, HF_EIO, "cannot remove '%s'", dir) : 0;
}

int hf_ckpt_find(char **out, const char *dir, struct hf_err *err)
{
	DIR *dp;
	struct dirent *e;
	long best = -1;

	*out = NULL;
	if (has_state(dir)) {
		*out = strdup(dir);
		return *out ? 0 : hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	dp = opendir(dir);
	if (!dp)
		return hf_err_errno(err, "cannot open checkpoint directory '%s'", dir);
	while ((e = readdir(dp))) {
		char *end, *p;
		long n;

		if (strncmp(e->d_name, "checkpoint-", 11))
			continue;
		n = strtol(e->d_name + 11, &end, 10);
		if (*end || end == e->d_name + 11 || n <= best)
			continue;
		p = hf_path_join(dir, e->d_name);
		if (p && has_state(p)) {
			best = n;
			free(*out);
			*out = p;
		} else {
			free(p);
		}
	}
	closedir(dp);
	if (!*out)
		return hf_err_set(err, HF_ENOTFOUND,
				  "'%s' holds no checkpoint (no %s in it or in a checkpoint-N below it)",
				  dir, STATE_FILE);
	return 0;
}

void hf_train_state_clear(struct hf_train_state *st)
{
	json_decref(st->options);
	json_decref(st->config);
	memset(st, 0, sizeof(*st));
}

int hf_ckpt_read_state(const char *dir, struct hf_train_state *st,
		       struct hf_err *err)
{
	char *path = hf_path_join(dir, STATE_FILE);
	json_t *j = NULL, *rng;
	const char *fmt;
	int64_t v;
	int rc;

	memset(st, 0, sizeof(*st));
	if (!path)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if ((rc = hf_json_load_file(&j, path, err)))
		goto out;
	if (!json_is_object(j)) {
		rc = hf_err_set(err, HF_EFORMAT, "'%s': not a JSON object", path);
		goto out;
	}
	if ((rc = hf_json_req_str(j, "format", &fmt, path, err)))
		goto out;
	if (strcmp(fmt, STATE_FORMAT)) {
		rc = hf_err_set(err, HF_EUNSUPPORTED, "'%s': format '%s', want '%s'", path, fmt,
				STATE_FORMAT);
		goto out;
	}
	if ((rc = hf_json_req_int(j, "step", &v, path, err)))
		goto out;
	st->step = (uint64_t)v;
	if ((rc = hf_json_req_int(j, "data_epoch", &v, path, err)))
		goto out;
	st->pos.epoch = (uint64_t)v;
	if ((rc = hf_json_req_int(j, "data_index", &v, path, err)))
		goto out;
	st->pos.index = (uint64_t)v;
	rng = json_object_get(j, "rng");
	if (!json_is_array(rng) || json_array_size(rng) != 4) {
		rc = hf_err_set(err, HF_EFORMAT, "'%s': key 'rng' must be 4 hex strings", path);
		goto out;
	}
	for (int i = 0; i < 4; i++) {
		const char *s = json_string_value(json_array_get(rng, (size_t)i));
		char *end;

		if (!s || strncmp(s, "0x", 2) ||
		    (errno = 0, st->rng.s[i] = strtoull(s + 2, &end, 16), *end || errno)) {
			rc = hf_err_set(err, HF_EFORMAT, "'%s': rng[%d] is not a hex string", path, i);
			goto out;
		}
	}
	st->options = json_incref(json_object_get(j, "options"));
	st->config = json_incref(json_object_get(j, "config"));
out:
	if (rc)
		hf_train_state_clear(st);
	json_decref(j);
	free(path);
	return rc;
}

static int ignored_key(const char *k)
{
	return !strcmp(k, "_name_or_path") || !strcmp(k, "transformers_version");
}

static void value_str(char *buf, size_t cap, const json_t *v)
{
	char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	snprintf(buf, cap, "%s", s ? s : "absent");
	if (strlen(buf) > 40)
		strcpy(buf + 37, "...");
	free(s);
}

int hf_ckpt_check_config(const char *dir, const struct hf_train_state *st,
			 const json_t *config, struct hf_err *err)
{
	const json_t *a = st->config, *v;
	const char *k;
	char x[64], y[64];

	if (!json_is_object(a) || !json_is_object(config))
		return hf_err_set(err, HF_EINVAL, "checkpoint '%s' does not record the model's config.json",
				  dir);
	json_object_foreach((json_t *)config, k, v) {
		const json_t *w = json_object_get(a, k);

		if (ignored_key(k) || (w && json_equal(w, (json_t *)v)))
			continue;
		value_str(x, sizeof(x), w);
		value_str(y, sizeof(y), v);
		return hf_err_set(err, HF_EINVAL,
				  "checkpoint '%s' is of another model: config.json key '%s' is %s there, %s here",
				  dir, k, x, y);
	}
	json_object_foreach((json_t *)a, k, v) {
		if (ignored_key(k) || json_object_get(config, k))
			continue;
		value_str(x, sizeof(x), v);
		return hf_err_set(err, HF_EINVAL,
				  "checkpoint '%s' is of another model: config.json key '%s' is %s there, absent here",
				  dir, k, x);
	}
	return 0;
}

/* Copy tensor name of st (F32, shape of p) into dst. */
static int read_tensor(const struct hf_st *st, const char *name,
		       const struct hf_optparam *p, float *dst, struct hf_err *err)
{
	const struct hf_tensor *t = hf_st_get(st, name);
	char want[128], got[128];

	if (!t)
		return hf_err_set(err, HF_ENOTFOUND, "'%s': no tensor '%s'", hf_st_path(st), name);
	if (t->dtype != HF_DTYPE_F32)
		return hf_err_set(err, HF_EFORMAT, "'%s': tensor '%s' is not F32", hf_st_path(st),
				  name);
	if (t->ndim != p->ndim || memcmp(t->shape, p->shape, (size_t)p->ndim * sizeof(int64_t))) {
		hf_shape_str(want, sizeof(want), p->shape, p->ndim);
		hf_shape_str(got, sizeof(got), t->shape, t->ndim);
		return hf_err_set(err, HF_EFORMAT, "'%s': tensor '%s' has shape %s, want %s",
				  hf_st_path(st), name, got, want);
	}
	if (p->n)
		memcpy(dst, t->data, p->n * sizeof(float));
	return 0;
}

static int open_in(struct hf_st **st, const char *dir, const char *file,
		   struct hf_err *err)
{
	char *path = hf_path_join(dir, file);
	int rc;

	if (!path)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	rc = hf_st_open(st, path, err);
	free(path);
	return rc;
}

int hf_ckpt_read_params(const char *dir, const char *file,
			struct hf_params *ps, struct hf_err *err)
{
	struct hf_st *st = NULL;
	int rc = open_in(&st, dir, file, err);

	for (size_t i = 0; !rc && i < ps->n; i++)
		rc = read_tensor(st, ps->p[i].name, &ps->p[i], ps->p[i].w, err);
	hf_st_free(st);
	return rc;
}

int hf_ckpt_read_optim(const char *dir, struct hf_adamw *a,
		       const struct hf_params *ps, struct hf_err *err)
{
	struct hf_st *st = NULL;
	const char *step;
	char name[600], *end;
	unsigned long long t;
	int rc = open_in(&st, dir, OPTIM_FILE, err);

	if (rc)
		return rc;
	step = hf_st_meta_get(st, "step");
	errno = 0;
	if (!step || !*step || (t = strtoull(step, &end, 10), *end || errno)) {
		rc = hf_err_set(err, HF_EFORMAT, "'%s': __metadata__ has no step count",
				hf_st_path(st));
		goto out;
	}
	for (size_t i = 0; !rc && i < ps->n; i++) {
		snprintf(name, sizeof(name), "%s.exp_avg", ps->p[i].name);
		rc = read_tensor(st, name, &ps->p[i], hf_adamw_m(a, i), err);
		snprintf(name, sizeof(name), "%s.exp_avg_sq", ps->p[i].name);
		if (!rc)
			rc = read_tensor(st, name, &ps->p[i], hf_adamw_v(a, i), err);
	}
	if (!rc)
		hf_adamw_set_steps(a, (uint64_t)t);
out:
	hf_st_free(st);
	return rc;
}

/* ---- signals ---- */

static volatile sig_atomic_t g_signal;

static void on_signal(int sig)
{
	g_signal = sig;
}

void hf_ckpt_signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	g_signal = 0;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int hf_ckpt_signal(void)
{
	return g_signal;
}

void hf_ckpt_signals_restore(void)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
}
