/*
 * dist_internal.h: the harness's data-parallel hooks (dist.c); not public
 * API. harness.c calls these at a few points; trainers only call th_unit
 * (harness.h). docs/MPI.md has the design.
 *
 * One rank (no MPI, or mpirun -np 1) makes every call here a no-op, except
 * that CLLM_GRAD_GROUPS=G in the environment makes one process sum its
 * gradients in G groups exactly as G ranks do (th_unit), which is how one
 * process reproduces an N-rank run bit for bit.
 */
#ifndef CLLM_TRAIN_DIST_INTERNAL_H
#define CLLM_TRAIN_DIST_INTERNAL_H

#include "harness.h"

/* Creates h->dist (once): joins the MPI job, reads CLLM_GRAD_GROUPS / CLLM_ZERO. */
cllm_status th_dist_open(th_run *h, cllm_error *err);
void th_dist_free(th_run *h);
/* 1 on the rank that owns the run directory, prints and writes (rank 0). */
int th_dist_writer(const th_run *h);
int th_dist_ranks(const th_run *h);
/* After rank 0 tried to open the run directory (status st, h->latest):
 * every rank gets rank 0's outcome; the others fail when rank 0 did. */
cllm_status th_dist_share_open(th_run *h, cllm_status st, cllm_error *err);
/* Every rank must have rank 0's settings, data fingerprint, tokenizer and layout. */
cllm_status th_dist_check_same(th_run *h, cllm_error *err);
/* Appends "grad_groups=G" to the config text (data-parallel trainers). */
void th_dist_config_line(th_run *h);
/* The note when a checkpoint made with other gradient groups is resumed. */
void th_dist_resume_note(th_run *h, const char *saved_config);
/* After rank 0's resume (status st): weights, moments, Adam step and state
 * to every rank. */
cllm_status th_dist_share_resume(th_run *h, cllm_status st, cllm_error *err);
/* Around hooks.step: group bookkeeping; then the step's global loss and
 * tokens (sums over ranks in rank order), the agreed stop flag, timings. */
void th_dist_step_begin(th_run *h);
cllm_status th_dist_step_end(th_run *h, double *loss, double *tokens, double compute_s, cllm_error *err);
/* 1 when any rank's stop flag was raised at the last step_end (or, one rank: the flag). */
int th_dist_stop_requested(const th_run *h);
/* The gradient sum over ranks (rank order), before the norms. */
void th_dist_reduce(th_run *h);
/* Global gradient norm of optimizer k (0 = opt, then extras): cllm_grad_norm's value. */
double th_dist_norm(th_run *h, int k);
/* AdamW for optimizer k: the whole block, or under ZeRO-1 this rank's slice then an all-gather. */
void th_dist_update(th_run *h, int k, float lr, double norm);
/* Before a checkpoint: under ZeRO-1 the moments' slices go to rank 0. */
void th_dist_gather_moments(th_run *h);
/* ",ranks,comm_s,rank_compute_s" columns of this step's CSV row. */
void th_dist_csv_columns(const th_run *h, char *out, size_t cap);

#endif
