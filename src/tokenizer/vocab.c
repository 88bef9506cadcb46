/*
 * vocab.c: the tokenizer object: building a vocabulary id by id, validating
 * it, its lookup maps, accessors, the fingerprint, and base64.
 *
 * Does not: encode (encode.c), decode (decode.c), read or write files
 * (io.c and the load_*.c files), or train (train.c).
 */
#include <stdlib.h>
#include <string.h>

#include "cllm/core/hash.h"
#include "tok_internal.h"

cllm_status cllm_tokenizer_new(cllm_tokenizer **out, uint32_t n_vocab, cllm_pretok_kind kind,
                               const char *regex, cllm_error *err) {
    *out = NULL;
    if (n_vocab < 256 || n_vocab > (1u << 30))
        return cllm_error_set(err, CLLM_ERR_ARG, "vocabulary size %u outside [256, 2^30]", n_vocab);
    if ((unsigned)kind >= CLLM_PRETOK_COUNT)
        return cllm_error_set(err, CLLM_ERR_ARG, "unknown split pattern kind %d", (int)kind);
    const char *pattern = kind == CLLM_PRETOK_CUSTOM ? regex : cllm_pretok_pattern(kind);
    if (kind == CLLM_PRETOK_CUSTOM && !regex)
        return cllm_error_set(err, CLLM_ERR_ARG, "a custom split pattern needs a regex");
    cllm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for a tokenizer");
    t->n_vocab = n_vocab;
    t->pretok_kind = kind;
    t->kind = malloc(n_vocab);
    t->off = calloc(n_vocab, sizeof *t->off);
    t->len = calloc(n_vocab, sizeof *t->len);
    if (pattern) t->regex = strdup(pattern);
    if (!t->kind || !t->off || !t->len || (pattern && !t->regex)) {
        cllm_tokenizer_destroy(t);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for %u token entries", n_vocab);
    }
    memset(t->kind, CLLM_TOKEN_UNUSED, n_vocab);
    cllm_status st = cllm_pretok_create(&t->pretok, t->regex, err);
    if (st != CLLM_OK) {
        cllm_tokenizer_destroy(t);
        return st;
    }
    *out = t;
    return CLLM_OK;
}

void cllm_tokenizer_destroy(cllm_tokenizer *t) {
    if (!t) return;
    free(t->kind);
    free(t->off);
    free(t->len);
    free(t->blob);
    free(t->merges);
    free(t->special_ids);
    free(t->pairs.keys);
    free(t->pairs.vals);
    free(t->bytes.ids);
    free(t->regex);
    cllm_pretok_destroy(t->pretok);
    tok_spm_free(t->spm);
    free(t->user_defined);
    free(t->control_normal);
    free(t->match);
    free(t->pre);
    free(t);
}

int tok_blob_put(cllm_tokenizer *t, uint32_t id, const void *bytes, size_t len, cllm_token_kind kind) {
    if (t->blob_len + len > t->blob_cap) {
        size_t cap = t->blob_cap ? t->blob_cap : 4096;
        while (cap < t->blob_len + len) cap *= 2;
        uint8_t *nb = realloc(t->blob, cap);
        if (!nb) return 0;
        t->blob = nb;
        t->blob_cap = cap;
    }
    if (len) memcpy(t->blob + t->blob_len, bytes, len);
    t->off[id] = t->blob_len;
    t->len[id] = (uint32_t)len;
    t->kind[id] = (uint8_t)kind;
    t->blob_len += len;
    return 1;
}

cllm_status cllm_tokenizer_set_token(cllm_tokenizer *t, uint32_t id, const void *bytes, size_t len,
                                     cllm_token_kind kind, cllm_error *err) {
    if (t->finalized) return cllm_error_set(err, CLLM_ERR_ARG, "tokenizer already finalized");
    if (id >= t->n_vocab)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "token id %u >= vocabulary size %u", id,
                              t->n_vocab);
    if (kind != CLLM_TOKEN_NORMAL && kind != CLLM_TOKEN_SPECIAL)
        return cllm_error_set(err, CLLM_ERR_ARG, "token %u: bad kind %d", id, (int)kind);
    if (t->kind[id] != CLLM_TOKEN_UNUSED)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "token id %u defined twice", id);
    if (len == 0 || len > (1u << 20))
        return cllm_error_set(err, CLLM_ERR_FORMAT, "token %u has length %zu (must be 1..2^20)", id,
                              len);
    if (!tok_blob_put(t, id, bytes, len, kind)) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for token bytes");
    return CLLM_OK;
}

