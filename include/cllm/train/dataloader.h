/*
 * dataloader.h: training and validation batches of next-token windows.
 *
 * Inputs are UTF-8 text files, read as raw bytes (a byte-level vocabulary of
 * 256, tokenizer hash 0), or token shards (cllm/train/shard.h), detected by the
 * shard magic or a ".tok" name. All files are concatenated in the given order
 * into one token stream held in memory (4 bytes a token); the last
 * `val_frac` of it is the held-out validation split, the rest is training.
 *
 * A batch is B windows of T+1 consecutive tokens: inputs[b,t] = w[t],
 * targets[b,t] = w[t+1]. Training windows start either at positions drawn
 * uniformly with the loader's own serialisable RNG (CLLM_DATA_RANDOM, as
 * nanoGPT does) or one after another at stride T, wrapping at the end of the
 * split and counting epochs (CLLM_DATA_SEQUENTIAL). Validation batch k is
 * always the same windows (stride T from the start of the split, wrapping),
 * so validation losses are comparable across evaluations and resumes.
 *
 * Everything that decides the next batch is in cllm_loader_state, which the
 * checkpoint stores; restoring it reproduces the batch sequence exactly.
 * The data fingerprint (FNV-1a over the file count, token counts, the split
 * point, vocabulary, tokenizer hash and up to ~4M evenly spaced tokens) lets
 * a resume detect that the data changed.
 *
 * Rejected before any training step, with the file and offset: unreadable
 * paths (directories, FIFOs, devices), malformed shards, token ids >= the
 * shard's or the model's vocabulary, shards with different tokenizers or a mix
 * of text and non-byte-level shards, and too few tokens for one batch.
 * Does not: tokenize text with a BPE tokenizer (pass shards made by
 * `cllm tokenize` for that) or stream data larger than memory.
 */
#ifndef CLLM_DATALOADER_H
#define CLLM_DATALOADER_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/core/rng.h"
#include "cllm/core/status.h"

typedef enum {
    CLLM_DATA_RANDOM = 0, /* window starts drawn uniformly with the loader RNG */
    CLLM_DATA_SEQUENTIAL, /* consecutive windows at stride T, wrapping */
    CLLM_DATA_ORDER_COUNT
} cllm_data_order;

typedef struct {
    int B, T;               /* batch size and window length (> 0) */
    double val_frac;        /* in [0, 1): fraction of tokens held out at the end */
    cllm_data_order order;
    uint64_t seed;          /* seeds the loader RNG (random order) */
    uint32_t model_vocab;   /* every id must be < this; 0 = only the data's own limit */
} cllm_loader_params;

cllm_loader_params cllm_loader_default_params(void);

/* Exactly what decides the next training batch; stored in checkpoints. */
typedef struct {
    cllm_rng rng;      /* random order: the window-start generator */
    uint64_t position; /* sequential order: next window start in the train split */
    uint64_t epoch;    /* sequential order: completed passes over the train split */
    uint64_t batches;  /* training batches drawn so far */
} cllm_loader_state;

typedef struct cllm_loader cllm_loader;

/* Reads and validates every file; *out is owned by the caller (cllm_loader_free). */
cllm_status cllm_loader_open(cllm_loader **out, const char *const *paths, int n_paths,
                             const cllm_loader_params *params, cllm_error *err);
void cllm_loader_free(cllm_loader *loader);

/* Data facts. vocab_size is 256 for text, the shards' vocab_size otherwise. */
uint32_t cllm_loader_vocab_size(const cllm_loader *loader);
uint64_t cllm_loader_tokenizer_hash(const cllm_loader *loader);
uint64_t cllm_loader_n_train(const cllm_loader *loader);
uint64_t cllm_loader_n_val(const cllm_loader *loader);
uint64_t cllm_loader_fingerprint(const cllm_loader *loader);
/* Distinct validation windows available (0 when there is no validation split). */
uint64_t cllm_loader_n_val_windows(const cllm_loader *loader);

/* Next training batch: inputs[B,T], targets[B,T]. Advances the state. */
void cllm_loader_next(cllm_loader *loader, int32_t *inputs, int32_t *targets);
/* Validation batch `index` (>= 0): inputs[B,T], targets[B,T]. Fails when there
 * is no validation split. Does not touch the training state. */
cllm_status cllm_loader_val_batch(const cllm_loader *loader, uint64_t index, int32_t *inputs,
                                  int32_t *targets, cllm_error *err);

void cllm_loader_get_state(const cllm_loader *loader, cllm_loader_state *state);
/* Restores a saved state; rejects positions outside the training split and
 * an all-zero RNG (which xoshiro cannot leave). */
cllm_status cllm_loader_set_state(cllm_loader *loader, const cllm_loader_state *state,
                                  cllm_error *err);

#endif
