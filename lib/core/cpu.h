/* lib/core/cpu.h: which instruction set extensions this CPU (and OS) can
 * run, read once from CPUID. Works the same under gcc and clang (clang's
 * __builtin_cpu_supports lacks "f16c" and "sha"). */
#ifndef HF_CORE_CPU_H
#define HF_CORE_CPU_H

enum hf_cpu_feature {
	HF_CPU_SSE41,
	HF_CPU_AVX2,
	HF_CPU_FMA,
	HF_CPU_F16C,
	HF_CPU_SHA,
	HF_CPU_AVX512F,
	HF_CPU_AVX512BW,
	HF_CPU_AVX512VL,
	HF_CPU_AVX512BF16,
	HF_CPU_FEATURE_COUNT
};

/* 1 if the feature is usable: the CPU has it and, for AVX and AVX-512, the
 * OS saves the wider registers (XGETBV). Always 0 off x86. */
int hf_cpu_has(enum hf_cpu_feature f);

#endif