cllm_status cllm_tokenizer_add_merge(cllm_tokenizer *t, uint32_t left, uint32_t right,
                                     cllm_error *err) {
    if (t->finalized) return cllm_error_set(err, CLLM_ERR_ARG, "tokenizer already finalized");
    if (t->n_merges == t->merges_cap) {
        uint32_t cap = t->merges_cap ? t->merges_cap * 2 : 1024;
        tok_merge *nm = realloc(t->merges, (size_t)cap * sizeof *nm);
        if (!nm) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for merges");
        t->merges = nm;
        t->merges_cap = cap;
    }
    t->merges[t->n_merges++] = (tok_merge){left, right, TOK_NO_ID};
    return CLLM_OK;
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

/* Inserts (a,b); keeps the first (highest-priority) value on duplicates. */
static void pair_put(tok_pair_map *m, uint32_t a, uint32_t b, uint32_t rank, uint32_t result) {
    uint64_t key = (uint64_t)a << 32 | b;
    size_t mask = m->cap - 1;
    for (size_t i = tok_hash_u64(key) & mask;; i = (i + 1) & mask) {
        if (m->keys[i] == key) return;
        if (m->keys[i] == UINT64_MAX) {
            m->keys[i] = key;
            m->vals[i] = (uint64_t)rank << 32 | result;
            m->n++;
            return;
        }
    }
}

static int pair_alloc(tok_pair_map *m, size_t n) {
    m->cap = pow2_at_least(2 * n + 1);
    m->keys = malloc(m->cap * sizeof *m->keys);
    m->vals = malloc(m->cap * sizeof *m->vals);
    if (!m->keys || !m->vals) return 0;
    memset(m->keys, 0xff, m->cap * sizeof *m->keys);
    return 1;
}

cllm_status tok_build_maps(cllm_tokenizer *t, cllm_error *err) {
    uint32_t n_normal = 0;
    for (uint32_t id = 0; id < t->n_vocab; id++) n_normal += t->kind[id] == CLLM_TOKEN_NORMAL;
    tok_bytes_map *bm = &t->bytes;
    bm->cap = pow2_at_least(2 * (size_t)n_normal + 1);
    bm->ids = malloc(bm->cap * sizeof *bm->ids);
    if (!bm->ids) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for the token map");
    memset(bm->ids, 0xff, bm->cap * sizeof *bm->ids);
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        if (t->kind[id] != CLLM_TOKEN_NORMAL) continue;
        const uint8_t *p = t->blob + t->off[id];
        size_t n = t->len[id];
        uint32_t other = tok_bytes_get(t, p, n);
        if (other != TOK_NO_ID)
            return cllm_error_set(err, CLLM_ERR_FORMAT,
                                  "tokens %u and %u have the same bytes (duplicate token)", other,
                                  id);
        size_t mask = bm->cap - 1;
        size_t i = tok_hash_bytes(p, n) & mask;
        while (bm->ids[i] != TOK_NO_ID) i = (i + 1) & mask;
        bm->ids[i] = id;
        bm->n++;
    }
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        t->byte_id[b] = tok_bytes_get(t, &c, 1);
        if (t->byte_id[b] == TOK_NO_ID && t->llama) { /* DeepSeek stores some bytes as user-defined tokens */
            char ch[4];
            size_t cn = tok_gpt2_bytes_to_unicode(&c, 1, ch);
            for (uint32_t id = 0; id < t->n_vocab && t->byte_id[b] == TOK_NO_ID; id++)
                if (t->user_defined && t->user_defined[id] && t->len[id] == cn && !memcmp(t->blob + t->off[id], ch, cn))
                    t->byte_id[b] = id;
        }
        /* llama.cpp's vocabularies may lack bytes (StarCoder 0xC0 0xC1 0xF1 0xF5..0xFF,
         * Falcon some control bytes); text needing one is refused (encode.c), where
         * llama.cpp fails too. */
        if (t->byte_id[b] == TOK_NO_ID && t->llama) continue;
        if (t->byte_id[b] == TOK_NO_ID)
            return cllm_error_set(err, CLLM_ERR_FORMAT,
                                  "byte 0x%02x has no token (byte-level BPE needs all 256)", b);
    }
    if (t->rule == CLLM_BPE_MERGES) {
        if (!pair_alloc(&t->pairs, t->n_merges))
            return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for the merge map");
        uint8_t *tmp = NULL;
        size_t tmp_cap = 0;
        for (uint32_t r = 0; r < t->n_merges; r++) {
            tok_merge *m = &t->merges[r];
            if (m->left >= t->n_vocab || m->right >= t->n_vocab ||
                t->kind[m->left] != CLLM_TOKEN_NORMAL || t->kind[m->right] != CLLM_TOKEN_NORMAL) {
                free(tmp);
                return cllm_error_set(err, CLLM_ERR_FORMAT,
                                      "merge %u names an unknown or special token (%u %u)", r,
                                      m->left, m->right);
            }
            size_t la = t->len[m->left], lb = t->len[m->right];
            if (la + lb > tmp_cap) {
                tmp_cap = 2 * (la + lb);
                uint8_t *nt = realloc(tmp, tmp_cap);
                if (!nt) {
                    free(tmp);
                    return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
                }
                tmp = nt;
            }
            memcpy(tmp, t->blob + t->off[m->left], la);
            memcpy(tmp + la, t->blob + t->off[m->right], lb);
            m->result = tok_bytes_get(t, tmp, la + lb);
            if (m->result == TOK_NO_ID) {
                free(tmp);
                return cllm_error_set(err, CLLM_ERR_FORMAT,
                                      "merge %u (%u %u): the merged bytes are not a token", r,
                                      m->left, m->right);
            }
            pair_put(&t->pairs, m->left, m->right, r, m->result);
        }
        free(tmp);
    } else {
        /* tiktoken rule: any split of token r into two tokens merges at rank r. */
        size_t n_pairs = 0;
        for (uint32_t id = 0; id < t->n_vocab; id++)
            if (t->kind[id] == CLLM_TOKEN_NORMAL && t->len[id] > 1) n_pairs += t->len[id] - 1;
        if (!pair_alloc(&t->pairs, n_pairs / 2 + 16))
            return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for the merge map");
        for (uint32_t id = 0; id < t->n_vocab; id++) {
            if (t->kind[id] != CLLM_TOKEN_NORMAL || t->len[id] < 2) continue;
            const uint8_t *p = t->blob + t->off[id];
            for (uint32_t k = 1; k < t->len[id]; k++) {
                uint32_t a = tok_bytes_get(t, p, k), b = tok_bytes_get(t, p + k, t->len[id] - k);
                if (a == TOK_NO_ID || b == TOK_NO_ID) continue;
                if (t->pairs.n * 2 + 2 > t->pairs.cap) { /* grow: rehash */
                    tok_pair_map old = t->pairs;
                    if (!pair_alloc(&t->pairs, old.cap)) {
                        free(old.keys);
                        free(old.vals);
                        return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
                    }
                    t->pairs.n = 0;
                    for (size_t i = 0; i < old.cap; i++)
                        if (old.keys[i] != UINT64_MAX)
                            pair_put(&t->pairs, (uint32_t)(old.keys[i] >> 32),
                                     (uint32_t)old.keys[i], (uint32_t)(old.vals[i] >> 32),
                                     (uint32_t)old.vals[i]);
                    free(old.keys);
                    free(old.vals);
                }
                pair_put(&t->pairs, a, b, id, id);
            }
        }
    }
    return CLLM_OK;
}

