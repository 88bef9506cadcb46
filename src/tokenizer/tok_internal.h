/*
 * tok_internal.h: the tokenizer's private layout and its two hash maps,
 * shared by the files of src/tokenizer/ only (never installed).
 *
 * Maps are open addressing with linear probing, power-of-two capacity, at
 * most half full, built once in cllm_tokenizer_finalize and read-only after.
 */
#ifndef CLLM_TOK_INTERNAL_H
#define CLLM_TOK_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "cllm/tokenizer/tokenizer.h"

#define TOK_NO_ID UINT32_MAX

/* (left id, right id) -> (rank, result id). */
typedef struct {
    uint64_t *keys; /* [cap], UINT64_MAX = empty */
    uint64_t *vals; /* [cap], rank << 32 | result */
    size_t cap;     /* power of two */
    size_t n;
} tok_pair_map;

/* byte string -> ordinary token id; strings live in the tokenizer blob. */
typedef struct {
    uint32_t *ids; /* [cap], TOK_NO_ID = empty */
    size_t cap;
    size_t n;
} tok_bytes_map;

typedef struct {
    uint32_t left, right, result;
} tok_merge;

struct cllm_tokenizer {
    uint32_t n_vocab;       /* V */
    uint8_t *kind;          /* [V] cllm_token_kind */
    uint64_t *off;          /* [V] offset of each token's bytes in blob */
    uint32_t *len;          /* [V] token byte length */
    uint8_t *blob;          /* [blob_len] all token bytes */
    size_t blob_len, blob_cap;
    tok_merge *merges;      /* [n_merges] in priority order */
    uint32_t n_merges, merges_cap;
    uint32_t byte_id[256];  /* id of each single-byte token */
    uint32_t *special_ids;  /* [n_special] sorted by id */
    uint32_t n_special;
    tok_pair_map pairs;
    tok_bytes_map bytes;
    cllm_bpe_rule rule;
    cllm_pretok_kind pretok_kind;
    char *regex;            /* owned copy, NULL for NONE */
    cllm_pretok *pretok;
    uint64_t hash;
    int finalized;
};

/* The vocabulary size a file listing n_entries tokens may declare. Ids may
 * leave holes (tiktoken files have some; specials sit after the ranks), but a
 * few kilobytes claiming an id near 2^30 would allocate a gigabyte: readers
 * refuse ids at or past this bound before allocating anything. */
static inline uint64_t tok_id_limit(uint64_t n_entries) {
    return 2 * n_entries + 1024;
}

/* A fast 64-bit hash of a byte string (not cryptographic). */
static inline uint64_t tok_hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

static inline uint64_t tok_hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* Pair map lookup: returns 1 and fills *rank, *result when (a,b) merges. */
static inline int tok_pair_get(const tok_pair_map *m, uint32_t a, uint32_t b, uint32_t *rank,
                               uint32_t *result) {
    if (!m->cap) return 0;
    uint64_t key = (uint64_t)a << 32 | b;
    size_t mask = m->cap - 1;
    for (size_t i = tok_hash_u64(key) & mask;; i = (i + 1) & mask) {
        uint64_t k = m->keys[i];
        if (k == key) {
            *rank = (uint32_t)(m->vals[i] >> 32);
            *result = (uint32_t)m->vals[i];
            return 1;
        }
        if (k == UINT64_MAX) return 0;
    }
}

/* Ordinary-token lookup by bytes; TOK_NO_ID when absent. */
static inline uint32_t tok_bytes_get(const cllm_tokenizer *t, const uint8_t *p, size_t n) {
    const tok_bytes_map *m = &t->bytes;
    if (!m->cap) return TOK_NO_ID;
    size_t mask = m->cap - 1;
    for (size_t i = tok_hash_bytes(p, n) & mask;; i = (i + 1) & mask) {
        uint32_t id = m->ids[i];
        if (id == TOK_NO_ID) return TOK_NO_ID;
        if (t->len[id] == n && !memcmp(t->blob + t->off[id], p, n)) return id;
    }
}

/* Base64 (RFC 4648, with padding) used by the tiktoken and cllm formats. */
size_t tok_base64_encode(const uint8_t *in, size_t n, char *out); /* out: 4*ceil(n/3)+1 */
/* Decodes exactly n chars; returns -1 on any invalid character or padding. */
long tok_base64_decode(const char *in, size_t n, uint8_t *out); /* out: 3*n/4 */

/* GPT-2's byte-level alphabet: each byte is shown as one printable code
 * point. Decodes such a string (UTF-8, n bytes) to raw bytes in out (at most
 * n bytes); returns the byte count, or -1 if a character is outside the
 * alphabet or the UTF-8 is malformed. */
long tok_gpt2_unicode_to_bytes(const char *s, size_t n, uint8_t *out);
/* Encodes bytes to that alphabet; out needs 2*n+1 bytes; returns the length. */
size_t tok_gpt2_bytes_to_unicode(const uint8_t *in, size_t n, char *out);

/* Shared by the GPT-2 and HF loaders: a new tokenizer whose ordinary tokens
 * come from a cJSON object {byte-level text: id} (passed as void* so this
 * header needs no cJSON); V = max(max id + 1, extra_ids). */
cllm_status tok_vocab_from_json(cllm_tokenizer **out, const void *vocab, uint32_t extra_ids,
                                cllm_pretok_kind kind, const char *regex, const char *path,
                                cllm_error *err);
/* Frees the lookup maps (after a temporary tok_build_maps). */
void tok_drop_maps(cllm_tokenizer *t);

/* Builds the lookup maps (called by finalize). */
cllm_status tok_build_maps(cllm_tokenizer *t, cllm_error *err);

#endif
