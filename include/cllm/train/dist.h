/*
 * dist.h: data-parallel training over MPI (docs/MPI.md), the process-level part.
 *
 * A build with MPI (the Makefile defines CLLM_MPI when it finds Open MPI)
 * joins the job at the first cllm_dist_init when the process was started by
 * an MPI launcher (mpirun / mpiexec: OMPI_COMM_WORLD_SIZE, PMI_SIZE or
 * PMIX_RANK in the environment); a plain `cllm pretrain` never initialises
 * MPI and runs as one rank. A build without MPI has the same functions,
 * always one rank (a shim, no second code path in the trainers).
 *
 * Ranks other than 0 send stdout to /dev/null (rank 0 prints the results);
 * their stderr stays, so an error on any rank is seen.
 *
 * The trainers' side (which units of a step a rank computes, the gradient
 * reduction, ZeRO-1) is the harness's (src/train/harness.h, th_unit).
 */
#ifndef CLLM_TRAIN_DIST_H
#define CLLM_TRAIN_DIST_H

#include <stddef.h>

/* Joins the MPI job when launched by mpirun (once; later calls return at
 * once). Returns the number of ranks (1 without MPI or a launcher). */
int cllm_dist_init(void);
int cllm_dist_rank(void);
int cllm_dist_size(void);
/* 1 when this binary was built with MPI. */
int cllm_dist_compiled(void);
/* The end of main: with MPI initialised, finalizes after exit code 0, and
 * otherwise calls MPI_Abort so that no other rank waits for this one.
 * Returns rc. */
int cllm_dist_exit(int rc);

/* Optimizer memory per rank, in bytes, for n trainable parameters over
 * `ranks` data-parallel ranks: AdamW's two fp32 moments, the whole of them
 * (zero = 0) or a 1/ranks slice (ZeRO-1, zero = 1; slices are whole 64 Ki
 * chunks, so the largest slice is reported). */
double cllm_dist_optimizer_bytes(size_t n, int ranks, int zero);
/* The gradient reduction's receive buffer per rank, in bytes (0 for one
 * rank): the reduce-scatter moves at most ~64 MiB per round. */
double cllm_dist_reduce_buffer_bytes(size_t n, int ranks, int zero);

#endif
