/* test/unit/model/fixture_check.h: reading the model fixtures' reference
 * files and comparing against them, shared by the CPU fixture tests and the
 * Vulkan ones (test/unit/vulkan/model.c). Include after defining struct fx
 * with the members dir (char array), ref (struct hf_st *) and js (the
 * parsed reference.json). */
#ifndef HF_TEST_FIXTURE_CHECK_H
#define HF_TEST_FIXTURE_CHECK_H

static const char *fixtures_root(void)
{
	static char buf[512];
	const char *e = getenv("HF_FIXTURES");

	snprintf(buf, sizeof(buf), "%s/models", e ? e : "test/fixtures");
	return buf;
}

static const float *ref_f32(struct fx *f, const char *fmt, ...)
{
	char name[128];
	const struct hf_tensor *t;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	t = hf_st_get(f->ref, name);
	if (!t || t->dtype != HF_DTYPE_F32)
		fail_msg("%s: no F32 reference tensor '%s'", f->dir, name);
	return t->data;
}

/* JSON int array -> malloc'd int32 array; *n gets its length. */
static int32_t *ints(const json_t *a, size_t *n)
{
	size_t i;
	json_t *v;
	int32_t *out = malloc((json_array_size(a) + 1) * sizeof(*out));

	assert_non_null(out);
	json_array_foreach(a, i, v)
		out[i] = (int32_t)json_integer_value(v);
	*n = json_array_size(a);
	return out;
}

static const json_t *prompt(struct fx *f, size_t i)
{
	return json_array_get(json_object_get(f->js, "prompts"), i);
}

/* Max abs difference; fails beyond tol, naming the first bad index. */
static double cmp(const char *what, const float *got, const float *want,
		  size_t n, double tol)
{
	double mx = 0.0;

	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - want[i]);

		if (!(d <= tol))
			fail_msg("%s: index %zu: got %.9g want %.9g", what, i,
				 got[i], want[i]);
		if (d > mx)
			mx = d;
	}
	return mx;
}

static size_t argmax(const float *x, size_t n)
{
	size_t b = 0;

	for (size_t i = 1; i < n; i++)
		if (x[i] > x[b])
			b = i;
	return b;
}

static void check_argmax(const char *what, const float *got,
			 const float *want, size_t rows, size_t V)
{
	for (size_t r = 0; r < rows; r++)
		if (argmax(got + r * V, V) != argmax(want + r * V, V))
			fail_msg("%s: argmax differs at row %zu: %zu vs %zu", what,
				 r, argmax(got + r * V, V),
				 argmax(want + r * V, V));
}

/* Greedy decoding of G tokens after ids (T), eagerly or replaying the
 * recorded decode step: tokens into toks, the logits that chose token s
 * into lg + s * V. Returns the steps that ran as replays. */
static inline size_t greedy_run(struct hf_model *m, const int32_t *ids, size_t T,
			 size_t G, int replay, int32_t *toks, float *lg)
{
	struct hf_err err = { 0 };
	struct hf_kv *kv;
	size_t V = hf_model_vocab(m), n;
	struct hf_fwd_out o = { .logits = lg };

	hf_model_set_replay(m, replay);
	if (hf_kv_new(&kv, m, 1, T + G, &err) ||
	    hf_model_forward(m, kv, ids, NULL, T, &o, &err))
		fail_msg("%s: %s", hf_model_dir(m), err.msg);
	for (size_t s = 0; s < G; s++) {
		toks[s] = (int32_t)argmax(lg + s * V, V);
		o.logits = lg + (s + 1) * V;
		if (s + 1 < G &&
		    hf_model_forward(m, kv, &toks[s], NULL, 1, &o, &err))
			fail_msg("%s step %zu: %s", hf_model_dir(m), s,
				 err.msg);
	}
	n = hf_kv_replays(kv);
	hf_kv_free(kv);
	hf_model_set_replay(m, 1);
	return n;
}

#endif