/* Recovers an ordered merge list for a ranks-rule vocabulary (what GGUF and
 * the merges rule need): token r is produced by its split into two tokens of
 * lower id whose larger id is smallest (the last merge BPE would perform). */
static cllm_status derive_merges(cllm_tokenizer *t, cllm_error *err) {
    t->n_merges = 0;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        if (t->kind[id] != CLLM_TOKEN_NORMAL || t->len[id] < 2) continue;
        const uint8_t *p = t->blob + t->off[id];
        uint32_t best_a = TOK_NO_ID, best_b = TOK_NO_ID, best_max = TOK_NO_ID;
        for (uint32_t k = 1; k < t->len[id]; k++) {
            uint32_t a = tok_bytes_get(t, p, k), b = tok_bytes_get(t, p + k, t->len[id] - k);
            if (a == TOK_NO_ID || b == TOK_NO_ID || a >= id || b >= id) continue;
            uint32_t mx = a > b ? a : b;
            if (mx < best_max) {
                best_max = mx;
                best_a = a;
                best_b = b;
            }
        }
        if (best_a == TOK_NO_ID) continue; /* unreachable by merges; whole-piece lookup only */
        cllm_status st = cllm_tokenizer_add_merge(t, best_a, best_b, err);
        if (st != CLLM_OK) return st;
        t->merges[t->n_merges - 1].result = id;
    }
    return CLLM_OK;
}

