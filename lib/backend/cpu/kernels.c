/* lib/backend/cpu/kernels.c: the CPU backend's kernels, each with its
 * plain `_ref` twin. Formulas follow the Transformers modules named in
 * each comment; all arithmetic is float32 except where a sum is kept in
 * double (noted), which only makes results closer to the exact value. */
#include "backend/cpu/kernels.h"
#include "backend/kvfmt.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* The hot kernels are compiled for AVX-512, AVX2 and baseline x86-64,
 * picked at load time by the CPU (GCC function multiversioning). Not under
 * ThreadSanitizer: it instruments the resolvers, which the dynamic loader
 * runs before TSan is set up, and the program dies before main. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
	!defined(__SANITIZE_THREAD__)
#define HF_CPU_CLONES \
	__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HF_CPU_CLONES
#endif

/* Lanes of the vector helpers below: one AVX-512 register of floats. */
#define HF_VL 16

/* HF_VL floats, kept in one register where the target has them.
 * (Passing such vectors between functions is ABI-sensitive; here they
 * only travel through static inline functions, so GCC's note on it is
 * silenced.) */
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float vkb __attribute__((vector_size(HF_VL * sizeof(float))));
typedef int32_t vkbi __attribute__((vector_size(HF_VL * sizeof(int32_t))));

static inline vkb vsel(vkbi m, vkb a, vkb b)	/* m ? a : b, per lane */
{
	return (vkb)(((vkbi)a & m) | ((vkbi)b & ~m));
}

/* e^x on every lane, the polynomial of Cephes' expf (relative error
 * about 1e-7, like libm's expf within a couple of ulp); lanes below
 * -87.3 (and -inf) give 0. */
static inline vkb vexp(vkb x)
{
	const vkb zero = { 0 }, lo = zero - 87.33654f, hi = zero + 88.0f;
	vkbi dead = x < lo, bits;
	vkb n, r, y;

	x = vsel(dead, lo, x);
	x = vsel(x > hi, hi, x);
	/* n = round(x / ln 2), by adding and removing 1.5 * 2^23 */
	n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
	r = x - n * 0.693359375f + n * 2.12194440e-4f;
	y = r * 1.9875691500e-4f + 1.3981999507e-3f;
	y = y * r + 8.3334519073e-3f;
	y = y * r + 4.1665795894e-2f;
	y = y * r + 1.6666665459e-1f;
	y = y * r + 5.0000001201e-1f;
	y = y * r * r + r + 1.0f;
	bits = (__builtin_convertvector(n, vkbi) + 127) << 23;
	y = y * (vkb)bits;
	return (vkb)((vkbi)y & ~dead);
}

/* LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * w; GemmaRMSNorm uses
 * (1 + w). Sum of squares in 8 float lanes (vectorises). */
HF_CPU_CLONES
void hf_cpu_rmsnorm(float *y, const float *x, const float *w, size_t r0,
		    size_t r1, size_t cols, float eps, int add_one)
{
	for (size_t r = r0; r < r1; r++) {
		const float *xr = x + r * cols;
		float *yr = y + r * cols;
		float acc[8] = { 0 };
		double ss = 0.0;
		size_t i = 0;
		float rs;

		for (; i + 8 <= cols; i += 8)
			for (int l = 0; l < 8; l++)
				acc[l] += xr[i + l] * xr[i + l];
		for (int l = 0; l < 8; l++)
			ss += acc[l];
		for (; i < cols; i++)
			ss += (double)xr[i] * xr[i];
		rs = 1.0f / sqrtf((float)(ss / (double)cols) + eps);
		if (add_one)
			for (i = 0; i < cols; i++)
				yr[i] = xr[i] * rs * (1.0f + w[i]);
		else
			for (i = 0; i < cols; i++)
				yr[i] = xr[i] * rs * w[i];
	}
}

