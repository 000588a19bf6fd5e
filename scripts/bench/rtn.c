/* scripts/bench/rtn.c: round-to-nearest in the GPTQ layout for one linear
 * (lib/quant's hf_quant_rtn, the baseline GPTQ is measured against), for
 * scripts/bench/quant's RTN rows: the float32 weight (rows, cols)
 * row-major on stdin, its GPTQ tensors on stdout, each as a line
 * "SUFFIX NBYTES\n" and then NBYTES bytes (qweight, qzeros, scales,
 * g_idx, in that order).
 *
 * usage: rtn BITS GROUP_SIZE ROWS COLS SYM V2 < weight.f32 > tensors
 *
 * Built by scripts/bench/quant against the build's libhf.a. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "quant/quantize.h"

int main(int argc, char **argv)
{
	struct hf_qlinear q;
	struct hf_err err = { 0 };
	size_t rows, cols, n;
	float *W;
	int rc = 0;

	if (argc != 7) {
		fprintf(stderr, "usage: rtn BITS GROUP_SIZE ROWS COLS SYM V2 "
			"< weight.f32 > tensors\n");
		return 2;
	}
	rows = strtoul(argv[3], NULL, 10);
	cols = strtoul(argv[4], NULL, 10);
	if (!rows || !cols || rows > ((size_t)1 << 20) ||
	    cols > ((size_t)1 << 20)) {
		fprintf(stderr, "rtn: bad shape %s x %s\n", argv[3], argv[4]);
		return 2;
	}
	n = rows * cols;
	if (!(W = malloc(n * sizeof(float)))) {
		fprintf(stderr, "rtn: out of memory\n");
		return 1;
	}
	if (fread(W, sizeof(float), n, stdin) != n) {
		fprintf(stderr, "rtn: stdin holds fewer than %zu floats\n", n);
		free(W);
		return 1;
	}
	if (hf_quant_rtn(&q, W, rows, cols, (unsigned)atoi(argv[1]),
			 atol(argv[2]), atoi(argv[5]), atoi(argv[6]), &err)) {
		fprintf(stderr, "rtn: %s\n", err.msg);
		free(W);
		return 1;
	}
	for (size_t i = 0; i < q.n; i++) {
		printf("%s %zu\n", q.t[i].suffix, q.t[i].nbytes);
		if (fwrite(q.t[i].data, 1, q.t[i].nbytes, stdout) !=
		    q.t[i].nbytes)
			rc = 1;
	}
	if (fflush(stdout))
		rc = 1;
	hf_qlinear_free(&q);
	free(W);
	if (rc)
		fprintf(stderr, "rtn: writing stdout failed\n");
	return rc;
}
