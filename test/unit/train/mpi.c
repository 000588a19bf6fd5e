/* Tests for lib/train/mpi.c. Run alone: one rank, every reduction the
 * identity. Run as "mpirun -np N test-train-mpi N" (meson's train/mpi-np2):
 * N ranks, each adds its own values, and every rank must get the sums;
 * gradients averaged over the global token count equal those of one
 * process holding every rank's sum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>

#include "train/mpi.h"

static int want_ranks = 1;

static void test_ranks_as_launched(void **state)
{
	assert_int_equal(hf_mpi_size(), want_ranks);
	assert_true(hf_mpi_rank() >= 0 && hf_mpi_rank() < want_ranks);
}

/* Rank r contributes r + 1 + i / 8 at index i (exact in float). */
static void test_allreduce_sums_over_ranks(void **state)
{
	enum { N = 1000 };
	float *x = malloc(N * sizeof(float));
	double d[3] = { 1.5, -2.0, 0.25 };
	int32_t m = hf_mpi_rank() * 10;
	int n = hf_mpi_size();

	for (int i = 0; i < N; i++)
		x[i] = (float)(hf_mpi_rank() + 1) + (float)i / 8.0f;
	assert_int_equal(hf_mpi_allreduce_sum(x, N, NULL), 0);
	for (int i = 0; i < N; i++) {
		float want = (float)(n * (n + 1) / 2) + (float)n * ((float)i / 8.0f);

		if (x[i] != want)
			fail_msg("rank %d, x[%d]: got %g want %g", hf_mpi_rank(), i, x[i], want);
	}
	assert_int_equal(hf_mpi_allreduce_sum_f64(d, 3, NULL), 0);
	assert_true(d[0] == 1.5 * n && d[1] == -2.0 * n && d[2] == 0.25 * n);
	assert_int_equal(hf_mpi_allreduce_max_i32(&m, NULL), 0);
	assert_int_equal(m, (n - 1) * 10);
	free(x);
}

/* Rank r holds the gradient sums of its own tokens; the mean over the
 * global count is their sum over ranks / tokens. */
static void test_average_grads_divides_by_global_tokens(void **state)
{
	float g[4];
	int n = hf_mpi_size();
	struct hf_err err = { 0 };

	for (int i = 0; i < 4; i++)
		g[i] = (float)(i + 1) * (float)(hf_mpi_rank() + 1);
	/* sum over ranks: (i + 1) * n (n + 1) / 2; 8 tokens in all */
	assert_int_equal(hf_mpi_average_grads(g, 4, 8.0, &err), 0);
	for (int i = 0; i < 4; i++)
		assert_float_equal(g[i], (float)(i + 1) * (float)(n * (n + 1) / 2) / 8.0f, 1e-7);
	assert_int_equal(hf_mpi_average_grads(g, 4, 0.0, &err), HF_EINVAL);
	assert_int_equal(hf_mpi_barrier(NULL), 0);
}

static void test_bcast_gives_rank_zeros_bytes(void **state)
{
	uint64_t seed = hf_mpi_rank() == 0 ? 0x1234abcdull : 0;

	assert_int_equal(hf_mpi_bcast(&seed, sizeof(seed), NULL), 0);
	assert_true(seed == 0x1234abcdull);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ranks_as_launched),
		cmocka_unit_test(test_allreduce_sums_over_ranks),
		cmocka_unit_test(test_average_grads_divides_by_global_tokens),
		cmocka_unit_test(test_bcast_gives_rank_zeros_bytes),
	};
	struct hf_err err = { 0 };
	int rc;

	if (argc > 1)
		want_ranks = atoi(argv[1]);
	if (want_ranks > 1 && !hf_mpi_available()) {
		fprintf(stderr, "this build has no MPI\n");
		return 77;
	}
	if (hf_mpi_init(&err)) {
		fprintf(stderr, "hf_mpi_init: %s\n", err.msg);
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	hf_mpi_finalize();
	return rc;
}
