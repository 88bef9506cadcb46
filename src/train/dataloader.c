/*
 * dataloader.c: reads text and token-shard files into one token stream,
 * splits off validation, and cuts batches of next-token windows (see
 * dataloader.h for the contract).
 *
 * Does not: tokenize with BPE, shuffle documents, or stream from disk; the
 * stream is a uint32 array in memory (4 bytes a token).
 */
#include "cllm/train/dataloader.h"

#include <stdlib.h>
#include <string.h>

#include "cllm/core/fileio.h"
#include "cllm/train/shard.h"

/* Text files beyond this are refused (the stream holds 4 bytes a byte). */
#define LOADER_MAX_TEXT_BYTES (1ull << 33)
/* The fingerprint hashes at most this many evenly spaced tokens. */
#define LOADER_FINGERPRINT_SAMPLES (1u << 22)

struct cllm_loader {
    cllm_loader_params params;
    uint32_t *tokens;        /* [n_tokens]: all files concatenated */
    uint64_t n_tokens;
    uint64_t n_train;        /* tokens [0, n_train) are the training split */
    uint64_t n_val;          /* tokens [n_train, n_tokens) are validation */
    uint32_t vocab_size;
    uint64_t tokenizer_hash;
    uint64_t fingerprint;
    cllm_loader_state state;
};

cllm_loader_params cllm_loader_default_params(void) {
    cllm_loader_params p;
    p.B = 1;
    p.T = 1;
    p.val_frac = 0.1;
    p.order = CLLM_DATA_RANDOM;
    p.seed = 1337;
    p.model_vocab = 0;
    return p;
}

static int is_shard_file(const char *path) {
    size_t n = strlen(path);
    if (n >= 4 && strcmp(path + n - 4, ".tok") == 0) return 1;
    FILE *f = fopen(path, "rb");
    if (!f) return 0; /* the open below reports the error */
    char magic[8] = {0};
    size_t got = fread(magic, 1, 8, f);
    fclose(f);
    return got == 8 && memcmp(magic, "CLLMTOK\0", 8) == 0;
}

static cllm_status grow(cllm_loader *l, uint64_t extra, uint64_t *cap, const char *path,
                        cllm_error *err) {
    uint64_t need = l->n_tokens + extra;
    if (need < l->n_tokens || need > SIZE_MAX / sizeof(uint32_t))
        return cllm_error_set(err, CLLM_ERR_LIMIT, "%s: too many tokens in total", path);
    if (need <= *cap) return CLLM_OK;
    uint64_t new_cap = *cap ? *cap : 1024;
    while (new_cap < need) new_cap = new_cap > UINT64_MAX / 2 ? need : new_cap * 2;
    if (new_cap > SIZE_MAX / sizeof(uint32_t)) new_cap = need;
    uint32_t *t = realloc(l->tokens, (size_t)new_cap * sizeof(uint32_t));
    if (!t)
        return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: cannot allocate %llu tokens", path,
                              (unsigned long long)new_cap);
    l->tokens = t;
    *cap = new_cap;
    return CLLM_OK;
}

static cllm_status load_text(cllm_loader *l, const char *path, uint64_t *cap, cllm_error *err) {
    char *data = NULL;
    size_t len = 0;
    cllm_status st = cllm_file_read_all(path, LOADER_MAX_TEXT_BYTES, &data, &len, err);
    if (st != CLLM_OK) return st;
    st = grow(l, len, cap, path, err);
    if (st == CLLM_OK) {
        for (size_t i = 0; i < len; i++) l->tokens[l->n_tokens + i] = (uint8_t)data[i];
        l->n_tokens += len;
    }
    free(data);
    return st;
}

static cllm_status load_shard(cllm_loader *l, const char *path, uint64_t *cap, cllm_error *err) {
    cllm_shard sh;
    cllm_status st = cllm_shard_open(&sh, path, err);
    if (st != CLLM_OK) return st;
    st = cllm_shard_validate_ids(&sh, err);
    if (st == CLLM_OK) st = grow(l, sh.info.n_tokens, cap, path, err);
    if (st == CLLM_OK) {
        for (uint64_t i = 0; i < sh.info.n_tokens; i++)
            l->tokens[l->n_tokens + i] = cllm_shard_token(&sh, i);
        l->n_tokens += sh.info.n_tokens;
    }
    cllm_shard_info info = sh.info;
    cllm_shard_close(&sh);
    if (st != CLLM_OK) return st;
    if (l->vocab_size == 0) {
        l->vocab_size = info.vocab_size;
        l->tokenizer_hash = info.tokenizer_hash;
    } else if (info.vocab_size != l->vocab_size || info.tokenizer_hash != l->tokenizer_hash) {
        return cllm_error_set(err, CLLM_ERR_FORMAT,
                              "%s: vocab_size %u / tokenizer hash %016llx differ from the earlier "
                              "inputs (%u / %016llx); all inputs must use one tokenizer",
                              path, info.vocab_size, (unsigned long long)info.tokenizer_hash,
                              l->vocab_size, (unsigned long long)l->tokenizer_hash);
    }
    return CLLM_OK;
}

