/* lib/core/cpu.c: CPUID feature bits (Intel SDM vol. 2A, CPUID; XCR0 from
 * XGETBV tells whether the OS saves YMM/ZMM state). */
#include "core/cpu.h"

#include <pthread.h>

static int features[HF_CPU_FEATURE_COUNT];
static pthread_once_t once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long xgetbv0(void)
{
	unsigned lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((unsigned long long)hi << 32) | lo;
}

static void detect(void)
{
	unsigned a, b, c, d, b7 = 0, a71 = 0, max;
	int avx_os = 0, avx512_os = 0;

	max = __get_cpuid_max(0, NULL);
	if (max < 1 || !__get_cpuid(1, &a, &b, &c, &d))
		return;
	if (c & (1u << 27)) {	/* OSXSAVE */
		unsigned long long xcr0 = xgetbv0();

		avx_os = (xcr0 & 0x6) == 0x6;		/* XMM, YMM */
		avx512_os = (xcr0 & 0xE6) == 0xE6;	/* + opmask, ZMM */
	}
	features[HF_CPU_SSE41] = !!(c & (1u << 19));
	features[HF_CPU_FMA] = avx_os && (c & (1u << 12));
	features[HF_CPU_F16C] = avx_os && (c & (1u << 29));
	if (max >= 7) {
		__cpuid_count(7, 0, a, b7, c, d);
		if (a >= 1)	/* highest subleaf of leaf 7 */
			__cpuid_count(7, 1, a71, b, c, d);
	}
	features[HF_CPU_AVX2] = avx_os && (b7 & (1u << 5));
	features[HF_CPU_SHA] = !!(b7 & (1u << 29));
	features[HF_CPU_AVX512F] = avx512_os && (b7 & (1u << 16));
	features[HF_CPU_AVX512BW] = avx512_os && (b7 & (1u << 30));
	features[HF_CPU_AVX512VL] = avx512_os && (b7 & (1u << 31));
	features[HF_CPU_AVX512BF16] = avx512_os && (a71 & (1u << 5));
}
#else
static void detect(void)
{
}
#endif

int hf_cpu_has(enum hf_cpu_feature f)
{
	pthread_once(&once, detect);
	return f >= 0 && f < HF_CPU_FEATURE_COUNT ? features[f] : 0;
}