/* rows x cols; sum in double. */
void hf_cpu_rmsnorm_ref(float *y, const float *x, const float *w, size_t rows,
			size_t cols, float eps, int add_one)
{
	for (size_t r = 0; r < rows; r++) {
		double ss = 0.0;
		float rs;

		for (size_t i = 0; i < cols; i++)
			ss += (double)x[r * cols + i] * x[r * cols + i];
		rs = 1.0f / sqrtf((float)(ss / (double)cols) + eps);
		for (size_t i = 0; i < cols; i++) {
			float g = add_one ? 1.0f + w[i] : w[i];

			y[r * cols + i] = x[r * cols + i] * rs * g;
		}
	}
}

/* nn.LayerNorm: biased variance; mean and variance in double. */
HF_CPU_CLONES
void hf_cpu_layernorm(float *y, const float *x, const float *w,
		      const float *b, size_t r0, size_t r1, size_t cols,
		      float eps)
{
	for (size_t r = r0; r < r1; r++) {
		const float *xr = x + r * cols;
		float *yr = y + r * cols;
		double s = 0.0, ss = 0.0;
		float mean, rs;

		for (size_t i = 0; i < cols; i++)
			s += xr[i];
		mean = (float)(s / (double)cols);
		for (size_t i = 0; i < cols; i++) {
			double dv = (double)xr[i] - mean;

			ss += dv * dv;
		}
		rs = 1.0f / sqrtf((float)(ss / (double)cols) + eps);
		for (size_t i = 0; i < cols; i++)
			yr[i] = (xr[i] - mean) * rs * w[i] + b[i];
	}
}

void hf_cpu_layernorm_ref(float *y, const float *x, const float *w,
			  const float *b, size_t rows, size_t cols, float eps)
{
	for (size_t r = 0; r < rows; r++) {
		double s = 0.0, ss = 0.0, mean;

		for (size_t i = 0; i < cols; i++)
			s += x[r * cols + i];
		mean = s / (double)cols;
		for (size_t i = 0; i < cols; i++)
			ss += (x[r * cols + i] - mean) * (x[r * cols + i] - mean);
		for (size_t i = 0; i < cols; i++)
			y[r * cols + i] = (float)((x[r * cols + i] - mean) /
						  sqrt(ss / (double)cols + eps)) *
					  w[i] + b[i];
	}
}

/* apply_rotary_pos_emb: q * cos + rotate_half(q) * sin, with
 * freqs = pos * inv_freq and cos, sin of float32 angles (scaled by
 * attention_scaling). Fused: each angle's cos/sin is computed once per
 * token and applied to every head. */
HF_CPU_CLONES
void hf_cpu_rope(float *x, const int32_t *pos, const float *inv_freq,
		 size_t t0, size_t t1, size_t heads, size_t head_dim,
		 size_t rot_dim, int mode, float scaling)
{
	size_t half = rot_dim / 2;

	for (size_t t = t0; t < t1; t++) {
		float p = (float)pos[t];

		for (size_t i = 0; i < half; i++) {
			float a = p * inv_freq[i];
			float c = cosf(a) * scaling, s = sinf(a) * scaling;

			for (size_t h = 0; h < heads; h++) {
				float *xh = x + (t * heads + h) * head_dim;
				size_t i0 = mode == HF_ROPE_HALF ? i : 2 * i;
				size_t i1 = mode == HF_ROPE_HALF ? i + half :
								   2 * i + 1;
				float a0 = xh[i0], a1 = xh[i1];

				xh[i0] = a0 * c - a1 * s;
				xh[i1] = a1 * c + a0 * s;
			}
		}
	}
}

/* The same, written as HF writes it: cos/sin of emb = cat(freqs, freqs)
 * over the rotated dims, then x * cos + rotate_half(x) * sin. */
void hf_cpu_rope_ref(float *x, const int32_t *pos, const float *inv_freq,
		     size_t ntok, size_t heads, size_t head_dim,
		     size_t rot_dim, int mode, float scaling)
{
	size_t half = rot_dim / 2;

	for (size_t t = 0; t < ntok; t++) {
		for (size_t h = 0; h < heads; h++) {
			float *xh = x + (t * heads + h) * head_dim;
			float out[1024];

			for (size_t i = 0; i < rot_dim; i++) {
				size_t fi = mode == HF_ROPE_HALF ? i % half : i / 2;
				float a = (float)pos[t] * inv_freq[fi];
				float rot;

				if (mode == HF_ROPE_HALF)
					rot = i < half ? -xh[i + half] : xh[i - half];
				else
					rot = i % 2 ? xh[i - 1] : -xh[i + 1];
				out[i] = xh[i] * (cosf(a) * scaling) +
					 rot * (sinf(a) * scaling);
			}
			memcpy(xh, out, rot_dim * sizeof(float));
		}
	}
}

