/* lib/train/mpi.h: data-parallel training over MPI (Open MPI), or one
 * process when the build has no MPI or the command was not started by
 * mpirun. Each rank computes the gradients of its shard of a global
 * batch as sums over its tokens; hf_mpi_allreduce_sum adds them over the
 * ranks, and the caller divides by the global token count, so N ranks
 * give one process's step on the same global batch up to float rounding.
 * Rank 0 alone writes checkpoints and metrics. */
#ifndef HF_TRAIN_MPI_H
#define HF_TRAIN_MPI_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* 1 when this build can run over MPI. */
int hf_mpi_available(void);

/* Start MPI when the process runs under mpirun (Open MPI's
 * OMPI_COMM_WORLD_SIZE, or PMI_SIZE / PMIX_RANK of other launchers, is in
 * the environment); otherwise, and in a build without MPI, a single rank
 * 0 of 1. Under mpirun with a build that has no MPI: HF_EUNSUPPORTED
 * (every rank would train alone on the whole data). Call once. */
int hf_mpi_init(struct hf_err *err);
/* Finalize MPI if hf_mpi_init started it. */
void hf_mpi_finalize(void);
/* Abort every rank (after a fatal error on one), with exit code code. */
void hf_mpi_abort(int code);

int hf_mpi_rank(void);
int hf_mpi_size(void);

/* In place: buf on every rank becomes the element-wise sum over ranks
 * (the same order on all ranks, so every rank gets the same bits). */
int hf_mpi_allreduce_sum(float *buf, size_t n, struct hf_err *err);
int hf_mpi_allreduce_sum_f64(double *buf, size_t n, struct hf_err *err);
/* Largest of x over the ranks (a rank that was interrupted tells all). */
int hf_mpi_allreduce_max_i32(int32_t *x, struct hf_err *err);
/* Sum of the gradients over ranks, then g *= 1 / tokens: the mean over
 * the global batch's label tokens. */
int hf_mpi_average_grads(float *g, size_t n, double tokens,
			 struct hf_err *err);
int hf_mpi_barrier(struct hf_err *err);
/* Rank 0's n bytes at buf to every rank. */
int hf_mpi_bcast(void *buf, size_t n, struct hf_err *err);

#endif
