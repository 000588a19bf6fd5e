/* Tests for lib/train/ckpt.c: a checkpoint written and read back gives
 * the same bits (weights, moments, step, position, RNG, options), a
 * second save replaces the first whole, a failed save leaves the last
 * good one, another model's config is refused by name, and signals set
 * the flag instead of killing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "train/ckpt.h"

static char tmpdir[] = "/tmp/hf-ckpt-XXXXXX";

static int setup(void **state)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) ? -1 : 0;
}

static char *path(const char *a, const char *b)
{
	static char buf[4][512];
	static int k;
	char *p = buf[k++ % 4];

	snprintf(p, 512, "%s/%s%s%s", tmpdir, a, b ? "/" : "", b ? b : "");
	return p;
}

/* Two parameters with some weights, gradients and three AdamW steps. */
static void make(struct hf_params *ps, struct hf_adamw **a, float base)
{
	struct hf_adamw_opts o = { 1e-2, 0.9, 0.999, 1e-8, 0.01 };
	int64_t s0[2] = { 3, 4 }, s1[1] = { 5 };

	memset(ps, 0, sizeof(*ps));
	assert_int_equal(hf_params_add(ps, "l.weight", 2, s0, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(hf_params_add(ps, "l.bias", 1, s1, NULL, NULL, NULL, NULL), 0);
	for (size_t i = 0; i < 12; i++)
		ps->p[0].w[i] = base + 0.1f * (float)i;
	assert_int_equal(hf_adamw_new(a, ps, &o, NULL), 0);
	for (int t = 0; t < 3; t++) {
		for (size_t i = 0; i < 12; i++)
			ps->p[0].g[i] = 0.37f * (float)((i * 7 + (size_t)t) % 5) - 0.8f;
		for (size_t i = 0; i < 5; i++)
			ps->p[1].g[i] = 0.11f * (float)i - 0.2f;
		hf_adamw_step(*a, ps, 1e-2);
	}
}

static int save(const char *dir, struct hf_params *ps, struct hf_adamw *a,
		const struct hf_train_state *st, struct hf_err *err)
{
	struct hf_ckpt *ck = NULL;
	int rc;

	if ((rc = hf_ckpt_begin(&ck, dir, err)))
		return rc;
	if ((rc = hf_ckpt_write_params(hf_ckpt_tmpdir(ck), "model.safetensors", ps, err)) ||
	    (rc = hf_ckpt_write_optim(ck, a, ps, err)) ||
	    (rc = hf_ckpt_write_state(ck, st, err))) {
		hf_ckpt_abort(ck);
		return rc;
	}
	return hf_ckpt_commit(ck, err);
}

static json_t *config(int hidden)
{
	return json_pack("{s:s, s:i, s:f, s:s}", "model_type", "llama", "hidden_size", hidden,
			 "rms_norm_eps", 1e-5, "transformers_version", "4.50.0");
}

static void test_round_trip_is_bit_identical(void **state)
{
	struct hf_params ps, back;
	struct hf_adamw *a = NULL, *b = NULL;
	struct hf_adamw_opts o = { 1e-2, 0.9, 0.999, 1e-8, 0.01 };
	struct hf_train_state st = { .step = 3, .pos = { 2, 17 } }, rd;
	struct hf_err err = { 0 };
	char *found = NULL;

	make(&ps, &a, 1.0f);
	hf_rng_seed(&st.rng, 99);
	hf_rng_next(&st.rng);
	st.options = json_pack("{s:f, s:i}", "lr", 3e-4, "batch", 4);
	st.config = config(64);
	assert_int_equal(mkdir(path("out", NULL), 0755), 0);
	assert_int_equal(save(path("out", "checkpoint-3"), &ps, a, &st, &err), 0);
	/* a fresh set of the same shapes, zero, filled from the files */
	memset(&back, 0, sizeof(back));
	assert_int_equal(hf_params_add(&back, "l.weight", 2, ps.p[0].shape, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(hf_params_add(&back, "l.bias", 1, ps.p[1].shape, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(hf_adamw_new(&b, &back, &o, NULL), 0);
	assert_int_equal(hf_ckpt_find(&found, path("out", NULL), &err), 0);
	assert_string_equal(found, path("out", "checkpoint-3"));
	assert_int_equal(hf_ckpt_read_params(found, "model.safetensors", &back, &err), 0);
	assert_int_equal(hf_ckpt_read_optim(found, b, &back, &err), 0);
	assert_int_equal(hf_ckpt_read_state(found, &rd, &err), 0);
	for (size_t i = 0; i < 2; i++) {
		assert_memory_equal(back.p[i].w, ps.p[i].w, ps.p[i].n * sizeof(float));
		assert_memory_equal(hf_adamw_m(b, i), hf_adamw_m(a, i), ps.p[i].n * sizeof(float));
		assert_memory_equal(hf_adamw_v(b, i), hf_adamw_v(a, i), ps.p[i].n * sizeof(float));
	}
	assert_int_equal(hf_adamw_steps(b), 3);
	assert_int_equal(rd.step, 3);
	assert_int_equal(rd.pos.epoch, 2);
	assert_int_equal(rd.pos.index, 17);
	assert_memory_equal(rd.rng.s, st.rng.s, sizeof(st.rng.s));
	assert_true(json_equal(rd.options, st.options));
	/* one more step on each gives the same bits */
	for (size_t i = 0; i < 2; i++) {
		memset(ps.p[i].g, 0, ps.p[i].n * sizeof(float));
		memset(back.p[i].g, 0, back.p[i].n * sizeof(float));
		ps.p[i].g[0] = back.p[i].g[0] = 0.5f;
	}
	hf_adamw_step(a, &ps, 1e-2);
	hf_adamw_step(b, &back, 1e-2);
	assert_memory_equal(back.p[0].w, ps.p[0].w, 12 * sizeof(float));
	free(found);
	hf_train_state_clear(&rd);
	json_decref(st.options);
	json_decref(st.config);
	hf_adamw_free(a);
	hf_adamw_free(b);
	hf_params_free(&ps);
	hf_params_free(&back);
}

/* Saving again over a checkpoint replaces it whole, and leaves no
 * temporary directory behind. */
static void test_resave_replaces_and_cleans_up(void **state)
{
	struct hf_params ps;
	struct hf_adamw *a = NULL;
	struct hf_train_state st = { .step = 1 }, rd;
	const char *dir = path("again", NULL);

	make(&ps, &a, 2.0f);
	assert_int_equal(save(dir, &ps, a, &st, NULL), 0);
	st.step = 2;
	assert_int_equal(save(dir, &ps, a, &st, NULL), 0);
	assert_int_equal(hf_ckpt_read_state(dir, &rd, NULL), 0);
	assert_int_equal(rd.step, 2);
	hf_train_state_clear(&rd);
	{
		char tmp[600];

		snprintf(tmp, sizeof(tmp), "%s/.again.tmp.%ld", tmpdir, (long)getpid());
		assert_false(hf_dir_exists(tmp));
	}
	hf_adamw_free(a);
	hf_params_free(&ps);
}

/* A save that fails half-way (a tensor of the weights missing from the
 * moments) leaves the last good checkpoint as it was. */
static void test_failed_save_keeps_the_last_good_one(void **state)
{
	struct hf_params ps, more;
	struct hf_adamw *a = NULL;
	struct hf_train_state st = { .step = 5 }, rd;
	struct hf_ckpt *ck = NULL;
	struct hf_err err = { 0 };
	const char *dir = path("keep", NULL);
	int64_t s[1] = { 2 };

	make(&ps, &a, 3.0f);
	assert_int_equal(save(dir, &ps, a, &st, NULL), 0);
	assert_int_equal(hf_ckpt_begin(&ck, dir, &err), 0);
	st.step = 6;
	assert_int_equal(hf_ckpt_write_state(ck, &st, &err), 0);
	/* the process dies here: abort stands for it */
	hf_ckpt_abort(ck);
	assert_int_equal(hf_ckpt_read_state(dir, &rd, NULL), 0);
	assert_int_equal(rd.step, 5);
	hf_train_state_clear(&rd);
	/* reading into parameters the file lacks names the tensor */
	memset(&more, 0, sizeof(more));
	assert_int_equal(hf_params_add(&more, "other.weight", 1, s, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(hf_ckpt_read_params(dir, "model.safetensors", &more, &err), HF_ENOTFOUND);
	assert_non_null(strstr(err.msg, "'other.weight'"));
	hf_params_free(&more);
	hf_adamw_free(a);
	hf_params_free(&ps);
}

static void test_another_model_is_refused(void **state)
{
	struct hf_params ps;
	struct hf_adamw *a = NULL;
	struct hf_train_state st = { .step = 1 }, rd;
	struct hf_err err = { 0 };
	const char *dir = path("model", NULL);
	json_t *same = config(64), *other = config(128);

	make(&ps, &a, 0.0f);
	st.config = config(64);
	assert_int_equal(save(dir, &ps, a, &st, NULL), 0);
	assert_int_equal(hf_ckpt_read_state(dir, &rd, NULL), 0);
	json_object_set_new(same, "transformers_version", json_string("5.0.0"));
	assert_int_equal(hf_ckpt_check_config(dir, &rd, same, &err), 0);
	assert_int_equal(hf_ckpt_check_config(dir, &rd, other, &err), HF_EINVAL);
	assert_non_null(strstr(err.msg, "another model"));
	assert_non_null(strstr(err.msg, "'hidden_size' is 64 there, 128 here"));
	json_decref(same);
	json_decref(other);
	json_decref(st.config);
	hf_train_state_clear(&rd);
	hf_adamw_free(a);
	hf_params_free(&ps);
}

static void test_find_without_checkpoint_is_an_error(void **state)
{
	struct hf_err err = { 0 };
	char *found = NULL;

	assert_int_equal(mkdir(path("none", NULL), 0755), 0);
	assert_int_equal(hf_ckpt_find(&found, path("none", NULL), &err), HF_ENOTFOUND);
	assert_non_null(strstr(err.msg, "holds no checkpoint"));
	assert_null(found);
}

/* config.json of a bf16 model copied for float32 weights */
static void test_copy_model_files_sets_float32(void **state)
{
	struct hf_ckpt *ck = NULL;
	const char *src = path("src", NULL);
	char *text = NULL;
	FILE *f;

	assert_int_equal(mkdir(src, 0755), 0);
	f = fopen(path("src", "config.json"), "w");
	fputs("{\n  \"rms_norm_eps\": 1e-05,\n  \"torch_dtype\": \"bfloat16\"\n}\n", f);
	fclose(f);
	assert_int_equal(hf_ckpt_begin(&ck, path("dst", NULL), NULL), 0);
	assert_int_equal(hf_ckpt_copy_model_files(hf_ckpt_tmpdir(ck), src, 1, NULL), 0);
	assert_int_equal(hf_ckpt_commit(ck, NULL), 0);
	assert_int_equal(hf_file_read(&text, NULL, path("dst", "config.json"), NULL), 0);
	assert_string_equal(text, "{\n  \"rms_norm_eps\": 1e-05,\n  \"torch_dtype\": \"float32\"\n}\n");
	free(text);
}

/* remove takes checkpoints only */
static void test_remove_only_takes_checkpoints(void **state)
{
	struct hf_params ps;
	struct hf_adamw *a = NULL;
	struct hf_train_state st = { .step = 1 };
	struct hf_err err = { 0 };

	make(&ps, &a, 0.0f);
	assert_int_equal(save(path("gone", NULL), &ps, a, &st, NULL), 0);
	assert_int_equal(hf_ckpt_remove(path("gone", NULL), &err), 0);
	assert_false(hf_dir_exists(path("gone", NULL)));
	assert_int_equal(hf_ckpt_remove(path("gone", NULL), &err), 0);
	assert_int_equal(mkdir(path("plain", NULL), 0755), 0);
	assert_int_equal(hf_ckpt_remove(path("plain", NULL), &err), HF_EINVAL);
	assert_true(hf_dir_exists(path("plain", NULL)));
	hf_adamw_free(a);
	hf_params_free(&ps);
}

static void test_signals_set_the_flag(void **state)
{
	hf_ckpt_signals_install();
	assert_int_equal(hf_ckpt_signal(), 0);
	raise(SIGTERM);
	assert_int_equal(hf_ckpt_signal(), SIGTERM);
	raise(SIGINT);
	assert_int_equal(hf_ckpt_signal(), SIGINT);
	hf_ckpt_signals_restore();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_is_bit_identical),
		cmocka_unit_test(test_resave_replaces_and_cleans_up),
		cmocka_unit_test(test_failed_save_keeps_the_last_good_one),
		cmocka_unit_test(test_another_model_is_refused),
		cmocka_unit_test(test_find_without_checkpoint_is_an_error),
		cmocka_unit_test(test_copy_model_files_sets_float32),
		cmocka_unit_test(test_remove_only_takes_checkpoints),
		cmocka_unit_test(test_signals_set_the_flag),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