/* softmax(x) = exp(x - max) / sum, in place, one row at a time. */
HF_CPU_CLONES
void hf_cpu_softmax(float *x, size_t r0, size_t r1, size_t cols)
{
	for (size_t r = r0; r < r1; r++) {
		float *xr = x + r * cols, mx = -INFINITY, inv;
		double sum = 0.0;

		for (size_t i = 0; i < cols; i++)
			mx = xr[i] > mx ? xr[i] : mx;
		for (size_t i = 0; i < cols; i++) {
			xr[i] = expf(xr[i] - mx);
			sum += xr[i];
		}
		inv = (float)(1.0 / sum);
		for (size_t i = 0; i < cols; i++)
			xr[i] *= inv;
	}
}

void hf_cpu_softmax_ref(float *x, size_t rows, size_t cols)
{
	for (size_t r = 0; r < rows; r++) {
		float mx = x[r * cols];
		double sum = 0.0;

		for (size_t i = 1; i < cols; i++)
			if (x[r * cols + i] > mx)
				mx = x[r * cols + i];
		for (size_t i = 0; i < cols; i++)
			sum += exp((double)x[r * cols + i] - mx);
		for (size_t i = 0; i < cols; i++)
			x[r * cols + i] = (float)(exp((double)x[r * cols + i] -
						      mx) / sum);
	}
}

/* ACT2FN: "silu", "gelu" (erf), "gelu_new" / "gelu_pytorch_tanh"
 * (0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))), "relu", tanh. */
float hf_cpu_act1(float x, int act)
{
	switch (act) {
	case HF_ACT_SILU:
		return x / (1.0f + expf(-x));
	case HF_ACT_GELU_ERF:
		return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
	case HF_ACT_GELU_TANH:
		return 0.5f * x * (1.0f + tanhf(0.7978845608028654f *
						(x + 0.044715f * x * x * x)));
	case HF_ACT_RELU:
		return x > 0.0f ? x : 0.0f;
	case HF_ACT_TANH:
		return tanhf(x);
	}
	return x;
}

