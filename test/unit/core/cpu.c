/* Tests for lib/core/cpu.c: CPUID agrees with the kernel's view of the CPU
 * (/proc/cpuinfo "flags", which also reflects what the OS enabled). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/cpu.h"

static int cpuinfo_has(const char *flags, const char *flag)
{
	size_t n = strlen(flag);

	for (const char *p = flags; (p = strstr(p, flag)); p += n)
		if ((p == flags || p[-1] == ' ') &&
		    (p[n] == ' ' || p[n] == '\n' || p[n] == '\0'))
			return 1;
	return 0;
}

static void test_features_match_proc_cpuinfo(void **state)
{
	static const struct {
		enum hf_cpu_feature f;
		const char *flag;
	} map[] = {
		{ HF_CPU_SSE41, "sse4_1" },	{ HF_CPU_AVX2, "avx2" },
		{ HF_CPU_FMA, "fma" },		{ HF_CPU_F16C, "f16c" },
		{ HF_CPU_SHA, "sha_ni" },	{ HF_CPU_AVX512F, "avx512f" },
		{ HF_CPU_AVX512BW, "avx512bw" },
		{ HF_CPU_AVX512VL, "avx512vl" },
		{ HF_CPU_AVX512BF16, "avx512_bf16" },
	};
	static char line[65536];
#if !defined(__x86_64__) && !defined(__i386__)
	skip();	/* CPUID is x86's; under qemu-user the host's file shows */
#endif
	FILE *f = fopen("/proc/cpuinfo", "r");
	int found = 0;

	if (!f)
		skip();
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5)) {
			found = 1;
			break;
		}
	fclose(f);
	if (!found)
		skip();	/* not x86 */
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		int want = cpuinfo_has(line, map[i].flag);

		if (hf_cpu_has(map[i].f) != want)
			fail_msg("%s: cpuid says %d, /proc/cpuinfo says %d",
				 map[i].flag, hf_cpu_has(map[i].f), want);
	}
}

static void test_out_of_range_is_absent(void **state)
{
	assert_int_equal(hf_cpu_has(HF_CPU_FEATURE_COUNT), 0);
	assert_int_equal(hf_cpu_has((enum hf_cpu_feature)-1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_features_match_proc_cpuinfo),
		cmocka_unit_test(test_out_of_range_is_absent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