static uint64_t fnv_u32(uint64_t h, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return cllm_fnv1a64(b, 4, h);
}

cllm_status cllm_tokenizer_finalize(cllm_tokenizer *t, cllm_bpe_rule rule, cllm_error *err) {
    if (t->finalized) return CLLM_OK;
    if ((unsigned)rule >= CLLM_BPE_COUNT)
        return cllm_error_set(err, CLLM_ERR_ARG, "unknown BPE rule %d", (int)rule);
    t->rule = rule;
    if (rule == CLLM_BPE_RANKS) t->n_merges = 0; /* merges are derived, not given */
    cllm_status st = tok_build_maps(t, err);
    if (st != CLLM_OK) return st;
    if (rule == CLLM_BPE_RANKS && (st = derive_merges(t, err)) != CLLM_OK) return st;
    t->n_special = 0;
    for (uint32_t id = 0; id < t->n_vocab; id++) t->n_special += t->kind[id] == CLLM_TOKEN_SPECIAL;
    t->special_ids = malloc(((size_t)t->n_special + 1) * sizeof *t->special_ids);
    if (!t->special_ids) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    uint32_t k = 0;
    for (uint32_t id = 0; id < t->n_vocab; id++)
        if (t->kind[id] == CLLM_TOKEN_SPECIAL) t->special_ids[k++] = id;
    if (t->llama) {
        free(t->match);
        t->match = malloc(((size_t)t->n_special + 1) * sizeof *t->match);
        if (!t->match) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
        memcpy(t->match, t->special_ids, (size_t)t->n_special * sizeof *t->match);
        t->n_match = t->n_special;
        uint32_t extra = 0;
        for (uint32_t id = 0; t->control_normal && id < t->n_vocab; id++) extra += t->control_normal[id];
        if (extra) {
            uint32_t *m = realloc(t->match, ((size_t)t->n_match + extra) * sizeof *m);
            if (!m) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
            t->match = m;
            for (uint32_t id = 0; id < t->n_vocab; id++)
                if (t->control_normal[id]) t->match[t->n_match++] = id;
        }
        if (!tok_match_order(t, t->match, t->n_match)) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    }
    uint64_t h = CLLM_FNV_OFFSET;
    h = fnv_u32(h, t->n_vocab);
    h = fnv_u32(h, (uint32_t)rule);
    if (t->regex) h = cllm_fnv1a64(t->regex, strlen(t->regex), h);
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        h = fnv_u32(h, t->kind[id]);
        if (t->kind[id] != CLLM_TOKEN_UNUSED) {
            h = fnv_u32(h, t->len[id]);
            h = cllm_fnv1a64(t->blob + t->off[id], t->len[id], h);
        }
    }
    if (t->ignore_merges) h = fnv_u32(h, 0x11a3a001u); /* only when set: other fingerprints stay as they were */
    if (t->llama) {
        h = fnv_u32(h, 0x11a3a000u);
        for (uint32_t id = 0; t->user_defined && id < t->n_vocab; id++)
            if (t->user_defined[id]) h = fnv_u32(h, id);
        for (uint32_t id = 0; t->control_normal && id < t->n_vocab; id++)
            if (t->control_normal[id]) h = fnv_u32(h, id ^ 0x80000000u);
    }
    if (rule == CLLM_BPE_MERGES)
        for (uint32_t r = 0; r < t->n_merges; r++) {
            h = fnv_u32(h, t->merges[r].left);
            h = fnv_u32(h, t->merges[r].right);
        }
    t->hash = h;
    t->finalized = 1;
    return CLLM_OK;
}