/* Elements [i0, i1) of y = act(gate) * up (LlamaMLP, GemmaMLP GeGLU). */
HF_CPU_CLONES
void hf_cpu_glu(float *y, const float *gate, const float *up, size_t i0,
		size_t i1, int act)
{
	if (act == HF_ACT_SILU) {
		size_t i = i0;

		/* HF_VL lanes at a time with the vector exp */
		for (; i + HF_VL <= i1; i += HF_VL) {
			vkb g, u;

			memcpy(&g, gate + i, sizeof(g));
			memcpy(&u, up + i, sizeof(u));
			g = g / (1.0f + vexp(-g)) * u;
			memcpy(y + i, &g, sizeof(g));
		}
		for (; i < i1; i++)
			y[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
		return;
	}
	for (size_t i = i0; i < i1; i++)
		y[i] = hf_cpu_act1(gate[i], act) * up[i];
}

void hf_cpu_glu_ref(float *y, const float *gate, const float *up, size_t n,
		    int act)
{
	for (size_t i = 0; i < n; i++)
		y[i] = hf_cpu_act1(gate[i], act) * up[i];
}

/* Can query (past + t) of row b see key column j? */
static inline int visible(const float *mask, size_t b, size_t C, size_t j,
			  size_t qpos, int causal, size_t window)
{
	if (mask && mask[b * C + j] == 0.0f)
		return 0;
	if (causal && j > qpos)
		return 0;
	if (window && qpos >= j && qpos - j >= window)
		return 0;
	return 1;
}

/* eager_attention_forward: softmax(q k^T * scale + mask) v. Keys outside
 * the mask are skipped (HF adds the float32 minimum, which gives them
 * probability 0).
 *
 * One work item is (row b, kv head, block of HF_ATT_QB queries): the
 * queries of every head sharing that kv head (GQA) against blocks of
 * HF_ATT_KB keys. Each key block is transposed once into kt (d, KB), so a
 * query's KB scores are d vector multiply-adds over kt, with no
 * horizontal sums; then a running maximum per query (the online softmax
 * of FlashAttention) rescales its sum and output when a block raises it,
 * and the block's probabilities weight the value rows. */
#define HF_ATT_QB 8
#define HF_ATT_KB HF_VL
#define HF_ATT_MAXG 64		/* query heads per kv head */


#if HF_VL == 16 && (__GNUC__ >= 12 || defined(__clang__))
#define HF_ATT_SHUF 1
/* kt[i][jj] = k0[jj * stride + i] for 16 dims i and rows jj < nb (zeros
 * past nb): a 16 x 16 transpose in registers, four rounds of the
 * perfect shuffle (row 2i, 2i + 1 <- the low, high halves of rows i and
 * i + 8 interleaved), in place of 256 scalar loads and stores. */
static inline void kt_fill16(vkb *kt, const float *k0, size_t stride,
			     size_t nb)
{
	vkb r[16], t[16];

	for (size_t jj = 0; jj < 16; jj++) {
		r[jj] = (vkb){ 0 };
		if (jj < nb)
			memcpy(&r[jj], k0 + jj * stride, sizeof(vkb));
	}
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 8; i++) {
			t[2 * i] = __builtin_shufflevector(r[i], r[i + 8],
				0, 16, 1, 17, 2, 18, 3, 19,
				4, 20, 5, 21, 6, 22, 7, 23);
			t[2 * i + 1] = __builtin_shufflevector(r[i], r[i + 8],
				8, 24, 9, 25, 10, 26, 11, 27,
				12, 28, 13, 29, 14, 30, 15, 31);
		}
		memcpy(r, t, sizeof(r));
	}
	memcpy(kt, r, sizeof(r));
}
#endif

size_t hf_cpu_attention_items(size_t B, size_t T, size_t hkv)
{
	return B * hkv * ((T + HF_ATT_QB - 1) / HF_ATT_QB);
}

/* The items of hf_cpu_attention (S == 1, B unused) or of
 * hf_cpu_attention_split (S > 1): item it is split s = it / (B * hkv *
 * nqb) of the keys of item it % (B * hkv * nqb), its output unscaled in
 * o + s * B * T * hq * d and its running max and sum in ml. */
