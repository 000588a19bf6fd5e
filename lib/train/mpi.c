/* lib/train/mpi.c: data parallelism over MPI (see mpi.h). */
#include "train/mpi.h"

#include <limits.h>
#include <stdlib.h>

#ifdef HF_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank, g_size = 1, g_started;

static int under_launcher(void)
{
	return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") ||
	       getenv("PMIX_RANK");
}

int hf_mpi_available(void)
{
#ifdef HF_HAVE_MPI
	return 1;
#else
	return 0;
#endif
}

int hf_mpi_init(struct hf_err *err)
{
	g_rank = 0;
	g_size = 1;
	if (!under_launcher())
		return 0;
#ifdef HF_HAVE_MPI
	{
		int inited = 0;

		MPI_Initialized(&inited);
		if (!inited) {
			if (MPI_Init(NULL, NULL) != MPI_SUCCESS)
				return hf_err_set(err, HF_EIO, "MPI_Init failed");
			g_started = 1;
		}
		MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
		MPI_Comm_size(MPI_COMM_WORLD, &g_size);
		return 0;
	}
#else
	return hf_err_set(err, HF_EUNSUPPORTED,
			  "started by mpirun, but this build has no MPI (install libopenmpi-dev and rebuild)");
#endif
}

void hf_mpi_finalize(void)
{
#ifdef HF_HAVE_MPI
	if (g_started)
		MPI_Finalize();
#endif
	g_started = 0;
}

void hf_mpi_abort(int code)
{
#ifdef HF_HAVE_MPI
	if (g_size > 1)
		MPI_Abort(MPI_COMM_WORLD, code);
#endif
	(void)code;
}

int hf_mpi_rank(void)
{
	return g_rank;
}

int hf_mpi_size(void)
{
	return g_size;
}

#ifdef HF_HAVE_MPI
/* MPI counts are int: reduce in chunks of at most INT_MAX elements. */
static int allreduce(void *buf, size_t n, size_t elem, MPI_Datatype t,
		     MPI_Op op, struct hf_err *err)
{
	char *p = buf;

	while (n) {
		int c = n > INT_MAX ? INT_MAX : (int)n;

		if (MPI_Allreduce(MPI_IN_PLACE, p, c, t, op, MPI_COMM_WORLD) != MPI_SUCCESS)
			return hf_err_set(err, HF_EIO, "MPI_Allreduce of %d values failed", c);
		p += (size_t)c * elem;
		n -= (size_t)c;
	}
	return 0;
}
#endif

int hf_mpi_allreduce_sum(float *buf, size_t n, struct hf_err *err)
{
#ifdef HF_HAVE_MPI
	if (g_size > 1)
		return allreduce(buf, n, sizeof(float), MPI_FLOAT, MPI_SUM, err);
#endif
	return 0;
}

int hf_mpi_allreduce_sum_f64(double *buf, size_t n, struct hf_err *err)
{
#ifdef HF_HAVE_MPI
	if (g_size > 1)
		return allreduce(buf, n, sizeof(double), MPI_DOUBLE, MPI_SUM, err);
#endif
	return 0;
}

int hf_mpi_allreduce_max_i32(int32_t *x, struct hf_err *err)
{
#ifdef HF_HAVE_MPI
	if (g_size > 1)
		return allreduce(x, 1, sizeof(*x), MPI_INT32_T, MPI_MAX, err);
#endif
	return 0;
}

int hf_mpi_average_grads(float *g, size_t n, double tokens,
			 struct hf_err *err)
{
	float s;
	int rc = hf_mpi_allreduce_sum(g, n, err);

	if (rc)
		return rc;
	if (!(tokens > 0.0))
		return hf_err_set(err, HF_EINVAL, "no label tokens in the global batch");
	s = (float)(1.0 / tokens);
	for (size_t i = 0; i < n; i++)
		g[i] *= s;
	return 0;
}

int hf_mpi_barrier(struct hf_err *err)
{
#ifdef HF_HAVE_MPI
	if (g_size > 1 && MPI_Barrier(MPI_COMM_WORLD) != MPI_SUCCESS)
		return hf_err_set(err, HF_EIO, "MPI_Barrier failed");
#endif
	return 0;
}

int hf_mpi_bcast(void *buf, size_t n, struct hf_err *err)
{
#ifdef HF_HAVE_MPI
	char *p = buf;

	while (g_size > 1 && n) {
		int c = n > INT_MAX ? INT_MAX : (int)n;

		if (MPI_Bcast(p, c, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
			return hf_err_set(err, HF_EIO, "MPI_Bcast of %d bytes failed", c);
		p += c;
		n -= (size_t)c;
	}
#endif
	return 0;
}