uint32_t cllm_tokenizer_n_vocab(const cllm_tokenizer *t) { return t->n_vocab; }
uint32_t cllm_tokenizer_n_merges(const cllm_tokenizer *t) { return t->n_merges; }
cllm_bpe_rule cllm_tokenizer_rule(const cllm_tokenizer *t) { return t->rule; }
cllm_pretok_kind cllm_tokenizer_pretok_kind(const cllm_tokenizer *t) { return t->pretok_kind; }
const char *cllm_tokenizer_pattern(const cllm_tokenizer *t) { return t->regex; }
uint64_t cllm_tokenizer_hash(const cllm_tokenizer *t) { return t->hash; }

cllm_token_kind cllm_tokenizer_token_kind(const cllm_tokenizer *t, uint32_t id) {
    return id < t->n_vocab ? (cllm_token_kind)t->kind[id] : CLLM_TOKEN_UNUSED;
}

cllm_status cllm_tokenizer_token_bytes(const cllm_tokenizer *t, uint32_t id, const uint8_t **bytes,
                                       size_t *len, cllm_error *err) {
    if (id >= t->n_vocab)
        return cllm_error_set(err, CLLM_ERR_ARG, "token id %u >= vocabulary size %u", id,
                              t->n_vocab);
    if (t->kind[id] == CLLM_TOKEN_UNUSED && !t->spm) /* SPM: unused ids are pieces that decode to nothing */
        return cllm_error_set(err, CLLM_ERR_ARG, "token id %u is unused in this vocabulary", id);
    *bytes = t->blob + t->off[id];
    *len = t->len[id];
    return CLLM_OK;
}

void cllm_tokenizer_merge(const cllm_tokenizer *t, uint32_t r, uint32_t *left, uint32_t *right,
                          uint32_t *result) {
    CLLM_ASSERT(r < t->n_merges);
    *left = t->merges[r].left;
    *right = t->merges[r].right;
    *result = t->merges[r].result;
}

int64_t cllm_tokenizer_special_id(const cllm_tokenizer *t, const char *text) {
    size_t n = strlen(text);
    for (uint32_t i = 0; i < t->n_special; i++) {
        uint32_t id = t->special_ids[i];
        if (t->len[id] == n && !memcmp(t->blob + t->off[id], text, n)) return id;
    }
    return -1;
}

int64_t cllm_tokenizer_eot_id(const cllm_tokenizer *t) {
    if (t->spm) return t->spm->eos;
    return cllm_tokenizer_special_id(t, "<|endoftext|>");
}

/* ---- base64 ---- */

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t tok_base64_encode(const uint8_t *in, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = b64_chars[(v >> 18) & 63];
        out[o++] = b64_chars[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64_chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64_chars[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long tok_base64_decode(const char *in, size_t n, uint8_t *out) {
    if (n == 0 || n % 4) return -1;
    long o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (in[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else {
                if (pad) return -1; /* data after '=' */
                v[k] = b64_value(in[i + k]);
                if (v[k] < 0) return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(w >> 16);
        if (pad < 2) out[o++] = (uint8_t)(w >> 8);
        if (pad < 1) out[o++] = (uint8_t)w;
    }
    return o;
}