static inline __attribute__((always_inline)) void
att_run(float *o, float *ml, const float *q, const void *k, const void *v,
	int kvt, const float *mask, size_t i0, size_t i1, size_t B,
	size_t T, size_t C, size_t hq, size_t hkv, size_t d, size_t past,
	int causal, size_t window, float scale, size_t S)
{
	size_t G = hq / hkv, kvw = hkv * d, nqb = (T + HF_ATT_QB - 1) / HF_ATT_QB;
	size_t nit = B * hkv * nqb;
	size_t rb = hf_kv_bytes(kvt, kvw, d), hb = hf_kv_bytes(kvt, d, d);
	/* a key block's rows of this kv head as float32, where the cache
	 * holds another type (backend/kvfmt.h) */
	float ktile[HF_ATT_KB * 256], vtile[HF_ATT_KB * 256];
	vkb kt[256];		/* kt[i][jj] = k[j0 + jj][i] */
	float mx[HF_ATT_QB * HF_ATT_MAXG], sum[HF_ATT_QB * HF_ATT_MAXG];
	float *o0 = o;

	for (size_t it0 = i0; it0 < i1; it0++) {
		size_t s = S > 1 ? it0 / nit : 0, it = S > 1 ? it0 % nit : it0;
		size_t qb = it % nqb, kh = (it / nqb) % hkv, b = it / (nqb * hkv);
		size_t t0 = qb * HF_ATT_QB;
		size_t nt = T - t0 < HF_ATT_QB ? T - t0 : HF_ATT_QB;
		size_t R = nt * G;
		size_t j_end = causal ? past + t0 + nt : past + T;
		size_t j_beg = 0;

		if (window && past + t0 + 1 > window)
			j_beg = past + t0 + 1 - window;
		if (S > 1) {
			/* whole key blocks per split */
			size_t nkb = (j_end - j_beg + HF_ATT_KB - 1) / HF_ATT_KB;
			size_t per = (nkb + S - 1) / S * HF_ATT_KB;
			size_t jb = j_beg + s * per, je = jb + per;

			j_end = je < j_end ? je : j_end;
			j_beg = jb < j_end ? jb : j_end;
			o = o0 + s * B * T * hq * d;
		}
		for (size_t r = 0; r < R; r++) {
			size_t t = t0 + r / G, h = kh * G + r % G;

			memset(o + (b * T + t) * hq * d + h * d, 0, d * sizeof(float));
			mx[r] = -INFINITY;
			sum[r] = 0.0f;
		}
		for (size_t j0 = j_beg; j0 < j_end; j0 += HF_ATT_KB) {
			size_t nb = j_end - j0 < HF_ATT_KB ? j_end - j0 : HF_ATT_KB;
						size_t ik = 0, ks = kvw;	/* key rows, their stride */
			const float *kb, *vb;

			if (kvt == HF_KV_F32) {
				kb = (const float *)k + (b * C + j0) * kvw + kh * d;
				vb = (const float *)v + (b * C + j0) * kvw + kh * d;
			} else {
				for (size_t jj = 0; jj < nb; jj++) {
					size_t at = (b * C + j0 + jj) * rb + kh * hb;

					hf_kv_load(kvt, ktile + jj * d,
						   (const char *)k + at, d, d);
					hf_kv_load(kvt, vtile + jj * d,
						   (const char *)v + at, d, d);
				}
				kb = ktile;
				vb = vtile;
				ks = d;
			}
#ifdef HF_ATT_SHUF
			for (; ik + HF_VL <= d; ik += HF_VL)
				kt_fill16(kt + ik, kb + ik, ks, nb);
#endif
			for (size_t jj = 0; jj < HF_ATT_KB && ik < d; jj++) {
				const float *kr = kb + jj * ks;


				for (size_t i = ik; i < d; i++)
					kt[i][jj] = jj < nb ? kr[i] : 0.0f;
			}
			for (size_t r = 0; r < R; r++) {
				size_t t = t0 + r / G, h = kh * G + r % G;
				size_t qpos = past + t;
				const float *qv = q + (b * T + t) * hq * d + h * d;
				float *ov = o + (b * T + t) * hq * d + h * d;
				/* four chains of multiply-adds, not one */
				vkb a0 = { 0 }, a1 = { 0 }, a2 = { 0 }, a3 = { 0 };
				float sc[HF_ATT_KB], pr[HF_ATT_KB], bmx = -INFINITY;
				size_t i = 0;

				if (causal && j0 > qpos)
					continue;
				for (; i + 4 <= d; i += 4) {
					a0 += qv[i] * kt[i];
					a1 += qv[i + 1] * kt[i + 1];
					a2 += qv[i + 2] * kt[i + 2];
					a3 += qv[i + 3] * kt[i + 3];
				}
				for (; i < d; i++)
					a0 += qv[i] * kt[i];
				a0 = ((a0 + a1) + (a2 + a3)) * scale;
				memcpy(sc, &a0, sizeof(sc));
				if (nb == HF_ATT_KB && !mask &&
				    (!causal || j0 + nb - 1 <= qpos) &&
				    (!window || qpos - j0 < window)) {
					for (size_t jj = 0; jj < nb; jj++)
						bmx = sc[jj] > bmx ? sc[jj] : bmx;
				} else {
					for (size_t jj = 0; jj < HF_ATT_KB; jj++) {
						size_t j = j0 + jj;

						if (jj >= nb || (causal && j > qpos) ||
						    (window && qpos >= j &&
						     qpos - j >= window) ||
						    (mask && mask[b * C + j] == 0.0f)) {
							sc[jj] = -INFINITY;
							continue;
						}
						bmx = sc[jj] > bmx ? sc[jj] : bmx;
					}
					memcpy(&a0, sc, sizeof(sc));
				}
				if (bmx == -INFINITY)
					continue;
				if (bmx > mx[r]) {
					float rs = expf(mx[r] - bmx);	/* 0 at first */

					sum[r] *= rs;
					for (i = 0; i < d; i++)
						ov[i] *= rs;
					mx[r] = bmx;
				}
				a0 = vexp(a0 - mx[r]);	/* -inf lanes give 0 */
				memcpy(pr, &a0, sizeof(pr));
				for (size_t jj = 0; jj < nb; jj++)
					sum[r] += pr[jj];
				/* o += p v over the block: a chunk of o in two
				 * registers (even and odd keys) at a time */
				i = 0;
				for (; i + HF_ATT_KB <= d; i += HF_ATT_KB) {
					vkb e = { 0 }, od = { 0 }, x, ch;
					size_t jj = 0;

					for (; jj + 2 <= nb; jj += 2) {
						memcpy(&x, vb + jj * ks + i, sizeof(x));
						e += pr[jj] * x;
						memcpy(&x, vb + (jj + 1) * ks + i,
						       sizeof(x));
						od += pr[jj + 1] * x;
					}
					if (jj < nb) {
						memcpy(&x, vb + jj * ks + i, sizeof(x));
						e += pr[jj] * x;
					}
					memcpy(&ch, ov + i, sizeof(ch));
					ch += e + od;
					memcpy(ov + i, &ch, sizeof(ch));
				}
				for (size_t jj = 0; i < d && jj < nb; jj++) {
					const float *vv = vb + jj * ks;

					for (size_t i2 = i; i2 < d; i2++)
						ov[i2] += pr[jj] * vv[i2];
				}
			}
		}
		for (size_t r = 0; r < R; r++) {
			size_t t = t0 + r / G, h = kh * G + r % G;
			float *ov = o + (b * T + t) * hq * d + h * d, inv;

			if (ml) {
				float *m2 = ml + 2 * ((s * B * T + b * T + t) *
						      hq + h);

				m2[0] = mx[r];
				m2[1] = sum[r];
				continue;
			}
			if (sum[r] == 0.0f)
				continue;	/* saw nothing: zeros */
			inv = 1.0f / sum[r];
			for (size_t i = 0; i < d; i++)
				ov[i] *= inv;
		}
	}
}