static uint64_t compute_fingerprint(const cllm_loader *l, int n_paths) {
    uint64_t h = CLLM_FNV_OFFSET;
    uint64_t facts[6] = {(uint64_t)n_paths, l->n_tokens, l->n_train, l->n_val, l->vocab_size,
                         l->tokenizer_hash};
    h = cllm_fnv1a64(facts, sizeof facts, h);
    uint64_t stride = l->n_tokens / LOADER_FINGERPRINT_SAMPLES;
    if (stride == 0) stride = 1;
    for (uint64_t i = 0; i < l->n_tokens; i += stride) h = cllm_fnv1a64(&l->tokens[i], 4, h);
    if (l->n_tokens) h = cllm_fnv1a64(&l->tokens[l->n_tokens - 1], 4, h);
    return h;
}

cllm_status cllm_loader_open(cllm_loader **out, const char *const *paths, int n_paths,
                             const cllm_loader_params *params, cllm_error *err) {
    *out = NULL;
    if (n_paths <= 0) return cllm_error_set(err, CLLM_ERR_ARG, "no data files given");
    if (params->B <= 0 || params->T <= 0)
        return cllm_error_set(err, CLLM_ERR_ARG, "batch size B=%d and sequence length T=%d must be > 0",
                              params->B, params->T);
    if (!(params->val_frac >= 0.0 && params->val_frac < 1.0))
        return cllm_error_set(err, CLLM_ERR_ARG, "val_frac %g must be in [0, 1)", params->val_frac);
    if ((int)params->order < 0 || params->order >= CLLM_DATA_ORDER_COUNT)
        return cllm_error_set(err, CLLM_ERR_ARG, "unknown data order %d", (int)params->order);
    cllm_loader *l = calloc(1, sizeof *l);
    if (!l) return cllm_error_set(err, CLLM_ERR_NOMEM, "cannot allocate the data loader");
    l->params = *params;
    uint64_t cap = 0;
    int n_text = 0;
    const char *first_text = NULL;
    cllm_status st = CLLM_OK;
    for (int i = 0; i < n_paths && st == CLLM_OK; i++) {
        st = cllm_file_check_regular(paths[i], NULL, err);
        if (st != CLLM_OK) break;
        if (is_shard_file(paths[i])) {
            st = load_shard(l, paths[i], &cap, err);
        } else {
            if (!first_text) first_text = paths[i];
            n_text++;
            st = load_text(l, paths[i], &cap, err);
        }
    }
    if (st == CLLM_OK && n_text > 0) {
        if (l->vocab_size == 0) {
            l->vocab_size = 256;
        } else if (l->tokenizer_hash != 0 || l->vocab_size < 256) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT,
                                "%s: is text (byte-level ids) but the token shards use a tokenizer "
                                "(hash %016llx, vocab %u); tokenize the text with the same tokenizer",
                                first_text, (unsigned long long)l->tokenizer_hash, l->vocab_size);
        }
    }
    if (st == CLLM_OK && params->model_vocab != 0 && l->vocab_size > params->model_vocab) {
        /* The shard ids are all < vocab_size; find one that the model cannot embed. */
        for (uint64_t i = 0; i < l->n_tokens; i++)
            if (l->tokens[i] >= params->model_vocab) {
                st = cllm_error_set(err, CLLM_ERR_FORMAT,
                                    "data token %llu has id %u >= the model's vocabulary %u "
                                    "(the data's vocab_size is %u)",
                                    (unsigned long long)i, l->tokens[i], params->model_vocab,
                                    l->vocab_size);
                break;
            }
    }
    if (st == CLLM_OK) {
        l->n_val = (uint64_t)((double)l->n_tokens * params->val_frac);
        l->n_train = l->n_tokens - l->n_val;
        uint64_t need = (uint64_t)params->B * (uint64_t)params->T + 1;
        if (l->n_train < need)
            st = cllm_error_set(err, CLLM_ERR_ARG,
                                "too little data: the training split has %llu tokens but one batch "
                                "of B=%d x T=%d needs %llu; add data or lower --batch/--seq/--val-frac",
                                (unsigned long long)l->n_train, params->B, params->T,
                                (unsigned long long)need);
        else if (params->val_frac > 0 && l->n_val < (uint64_t)params->T + 1)
            st = cllm_error_set(err, CLLM_ERR_ARG,
                                "too little validation data: the last %g of the tokens is %llu tokens, "
                                "fewer than T+1 = %d; raise --val-frac, add data, or use --val-frac 0",
                                params->val_frac, (unsigned long long)l->n_val, params->T + 1);
    }
    if (st != CLLM_OK) {
        cllm_loader_free(l);
        return st;
    }
    l->fingerprint = compute_fingerprint(l, n_paths);
    cllm_rng_seed(&l->state.rng, params->seed);
    *out = l;
    return CLLM_OK;
}

