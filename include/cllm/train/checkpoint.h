/*
 * checkpoint.h: crash-safe training checkpoints in a run directory.
 *
 * A checkpoint at optimizer step N is four files in RUN_DIR, written in this
 * order, each atomically (cllm_atomic_*: temp file, fsync, rename, directory
 * fsync):
 *   ckpt-<N>.<ext>   the model weights, written by the caller's callback
 *                    (GGUF f32 through model_io, or the raw parameter file
 *                    of cllm_ckpt_write_floats);
 *   ckpt-<N>.optim   AdamW moments m, v and the Adam step (format below);
 *   ckpt-<N>.state   the training-state record (cllm_train_state, text);
 *   ckpt-<N>.done    the completion marker, LAST: it names the step and the
 *                    size and FNV-1a-64 hash of each of the three files.
 * <N> is zero-padded to 10 digits so names sort by step. A checkpoint exists
 * only once its marker does; kill -9 at any moment leaves either the previous
 * complete checkpoint or the new one, and files of an incomplete one are
 * ignored and later removed. Pruning deletes a checkpoint's marker first,
 * then its files, and only ever checkpoints older than the newest `keep`
 * complete ones.
 *
 * Float-array file (".optim", and ".params" for raw weights), little-endian:
 *   0  8  magic "CLLMFLT\0"     8  4  version (1)     12 4  n_arrays (1..4)
 *   16 8  n per array           24 8  layout hash (caller's tensor layout)
 *   32 8  aux (the Adam step for .optim)              40 24 reserved, zero
 *   64 .. n_arrays x n float32   then 8  FNV-1a-64 of all preceding bytes
 *
 * State record (".state"): text lines "key value", the first line
 * "cllm-train-state 1", the last "checksum <16 hex>" (FNV-1a-64 of every byte
 * before that line). Floats are written as C99 hex floats, so they round-trip
 * exactly. Unknown keys, missing keys, bad numbers and a bad checksum are
 * errors naming the file and line.
 *
 * The lock: cllm_ckpt_lock takes an exclusive flock on RUN_DIR/lock (the pid
 * is written inside for the message), so a second trainer on the same run
 * directory fails at once; the kernel drops the lock when the process dies.
 * cllm_ckpt_unlock removes the file while still holding the lock, so a run
 * that ends (or fails to start) leaves none behind; a locker whose file was
 * removed under it in the meantime notices (the path names another inode,
 * or none) and takes the lock again, so two trainers never both hold it.
 *
 * Does not: know the model (weights go through callbacks) or decide when to
 * save (the trainer does).
 */
#ifndef CLLM_CHECKPOINT_H
#define CLLM_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/train/dataloader.h"
#include "cllm/core/status.h"

#define CLLM_CKPT_CONFIG_MAX 4096 /* bytes of the canonical config text */

/* Everything besides weights and moments that exact resume needs. */
typedef struct {
    int64_t step;               /* optimizer steps completed = index of the next step */
    uint64_t tokens_seen;       /* training tokens consumed */
    cllm_loader_state loader;   /* data position and RNG */
    uint64_t dropout_seed;      /* the model's dropout stream */
    double best_val_loss;       /* best validation loss so far (INFINITY before any) */
    int64_t evals_since_best;   /* evaluations without improvement (early stop) */
    int64_t nonfinite_streak;   /* consecutive skipped (NaN/Inf) steps */
    int64_t nonfinite_total;    /* all skipped steps */
    uint64_t data_fingerprint;  /* cllm_loader_fingerprint of the data */
    uint64_t tokenizer_hash;    /* 0 = byte-level */
    uint64_t layout_hash;       /* model config + tensor layout */
    double elapsed_s;           /* training wall time so far (informational) */
    /* Canonical "key=value\n" lines of every setting that changes the result
     * (model shape, batch, schedule, ...), compared on resume. NUL-terminated. */
    char config[CLLM_CKPT_CONFIG_MAX];
} cllm_train_state;

void cllm_train_state_init(cllm_train_state *s);

/* Writes / reads the state record (see the format above). */
cllm_status cllm_train_state_write(const char *path, const cllm_train_state *s, cllm_error *err);
cllm_status cllm_train_state_read(const char *path, cllm_train_state *s, cllm_error *err);

/* Float-array files (see the format above). arrays[n_arrays] each [n]. */
cllm_status cllm_ckpt_write_floats(const char *path, const float *const *arrays, int n_arrays,
                                   size_t n, uint64_t layout_hash, int64_t aux, cllm_error *err);
/* Reads into caller buffers arrays[n_arrays] each [n]; the file's n_arrays, n
 * and layout hash must equal the arguments. *aux may be NULL. */
cllm_status cllm_ckpt_read_floats(const char *path, float *const *arrays, int n_arrays, size_t n,
                                  uint64_t layout_hash, int64_t *aux, cllm_error *err);

/* ---- run directory ---------------------------------------------------- */

/* Exclusive, non-blocking lock on RUN_DIR/lock. *fd receives the descriptor
 * to pass to cllm_ckpt_unlock. */
cllm_status cllm_ckpt_lock(const char *run_dir, int *fd, cllm_error *err);
/* Removes RUN_DIR/lock, then releases the lock (fd < 0: nothing). */
void cllm_ckpt_unlock(int fd, const char *run_dir);

/* Writes the model to `path` atomically; ctx is the caller's. */
typedef cllm_status (*cllm_ckpt_model_writer)(const char *path, void *ctx, cllm_error *err);
/* Reads the model from `path` into the caller's model. */
typedef cllm_status (*cllm_ckpt_model_reader)(const char *path, void *ctx, cllm_error *err);

typedef struct {
    const char *model_ext;         /* "gguf" or "params": the weights file extension */
    cllm_ckpt_model_writer write_model;
    cllm_ckpt_model_reader read_model;
    void *ctx;
    const float *m, *v;            /* save: AdamW moments [n] */
    float *m_out, *v_out;          /* load: where moments go [n] */
    size_t n;                      /* parameters */
    int64_t adam_step;             /* save: Adam's step count; load: filled */
} cllm_ckpt_io;

/* Path of a checkpoint file: RUN_DIR/ckpt-<step>.<ext>. */
void cllm_ckpt_path(char *out, size_t cap, const char *run_dir, int64_t step, const char *ext);

/* Saves checkpoint state->step (weights, optimizer, state, marker last). */
cllm_status cllm_ckpt_save(const char *run_dir, cllm_ckpt_io *io, const cllm_train_state *state,
                           cllm_error *err);

/* Newest complete checkpoint: *step = its step, or -1 when there is none. */
cllm_status cllm_ckpt_find_latest(const char *run_dir, int64_t *step, cllm_error *err);

/* Verifies the marker's sizes and hashes, then reads weights (callback),
 * moments and state. Any mismatch is an error naming the file. */
cllm_status cllm_ckpt_load(const char *run_dir, int64_t step, cllm_ckpt_io *io,
                           cllm_train_state *state, cllm_error *err);

/* Keeps the newest `keep` (>= 1) complete checkpoints, deletes older complete
 * ones (marker first), and removes files of incomplete checkpoints older than
 * the newest complete one and stale "*.tmp.<pid>" files of dead writers.
 * Call only while holding the lock. */
cllm_status cllm_ckpt_prune(const char *run_dir, int keep, cllm_error *err);

#endif