HF_CPU_CLONES
void hf_cpu_attention(float *o, const float *q, const void *k,
		      const void *v, int kvt, const float *mask, size_t i0,
		      size_t i1, size_t T, size_t C, size_t hq, size_t hkv,
		      size_t d, size_t past, int causal, size_t window,
		      float scale)
{
	att_run(o, NULL, q, k, v, kvt, mask, i0, i1, 0, T, C, hq, hkv, d,
		past, causal, window, scale, 1);
}

HF_CPU_CLONES
void hf_cpu_attention_split(float *po, float *ml, const float *q,
			    const void *k, const void *v, int kvt,
			    const float *mask, size_t i0, size_t i1, size_t B,
			    size_t T, size_t C, size_t hq, size_t hkv, size_t d,
			    size_t past, int causal, size_t window, float scale,
			    size_t S)
{
	att_run(po, ml, q, k, v, kvt, mask, i0, i1, B, T, C, hq, hkv, d,
		past, causal, window, scale, S);
}

void hf_cpu_attention_merge(float *o, const float *po, const float *ml,
			    size_t rows, size_t d, size_t S)
{
	for (size_t r = 0; r < rows; r++) {
		float m = -INFINITY, l = 0.0f, w[64];
		float *ov = o + r * d;

		for (size_t s = 0; s < S; s++)
			m = ml[2 * (s * rows + r)] > m ? ml[2 * (s * rows + r)] : m;
		memset(ov, 0, d * sizeof(float));
		if (m == -INFINITY)
			continue;	/* saw nothing: zeros */
		for (size_t s = 0; s < S; s++) {
			w[s] = expf(ml[2 * (s * rows + r)] - m);	/* 0 if none */
			l += w[s] * ml[2 * (s * rows + r) + 1];
		}
		for (size_t s = 0; s < S; s++)
			for (size_t i = 0; i < d; i++)
				ov[i] += w[s] * po[(s * rows + r) * d + i];
		for (size_t i = 0; i < d; i++)
			ov[i] /= l;
	}
}