void cllm_loader_free(cllm_loader *loader) {
    if (!loader) return;
    free(loader->tokens);
    free(loader);
}

uint32_t cllm_loader_vocab_size(const cllm_loader *l) { return l->vocab_size; }
uint64_t cllm_loader_tokenizer_hash(const cllm_loader *l) { return l->tokenizer_hash; }
uint64_t cllm_loader_n_train(const cllm_loader *l) { return l->n_train; }
uint64_t cllm_loader_n_val(const cllm_loader *l) { return l->n_val; }
uint64_t cllm_loader_fingerprint(const cllm_loader *l) { return l->fingerprint; }

uint64_t cllm_loader_n_val_windows(const cllm_loader *l) {
    if (l->n_val < (uint64_t)l->params.T + 1) return 0;
    return (l->n_val - 1) / (uint64_t)l->params.T;
}

static void copy_window(const uint32_t *src, int T, int32_t *inputs, int32_t *targets) {
    for (int t = 0; t < T; t++) {
        inputs[t] = (int32_t)src[t];
        targets[t] = (int32_t)src[t + 1];
    }
}

void cllm_loader_next(cllm_loader *l, int32_t *inputs, int32_t *targets) {
    const int B = l->params.B, T = l->params.T;
    const uint64_t n_starts = l->n_train - (uint64_t)T; /* starts s with s + T < n_train */
    for (int b = 0; b < B; b++) {
        uint64_t start;
        if (l->params.order == CLLM_DATA_RANDOM) {
            start = cllm_rng_below(&l->state.rng, n_starts);
        } else {
            if (l->state.position + (uint64_t)T + 1 > l->n_train) {
                l->state.position = 0;
                l->state.epoch++;
            }
            start = l->state.position;
            l->state.position += (uint64_t)T;
        }
        copy_window(l->tokens + start, T, inputs + (size_t)b * T, targets + (size_t)b * T);
    }
    l->state.batches++;
}

cllm_status cllm_loader_val_batch(const cllm_loader *l, uint64_t index, int32_t *inputs,
                                  int32_t *targets, cllm_error *err) {
    uint64_t n_windows = cllm_loader_n_val_windows(l);
    if (n_windows == 0)
        return cllm_error_set(err, CLLM_ERR_ARG, "there is no validation split (val_frac %g)",
                              l->params.val_frac);
    const int B = l->params.B, T = l->params.T;
    for (int b = 0; b < B; b++) {
        uint64_t w = (index * (uint64_t)B + (uint64_t)b) % n_windows;
        copy_window(l->tokens + l->n_train + w * (uint64_t)T, T, inputs + (size_t)b * T,
                    targets + (size_t)b * T);
    }
    return CLLM_OK;
}

void cllm_loader_get_state(const cllm_loader *l, cllm_loader_state *state) { *state = l->state; }

cllm_status cllm_loader_set_state(cllm_loader *l, const cllm_loader_state *state, cllm_error *err) {
    if (state->position >= l->n_train)
        return cllm_error_set(err, CLLM_ERR_FORMAT,
                              "data position %llu is outside the training split of %llu tokens",
                              (unsigned long long)state->position, (unsigned long long)l->n_train);
    if ((state->rng.s[0] | state->rng.s[1] | state->rng.s[2] | state->rng.s[3]) == 0)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "data RNG state is all zero (corrupt)");
    l->state = *state;
    return CLLM_OK;
}
