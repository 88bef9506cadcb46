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

#include "cllm/formats/gguf.h"
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

/* A SentencePiece vocabulary as llama.cpp holds one (tokenizer.ggml.model
 * "llama"). The tokenizer's kind/off/len/blob then hold what each id decodes
 * to (normal: the piece with U+2581 as spaces; byte: the byte; control and
 * unknown: the text; user-defined: the text as is; unused: nothing), and this
 * struct holds the pieces as stored, which encoding matches against. */
typedef struct {
    float *score;          /* [V] merge priority: higher merges first */
    uint8_t *type;         /* [V] GGUF token type (TOK_TT_*) */
    uint8_t *text;         /* [text_len] all piece texts */
    uint64_t *text_off;    /* [V] */
    uint32_t *text_n;      /* [V] */
    size_t text_len;
    uint32_t *map;         /* [map_cap] piece text -> id over every id; TOK_NO_ID = empty */
    size_t map_cap;
    uint32_t *match;       /* [n_match] control, unknown and user-defined ids, longest text first */
    uint32_t n_match;
    uint32_t byte_tok[256]; /* byte fallback: "<0xXX>", else the one-byte piece, else TOK_NO_ID */
    int64_t bos, eos, unk, pad; /* -1 when absent */
    int add_bos, add_eos, add_space_prefix;
    int newline_cuts;      /* no piece longer than one byte holds "\n": encode line by line (spm.c) */
} tok_spm;

/* GGUF's token types (llama.cpp's llama_token_type). */
enum { TOK_TT_NORMAL = 1, TOK_TT_UNKNOWN = 2, TOK_TT_CONTROL = 3, TOK_TT_USER_DEFINED = 4, TOK_TT_UNUSED = 5,
       TOK_TT_BYTE = 6 };

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
    tok_spm *spm;           /* SentencePiece vocabulary (spm.c); NULL for byte-level BPE */
    /* A byte-level BPE vocabulary read from a GGUF file that llama.cpp's
     * converter wrote (no cllm.tokenizer.* keys) encodes as llama.cpp does
     * (encode.c): cut at special and user-defined tokens longest first
     * (partition.c), user-defined ones always; invalid UTF-8 becomes U+FFFD;
     * the family's split; merges (whole pre-tokens first where ignore_merges). */
    int llama;
    int ignore_merges;      /* a pre-token that is an ordinary token is emitted whole (Llama 3) */
    uint8_t *user_defined;  /* [V] or NULL: 1 for a user-defined token (GGUF token_type 4) */
    uint8_t *control_normal; /* [V] or NULL: 1 for a normal token llama.cpp also treats as control (by name) */
    uint32_t *match;        /* [n_match] special ids and control_normal ones, longest text first (llama mode) */
    uint32_t n_match;
    char *pre;              /* tokenizer.ggml.pre as read (llama mode), written back as is */
};

/* A text cut at matched tokens: text[off, off+len) when id == TOK_NO_ID, else token id. */
typedef struct {
    size_t off, len;
    uint32_t id;
} tok_fragment;

typedef struct {
    tok_fragment *f;
    size_t n, cap;
} tok_fragments;

/* llama.cpp's cut at the tokens ids[0..n_ids) (longest text first, see
 * tok_match_order): user-defined ones always, others where allowed. SPM
 * tokens are found by their stored piece text, BPE ones by their bytes. *fs
 * (empty) is filled; 0 when out of memory. */
int tok_partition(const cllm_tokenizer *t, const uint32_t *ids, uint32_t n_ids, const uint8_t *text, size_t len,
                  const cllm_special_set *allowed, tok_fragments *fs);
/* Sorts ids[0..n) longest match text first, then by id; 0 when out of memory. */
int tok_match_order(const cllm_tokenizer *t, uint32_t *ids, uint32_t n);

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
/* Appends len bytes to t's decode blob as token id of kind (no checks:
 * cllm_tokenizer_set_token's job; SentencePiece also records empty and
 * unused pieces). 0 when out of memory. */
int tok_blob_put(cllm_tokenizer *t, uint32_t id, const void *bytes, size_t len, cllm_token_kind kind);
/* Frees the lookup maps (after a temporary tok_build_maps). */
void tok_drop_maps(cllm_tokenizer *t);

/* Builds the lookup maps (called by finalize). */
cllm_status tok_build_maps(cllm_tokenizer *t, cllm_error *err);

/* ---- SentencePiece (spm.c) ---- */
/* Reads a "llama" vocabulary from GGUF keys into a finished tokenizer. */
cllm_status tok_spm_from_gguf(const cllm_gguf *g, cllm_tokenizer **out, cllm_error *err);
/* Builds a SentencePiece tokenizer from V pieces (U+2581 for spaces) with
 * scores and GGUF token types (tokenizer.json's SentencePiece-style BPE,
 * load_hf.c); add_bos on, add_eos off; errors name path. */
cllm_status tok_spm_from_pieces(const cllm_gguf_str *toks, const float *scores, const int32_t *types, uint64_t V,
                                int64_t bos, int64_t eos, int64_t unk, int add_space_prefix, const char *path,
                                cllm_tokenizer **out, cllm_error *err);
/* Writes the keys of an SPM tokenizer (the counterpart of tok_spm_from_gguf). */
cllm_status tok_spm_gguf_set(const cllm_tokenizer *t, cllm_gguf_writer *w, cllm_error *err);
/* Encodes as llama.cpp's SPM tokenizer without BOS/EOS (encode.c routes here);
 * after_text = 1: the text continues ordinary text, so its first fragment
 * gets no leading space (cllm_tokenizer_encode_after). */
cllm_status tok_spm_encode(const cllm_tokenizer *t, const uint8_t *text, size_t len,
                           const cllm_special_set *allowed, int after_text, cllm_tokens *out, cllm_error *err);
/* 1 when id is a control, unknown or user-defined token of an SPM vocabulary:
 * text after it gets the leading space, as at the start. */
int tok_spm_cuts_text(const cllm_tokenizer *t, uint32_t id);
void tok_spm_free(tok_spm *s);

#endif