/* The plain version, three passes over the keys (max, sum of exp, then
 * the weighted sum), recomputing the scores each time so that it needs
 * no buffer; dot products and sums in double. */
static double score_ref(const float *q, const float *k, size_t d)
{
	double s = 0.0;

	for (size_t i = 0; i < d; i++)
		s += (double)q[i] * k[i];
	return s;
}

void hf_cpu_attention_ref(float *o, const float *q, const float *k,
			  const float *v, const float *mask, size_t B,
			  size_t T, size_t C, size_t hq, size_t hkv, size_t d,
			  size_t past, int causal, size_t window, float scale)
{
	size_t nk = past + T, kvw = hkv * d;

	for (size_t b = 0; b < B; b++)
	for (size_t t = 0; t < T; t++)
	for (size_t h = 0; h < hq; h++) {
		size_t kh = h / (hq / hkv), qpos = past + t;
		const float *qv = q + ((b * T + t) * hq + h) * d;
		float *ov = o + ((b * T + t) * hq + h) * d;
		double mx = -INFINITY, sum = 0.0;

		for (size_t j = 0; j < nk; j++)
			if (visible(mask, b, C, j, qpos, causal, window)) {
				double sc = score_ref(qv, k + (b * C + j) * kvw +
						      kh * d, d) * scale;

				mx = sc > mx ? sc : mx;
			}
		for (size_t j = 0; j < nk; j++)
			if (visible(mask, b, C, j, qpos, causal, window))
				sum += exp(score_ref(qv, k + (b * C + j) * kvw +
						     kh * d, d) * scale - mx);
		for (size_t i = 0; i < d; i++) {
			double acc = 0.0;

			for (size_t j = 0; j < nk; j++)
				if (visible(mask, b, C, j, qpos, causal, window))
					acc += exp(score_ref(qv, k + (b * C + j) *
							     kvw + kh * d, d) *
						   scale - mx) / sum *
					       v[(b * C + j) * kvw + kh * d + i];
			ov[i] = sum > 0.0 ? (float)acc : 0.0f;
		}
	}
}

/* MixtralSparseMoeBlock routing: softmax over the E logits (float32),
 * top k (ties to the lower index, as torch.topk on CPU), renormalised. */
void hf_cpu_moe_route(float *w, int32_t *experts, const float *logits,
		      size_t t0, size_t t1, size_t E, size_t k)
{
	for (size_t t = t0; t < t1; t++) {
		const float *lr = logits + t * E;
		float mx = -INFINITY, p[256];
		double sum = 0.0, wsum = 0.0;

		for (size_t e = 0; e < E; e++)
			mx = lr[e] > mx ? lr[e] : mx;
		for (size_t e = 0; e < E; e++) {
			p[e] = expf(lr[e] - mx);
			sum += p[e];
		}
		for (size_t e = 0; e < E; e++)
			p[e] = (float)(p[e] / sum);
		for (size_t j = 0; j < k; j++) {
			size_t best = 0;
			float bv = -1.0f;

			for (size_t e = 0; e < E; e++) {
				int taken = 0;

				for (size_t jj = 0; jj < j; jj++)
					taken |= experts[t * k + jj] == (int32_t)e;
				if (!taken && p[e] > bv) {
					bv = p[e];
					best = e;
				}
			}
			experts[t * k + j] = (int32_t)best;
			w[t * k + j] = bv;
			wsum += bv;
		}
		for (size_t j = 0; j < k; j++)
			w[t * k + j] = (float)(w[t * k + j] / wsum);
	}
}
