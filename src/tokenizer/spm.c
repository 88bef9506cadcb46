/*
 * spm.c: SentencePiece vocabularies the way llama.cpp stores and uses them
 * (GGUF tokenizer.ggml.model = "llama": Llama 1/2, Mistral 7B v0.1,
 * TinyLlama): reading and writing the GGUF keys, and encoding with
 * llama.cpp's SPM algorithm, so cllm gives the ids llama-tokenize gives.
 *
 * Encoding (llama.cpp's llm_tokenizer_spm, src/llama-vocab.cpp):
 *   1. The text is cut at occurrences of control, unknown and user-defined
 *      token texts, longest token first, each token splitting every text
 *      fragment left so far. User-defined tokens always cut; control and
 *      unknown ones only when the caller allows them (llama.cpp's
 *      parse_special). (partition.c, shared with llama.cpp's BPE vocabularies.)
 *   2. Each text fragment gets a leading space when add_space_prefix is set
 *      and it is the first fragment or follows a token, then every space
 *      becomes U+2581 ("▁").
 *   3. The fragment is split into UTF-8 characters (length from the lead
 *      byte's high nibble, cut at the end of the text) and adjacent symbols
 *      whose concatenation is a piece merge, highest piece score first, the
 *      leftmost pair on equal scores.
 *   4. A final symbol that is no piece comes out as one byte token per byte
 *      ("<0xXX>", else the one-byte piece, else <unk>).
 *
 * Decoding lives in decode.c: the bytes stored per id (see tok_internal.h),
 * with one leading space dropped from the first token when add_space_prefix.
 *
 * Does not: SentencePiece's unigram model (llama.cpp's "t5"/UGM), the
 * remove_extra_whitespaces normalisation (llama.cpp ignores it for SPM too),
 * or the per-model lstrip/rstrip attributes llama.cpp sets by model name
 * (Phi-3, Jina).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/fileio.h"
#include "cllm/core/hash.h"
#include "cllm/formats/gguf.h"
#include "tok_internal.h"

#define SPM_SPACE "\xe2\x96\x81" /* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's space */
#define SPM_SPACE_LEN 3

void tok_spm_free(tok_spm *s) {
    if (!s) return;
    free(s->score);
    free(s->type);
    free(s->text);
    free(s->text_off);
    free(s->text_n);
    free(s->map);
    free(s->match);
    free(s);
}

/* Id of the piece whose stored text is p[0,n), or TOK_NO_ID. */
static uint32_t spm_get(const tok_spm *s, const uint8_t *p, size_t n) {
    size_t mask = s->map_cap - 1;
    for (size_t i = tok_hash_bytes(p, n) & mask;; i = (i + 1) & mask) {
        uint32_t id = s->map[i];
        if (id == TOK_NO_ID) return TOK_NO_ID;
        if (s->text_n[id] == n && !memcmp(s->text + s->text_off[id], p, n)) return id;
    }
}

/* ---- loading ------------------------------------------------------------- */

/* "<0xXX>" (either case of hex digit) -> the byte; -1 otherwise. */
static int byte_piece(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int v = 0;
    for (int k = 3; k < 5; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Piece text with every U+2581 turned back into a space; returns the length. */
static size_t unescape(const uint8_t *p, size_t n, uint8_t *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (i + SPM_SPACE_LEN <= n && !memcmp(p + i, SPM_SPACE, SPM_SPACE_LEN)) {
            out[o++] = ' ';
            i += SPM_SPACE_LEN;
        } else {
            out[o++] = p[i++];
        }
    }
    return o;
}

/* The optional u32 key `key` as an id below V; keeps *id when absent or out of range. */
static cllm_status opt_id(const cllm_gguf *g, const char *key, uint32_t V, int64_t *id, cllm_error *err) {
    if (!cllm_gguf_find_kv(g, key)) return CLLM_OK;
    uint32_t v;
    cllm_status st = cllm_gguf_get_u32(g, key, &v, err);
    if (st == CLLM_OK && v < V) *id = v; /* llama.cpp ignores an out-of-range id too */
    return st;
}

static cllm_status opt_bool(const cllm_gguf *g, const char *key, int *flag, cllm_error *err) {
    if (!cllm_gguf_find_kv(g, key)) return CLLM_OK;
    bool v;
    cllm_status st = cllm_gguf_get_bool(g, key, &v, err);
    if (st == CLLM_OK) *flag = v;
    return st;
}


/* What a loader found: V pieces (texts borrowed), optional scores and types,
 * and the special ids and flags (already defaulted). */
typedef struct {
    const cllm_gguf_str *toks; /* [V] */
    const float *scores;       /* [V] or NULL: all 0 */
    const int32_t *types;      /* [V] or NULL: all normal */
    uint64_t V;
    int64_t bos, eos, unk, pad;
    int add_bos, add_eos, add_space_prefix;
} spm_source;

static cllm_status spm_finish(cllm_tokenizer *t, cllm_error *err);

/* Builds the finished tokenizer; errors name `path`. */
static cllm_status spm_build(const spm_source *src, const char *path, cllm_tokenizer **out, cllm_error *err) {
    *out = NULL;
    if (src->V < 256 || src->V > (1u << 30))
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %llu tokens (cllm needs 256 .. 2^30)", path,
                              (unsigned long long)src->V);
    uint32_t V = (uint32_t)src->V;
    const cllm_gguf_str *toks = src->toks;
    cllm_tokenizer *t = NULL;
    uint8_t *buf = NULL;
    tok_spm *s = NULL;
    cllm_status st = cllm_tokenizer_new(&t, V, CLLM_PRETOK_NONE, NULL, err);
    if (st != CLLM_OK) return st;
    s = t->spm = calloc(1, sizeof *s);
    if (s) {
        s->score = calloc(V, sizeof *s->score);
        s->type = malloc(V);
        s->text_off = malloc((size_t)V * sizeof *s->text_off);
        s->text_n = malloc((size_t)V * sizeof *s->text_n);
    }
    if (!s || !s->score || !s->type || !s->text_off || !s->text_n) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for %u SentencePiece tokens", V);
        goto done;
    }
    if (src->scores) memcpy(s->score, src->scores, (size_t)V * sizeof *s->score);
    /* the stored texts: an empty one becomes "[EMPTY_<id>]", as in llama.cpp */
    size_t total = 0, max_n = 0;
    for (uint32_t i = 0; i < V; i++) {
        size_t n = toks[i].len ? toks[i].len : 24;
        if (n > (1u << 20)) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: token %u is %zu bytes long", path, i, n);
            goto done;
        }
        total += n;
        if (n > max_n) max_n = n;
    }
    s->text = malloc(total + 1);
    buf = malloc(max_n + 1);
    if (!s->text || !buf) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for token texts");
        goto done;
    }
    for (uint32_t i = 0; i < V; i++) {
        s->text_off[i] = s->text_len;
        if (toks[i].len) {
            memcpy(s->text + s->text_len, toks[i].data, toks[i].len);
            s->text_n[i] = (uint32_t)toks[i].len;
        } else {
            s->text_n[i] = (uint32_t)snprintf((char *)s->text + s->text_len, 24, "[EMPTY_%u]", i);
        }
        s->text_len += s->text_n[i];
    }
    /* what each id decodes to */
    for (uint32_t i = 0; i < V && st == CLLM_OK; i++) {
        const uint8_t *p = s->text + s->text_off[i];
        size_t n = s->text_n[i];
        int ok = 1, b;
        int32_t ty = src->types ? src->types[i] : TOK_TT_NORMAL;
        s->type[i] = ty >= TOK_TT_NORMAL && ty <= TOK_TT_BYTE ? (uint8_t)ty : 0;
        switch (s->type[i]) {
        case TOK_TT_NORMAL: ok = tok_blob_put(t, i, buf, unescape(p, n, buf), CLLM_TOKEN_NORMAL); break;
        case TOK_TT_BYTE:
            if ((b = byte_piece((const char *)p, n)) < 0) {
                st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: byte token %u is '%.*s', not <0xXX>", path, i, (int)n,
                                    (const char *)p);
                break;
            }
            buf[0] = (uint8_t)b;
            ok = tok_blob_put(t, i, buf, 1, CLLM_TOKEN_NORMAL);
            break;
        case TOK_TT_CONTROL:
        case TOK_TT_UNKNOWN: ok = tok_blob_put(t, i, p, n, CLLM_TOKEN_SPECIAL); break;
        case TOK_TT_USER_DEFINED: ok = tok_blob_put(t, i, p, n, CLLM_TOKEN_NORMAL); break;
        default: ok = tok_blob_put(t, i, p, 0, CLLM_TOKEN_UNUSED); break; /* unused or undefined: decodes to nothing */
        }
        if (!ok) st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for token bytes");
    }
    if (st != CLLM_OK) goto done;
    /* llama.cpp ignores an id out of range (keeps its default) */
    s->bos = src->bos >= 0 && src->bos < V ? src->bos : -1;
    s->eos = src->eos >= 0 && src->eos < V ? src->eos : -1;
    s->unk = src->unk >= 0 && src->unk < V ? src->unk : -1;
    s->pad = src->pad >= 0 && src->pad < V ? src->pad : -1;
    s->add_bos = src->add_bos && s->bos >= 0;
    s->add_eos = src->add_eos && s->eos >= 0;
    s->add_space_prefix = src->add_space_prefix;
    st = spm_finish(t, err);
    if (st != CLLM_OK) cllm_error_prefix(err, "%s", path);
done:
    free(buf);
    if (st == CLLM_OK)
        *out = t;
    else
        cllm_tokenizer_destroy(t);
    return st;
}

cllm_status tok_spm_from_pieces(const cllm_gguf_str *toks, const float *scores, const int32_t *types, uint64_t V,
                                int64_t bos, int64_t eos, int64_t unk, int add_space_prefix, const char *path,
                                cllm_tokenizer **out, cllm_error *err) {
    spm_source src = {.toks = toks, .scores = scores, .types = types, .V = V, .bos = bos, .eos = eos, .unk = unk,
                      .pad = -1, .add_bos = 1, .add_eos = 0, .add_space_prefix = add_space_prefix};
    return spm_build(&src, path, out, err);
}

cllm_status tok_spm_from_gguf(const cllm_gguf *g, cllm_tokenizer **out, cllm_error *err) {
    *out = NULL;
    const char *path = cllm_gguf_path(g);
    uint64_t n_arr;
    cllm_gguf_type et;
    spm_source src = {.bos = 1, .eos = 2, .unk = 0, .pad = -1, /* llama.cpp's defaults for "llama" */
                      .add_bos = 1, .add_eos = 0, .add_space_prefix = 1};
    cllm_status st = cllm_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &src.toks, &src.V, err);
    if (st != CLLM_OK) return st;
    if (src.V < 256 || src.V > (1u << 30))
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %llu tokens (cllm needs 256 .. 2^30)", path,
                              (unsigned long long)src.V);
    uint32_t V = (uint32_t)src.V;
    int32_t *types = NULL;
    float *scores = NULL;
    /* token types and scores are optional in llama.cpp: normal and 0 */
    if (cllm_gguf_find_kv(g, "tokenizer.ggml.token_type")) {
        if ((st = cllm_gguf_get_arr_n(g, "tokenizer.ggml.token_type", &et, &n_arr, err)) != CLLM_OK) goto done;
        if (n_arr < src.V) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tokenizer.ggml.token_type has %llu entries, tokens %u", path,
                                (unsigned long long)n_arr, V);
            goto done;
        }
        if (!(types = malloc((size_t)V * sizeof *types))) {
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
            goto done;
        }
        if ((st = cllm_gguf_get_arr_i32(g, "tokenizer.ggml.token_type", types, V, err)) != CLLM_OK) goto done;
    }
    if (cllm_gguf_find_kv(g, "tokenizer.ggml.scores")) {
        if ((st = cllm_gguf_get_arr_n(g, "tokenizer.ggml.scores", &et, &n_arr, err)) != CLLM_OK) goto done;
        if (n_arr < src.V) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tokenizer.ggml.scores has %llu entries, tokens %u", path,
                                (unsigned long long)n_arr, V);
            goto done;
        }
        if (!(scores = malloc((size_t)V * sizeof *scores))) {
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
            goto done;
        }
        if ((st = cllm_gguf_get_arr_f32(g, "tokenizer.ggml.scores", scores, V, err)) != CLLM_OK) goto done;
    }
    src.types = types;
    src.scores = scores;
    if ((st = opt_id(g, "tokenizer.ggml.bos_token_id", V, &src.bos, err)) != CLLM_OK ||
        (st = opt_id(g, "tokenizer.ggml.eos_token_id", V, &src.eos, err)) != CLLM_OK ||
        (st = opt_id(g, "tokenizer.ggml.unknown_token_id", V, &src.unk, err)) != CLLM_OK ||
        (st = opt_id(g, "tokenizer.ggml.padding_token_id", V, &src.pad, err)) != CLLM_OK ||
        (st = opt_bool(g, "tokenizer.ggml.add_bos_token", &src.add_bos, err)) != CLLM_OK ||
        (st = opt_bool(g, "tokenizer.ggml.add_eos_token", &src.add_eos, err)) != CLLM_OK ||
        (st = opt_bool(g, "tokenizer.ggml.add_space_prefix", &src.add_space_prefix, err)) != CLLM_OK)
        goto done;
    st = spm_build(&src, path, out, err);
done:
    free(types);
    free(scores);
    return st;
}

/* The piece map, the special-token order, byte fallback, the fingerprint. */
static cllm_status spm_finish(cllm_tokenizer *t, cllm_error *err) {
    tok_spm *s = t->spm;
    uint32_t V = t->n_vocab;
    s->map_cap = 16;
    while (s->map_cap < 2 * (size_t)V + 1) s->map_cap *= 2;
    s->map = malloc(s->map_cap * sizeof *s->map);
    s->match = malloc((size_t)V * sizeof *s->match);
    if (!s->map || !s->match) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for the piece map");
    memset(s->map, 0xff, s->map_cap * sizeof *s->map);
    size_t mask = s->map_cap - 1;
    s->newline_cuts = 1;
    for (uint32_t id = 0; id < V; id++) {
        const uint8_t *p = s->text + s->text_off[id];
        uint32_t other = spm_get(s, p, s->text_n[id]);
        if (other != TOK_NO_ID) /* llama.cpp refuses such a vocabulary too */
            return cllm_error_set(err, CLLM_ERR_FORMAT, "tokens %u and %u are the same piece '%.*s'", other, id,
                                  (int)s->text_n[id], (const char *)p);
        size_t i = tok_hash_bytes(p, s->text_n[id]) & mask;
        while (s->map[i] != TOK_NO_ID) i = (i + 1) & mask;
        s->map[i] = id;
        int ty = s->type[id];
        if (s->text_n[id] > 1 && memchr(p, '\n', s->text_n[id])) s->newline_cuts = 0;
        if (ty == TOK_TT_CONTROL || ty == TOK_TT_UNKNOWN || ty == TOK_TT_USER_DEFINED) s->match[s->n_match++] = id;
    }
    if (!tok_match_order(t, s->match, s->n_match))
        return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory ordering the special tokens");
    for (int b = 0; b < 256; b++) {
        char hex[8];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        uint8_t c = (uint8_t)b;
        uint32_t id = spm_get(s, (const uint8_t *)hex, 6);
        s->byte_tok[b] = id != TOK_NO_ID ? id : spm_get(s, &c, 1);
        t->byte_id[b] = s->byte_tok[b];
    }
    t->n_special = 0;
    for (uint32_t id = 0; id < V; id++) t->n_special += t->kind[id] == CLLM_TOKEN_SPECIAL;
    t->special_ids = malloc(((size_t)t->n_special + 1) * sizeof *t->special_ids);
    if (!t->special_ids) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    uint32_t k = 0;
    for (uint32_t id = 0; id < V; id++)
        if (t->kind[id] == CLLM_TOKEN_SPECIAL) t->special_ids[k++] = id;
    uint64_t h = cllm_fnv1a64("spm", 3, CLLM_FNV_OFFSET);
    uint32_t head[4] = {V, (uint32_t)s->add_bos, (uint32_t)s->add_eos, (uint32_t)s->add_space_prefix};
    h = cllm_fnv1a64(head, sizeof head, h);
    int64_t ids[4] = {s->bos, s->eos, s->unk, s->pad};
    h = cllm_fnv1a64(ids, sizeof ids, h);
    h = cllm_fnv1a64(s->type, V, h);
    h = cllm_fnv1a64(s->score, (size_t)V * sizeof *s->score, h);
    h = cllm_fnv1a64(s->text_n, (size_t)V * sizeof *s->text_n, h);
    h = cllm_fnv1a64(s->text, s->text_len, h);
    t->hash = h;
    t->rule = CLLM_BPE_RANKS;
    t->finalized = 1;
    return CLLM_OK;
}

/* ---- SentencePiece .model files (protobuf) ----------------------------------
 * sentencepiece_model.proto's ModelProto, the fields llama.cpp's converter
 * reads: 1 pieces (repeated: 1 piece string, 2 score float, 3 type enum,
 * NORMAL=1 UNKNOWN=2 CONTROL=3 USER_DEFINED=4 BYTE=6 UNUSED=5), 2 trainer_spec
 * (3 model_type: UNIGRAM=1 (the default) BPE=2; 40 unk_id, 41 bos_id, 42
 * eos_id, 43 pad_id, defaults 0 1 2 -1), 3 normalizer_spec (3
 * add_dummy_prefix, default true, which becomes add_space_prefix). Other
 * fields are skipped by wire type. Only BPE models: a unigram model needs
 * another algorithm (llama.cpp's UGM). The result is the vocabulary that
 * llama.cpp's convert_hf_to_gguf.py writes for the file (add_bos true,
 * add_eos false, user-defined pieces as normal ones). */

typedef struct {
    const uint8_t *p, *end;
    int bad;
} pb;

static uint64_t pb_varint(pb *r) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) break;
        uint8_t c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return v;
    }
    r->bad = 1;
    return 0;
}

/* Reads a field key; 0 at the end or on error. */
static int pb_key(pb *r, uint32_t *field, int *wire) {
    if (r->bad || r->p >= r->end) return 0;
    uint64_t k = pb_varint(r);
    *field = (uint32_t)(k >> 3);
    *wire = (int)(k & 7);
    return !r->bad && *field != 0;
}

/* A length-delimited payload as a sub-reader. */
static pb pb_bytes(pb *r) {
    uint64_t n = pb_varint(r);
    pb sub = {r->p, r->p, 0};
    if (r->bad || n > (uint64_t)(r->end - r->p)) {
        r->bad = 1;
        return sub;
    }
    sub.end = r->p + n;
    r->p += n;
    return sub;
}

static void pb_skip(pb *r, int wire) {
    size_t n = wire == 1 ? 8 : wire == 5 ? 4 : 0;
    if (wire == 0) pb_varint(r);
    else if (wire == 2) pb_bytes(r);
    else if (n && (size_t)(r->end - r->p) >= n) r->p += n;
    else r->bad = 1; /* groups (3, 4) and unknown wire types are not in this schema */
}

static float pb_f32(pb *r) {
    float f = 0;
    if ((size_t)(r->end - r->p) < 4) {
        r->bad = 1;
        return 0;
    }
    uint32_t u = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    memcpy(&f, &u, 4);
    r->p += 4;
    return f;
}

cllm_status cllm_tokenizer_load_spm_model(const char *path, cllm_tokenizer **out, cllm_error *err) {
    *out = NULL;
    char *data = NULL;
    size_t len = 0;
    cllm_status st = cllm_file_read_all(path, 1u << 30, &data, &len, err);
    if (st != CLLM_OK) return st;
    spm_source src = {.bos = 1, .eos = 2, .unk = 0, .pad = -1, .add_bos = 1, .add_eos = 0, .add_space_prefix = 1};
    uint64_t cap = 0, model_type = 1;
    cllm_gguf_str *toks = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    pb r = {(const uint8_t *)data, (const uint8_t *)data + len, 0};
    uint32_t f;
    int w;
    /* the pieces count first, so the arrays are allocated once */
    while (pb_key(&r, &f, &w)) {
        if (f == 1 && w == 2) cap++;
        pb_skip(&r, w);
    }
    if (r.bad || r.p != r.end || cap < 256 || cap > (1u << 30)) {
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: not a SentencePiece model (%s, %llu pieces)", path,
                            r.bad || r.p != r.end ? "malformed protobuf" : "cllm needs 256 .. 2^30 pieces",
                            (unsigned long long)cap);
        goto done;
    }
    toks = calloc(cap, sizeof *toks);
    scores = calloc(cap, sizeof *scores);
    types = malloc(cap * sizeof *types);
    if (!toks || !scores || !types) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for %llu pieces", (unsigned long long)cap);
        goto done;
    }
    r = (pb){(const uint8_t *)data, (const uint8_t *)data + len, 0};
    while (pb_key(&r, &f, &w)) {
        if (f == 1 && w == 2) {
            pb m = pb_bytes(&r);
            uint64_t i = src.V++;
            types[i] = TOK_TT_NORMAL;
            while (pb_key(&m, &f, &w)) {
                if (f == 1 && w == 2) {
                    pb t = pb_bytes(&m);
                    toks[i] = (cllm_gguf_str){(const char *)t.p, (uint64_t)(t.end - t.p)};
                } else if (f == 2 && w == 5) {
                    scores[i] = pb_f32(&m);
                } else if (f == 3 && w == 0) {
                    types[i] = (int32_t)pb_varint(&m);
                    /* llama.cpp's converter writes a user-defined piece of the model as normal
                     * (only added_tokens.json entries become user-defined) */
                    if (types[i] == TOK_TT_USER_DEFINED) types[i] = TOK_TT_NORMAL;
                } else {
                    pb_skip(&m, w);
                }
            }
            r.bad |= m.bad;
        } else if ((f == 2 || f == 3) && w == 2) {
            int trainer = f == 2;
            pb m = pb_bytes(&r);
            while (pb_key(&m, &f, &w)) {
                if (w != 0) {
                    pb_skip(&m, w);
                    continue;
                }
                int64_t v = (int64_t)pb_varint(&m); /* int32 fields: negatives are 10-byte varints */
                if (trainer && f == 3) model_type = (uint64_t)v;
                else if (trainer && f == 40) src.unk = v;
                else if (trainer && f == 41) src.bos = v;
                else if (trainer && f == 42) src.eos = v;
                else if (trainer && f == 43) src.pad = v;
                else if (!trainer && f == 3) src.add_space_prefix = v != 0;
            }
            r.bad |= m.bad;
        } else {
            pb_skip(&r, w);
        }
    }
    if (r.bad) {
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: malformed protobuf", path);
        goto done;
    }
    if (model_type != 2) {
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: SentencePiece model type %llu; only BPE (2) is supported", path,
                            (unsigned long long)model_type);
        goto done;
    }
    src.toks = toks;
    src.scores = scores;
    src.types = types;
    st = spm_build(&src, path, out, err);
done:
    free(toks);
    free(scores);
    free(types);
    free(data);
    return st;
}

/* ---- writing --------------------------------------------------------------- */

cllm_status tok_spm_gguf_set(const cllm_tokenizer *t, cllm_gguf_writer *w, cllm_error *err) {
    const tok_spm *s = t->spm;
    uint32_t V = t->n_vocab;
    char **strs = calloc(V, sizeof *strs);
    int32_t *types = malloc((size_t)V * sizeof *types);
    cllm_status st = CLLM_OK;
    if (!strs || !types) st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory writing the tokenizer to GGUF");
    for (uint32_t id = 0; id < V && st == CLLM_OK; id++) {
        if (!(strs[id] = strndup((const char *)s->text + s->text_off[id], s->text_n[id])))
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
        types[id] = s->type[id];
    }
    if (st == CLLM_OK) st = cllm_gguf_set_str(w, "tokenizer.ggml.model", "llama", err);
    if (st == CLLM_OK) st = cllm_gguf_set_str(w, "tokenizer.ggml.pre", "default", err);
    if (st == CLLM_OK) st = cllm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)strs, NULL, V, err);
    if (st == CLLM_OK) st = cllm_gguf_set_arr(w, "tokenizer.ggml.scores", CLLM_GGUF_FLOAT32, s->score, V, err);
    if (st == CLLM_OK) st = cllm_gguf_set_arr(w, "tokenizer.ggml.token_type", CLLM_GGUF_INT32, types, V, err);
    const char *keys[4] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                           "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"};
    int64_t ids[4] = {s->bos, s->eos, s->unk, s->pad};
    for (int k = 0; k < 4 && st == CLLM_OK; k++)
        if (ids[k] >= 0) st = cllm_gguf_set_u32(w, keys[k], (uint32_t)ids[k], err);
    if (st == CLLM_OK) st = cllm_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", s->add_bos, err);
    if (st == CLLM_OK) st = cllm_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", s->add_eos, err);
    if (st == CLLM_OK) st = cllm_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", s->add_space_prefix, err);
    for (uint32_t id = 0; strs && id < V; id++) free(strs[id]);
    free(strs);
    free(types);
    return st;
}

/* ---- encoding --------------------------------------------------------------- */

typedef struct {
    int prev, next; /* neighbours in the symbol chain, -1 at the ends */
    size_t at, n;   /* bytes buf[at, at+n); n == 0 once merged into the left neighbour */
} symbol;

typedef struct {
    float score;
    int left, right;
    size_t size; /* bytes of the merged pair when it was queued */
} bigram;

/* Heap order: higher score first, then the leftmost pair. */
static int bigram_before(const bigram *a, const bigram *b) {
    return a->score != b->score ? a->score > b->score : a->left < b->left;
}

typedef struct {
    const tok_spm *s;
    const uint8_t *buf;
    symbol *sym;
    bigram *heap;
    size_t n_heap;
} session;

static void try_pair(session *ss, int left, int right) {
    if (left < 0 || right < 0) return;
    size_t n = ss->sym[left].n + ss->sym[right].n;
    uint32_t id = spm_get(ss->s, ss->buf + ss->sym[left].at, n);
    if (id == TOK_NO_ID) return;
    bigram e = {ss->s->score[id], left, right, n};
    size_t i = ss->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!bigram_before(&e, &ss->heap[parent])) break;
        ss->heap[i] = ss->heap[parent];
        i = parent;
    }
    ss->heap[i] = e;
}

static bigram pop_pair(session *ss) {
    bigram top = ss->heap[0], last = ss->heap[--ss->n_heap];
    size_t i = 0, n = ss->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && bigram_before(&ss->heap[c + 1], &ss->heap[c])) c++;
        if (!bigram_before(&ss->heap[c], &last)) break;
        ss->heap[i] = ss->heap[c];
        i = c;
    }
    if (n) ss->heap[i] = last;
    return top;
}

/* Bytes of the UTF-8 character a lead byte announces (1 for a stray
 * continuation byte), before cutting at the end of the text. */
static size_t spm_char_len(uint8_t lead) {
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[lead >> 4];
}

/* Steps 3 and 4 on buf[0,n) (already escaped). */
static cllm_status encode_text(const cllm_tokenizer *t, const uint8_t *buf, size_t n, cllm_tokens *out,
                               cllm_error *err) {
    const tok_spm *s = t->spm;
    if (n == 0) return CLLM_OK;
    if (n > (size_t)INT32_MAX) return cllm_error_set(err, CLLM_ERR_LIMIT, "encode: a text fragment of %zu bytes", n);
    session ss = {s, buf, malloc(n * sizeof *ss.sym), malloc(3 * n * sizeof *ss.heap), 0};
    /* the heap holds the n-1 first pairs plus at most 2 per merge (< n merges) */
    cllm_status st = CLLM_OK;
    if (!ss.sym || !ss.heap) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory encoding %zu bytes", n);
        goto done;
    }
    int n_sym = 0;
    for (size_t at = 0; at < n; n_sym++) {
        size_t k = spm_char_len(buf[at]);
        if (k > n - at) k = n - at;
        ss.sym[n_sym] = (symbol){n_sym - 1, at + k == n ? -1 : n_sym + 1, at, k};
        at += k;
    }
    for (int i = 1; i < n_sym; i++) try_pair(&ss, i - 1, i);
    while (ss.n_heap) {
        bigram b = pop_pair(&ss);
        symbol *l = &ss.sym[b.left], *r = &ss.sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) ss.sym[r->next].prev = b.left;
        try_pair(&ss, l->prev, b.left);
        try_pair(&ss, b.left, l->next);
    }
    for (int i = 0; i != -1 && st == CLLM_OK; i = ss.sym[i].next) {
        const uint8_t *p = buf + ss.sym[i].at;
        uint32_t id = spm_get(s, p, ss.sym[i].n);
        if (id != TOK_NO_ID) {
            st = cllm_tokens_push(out, id, err);
            continue;
        }
        for (size_t k = 0; k < ss.sym[i].n && st == CLLM_OK; k++) { /* byte fallback */
            uint32_t bid = s->byte_tok[p[k]];
            if (bid == TOK_NO_ID && s->unk >= 0) bid = (uint32_t)s->unk;
            if (bid == TOK_NO_ID)
                st = cllm_error_set(err, CLLM_ERR_ARG, "encode: byte 0x%02x has no token and the vocabulary no <unk>",
                                    p[k]);
            else
                st = cllm_tokens_push(out, bid, err);
        }
    }
done:
    free(ss.sym);
    free(ss.heap);
    return st;
}

int tok_spm_cuts_text(const cllm_tokenizer *t, uint32_t id) {
    const tok_spm *s = t->spm;
    for (size_t i = 0; i < s->n_match; i++)
        if (s->match[i] == id) return 1;
    return 0;
}

cllm_status tok_spm_encode(const cllm_tokenizer *t, const uint8_t *text, size_t len,
                           const cllm_special_set *allowed, int after_text, cllm_tokens *out, cllm_error *err) {
    const tok_spm *s = t->spm;
    tok_fragments fs = {0};
    if (!tok_partition(t, s->match, s->n_match, text, len, allowed, &fs)) {
        free(fs.f);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory splitting %zu bytes at special tokens", len);
    }
    size_t longest = 0;
    for (size_t i = 0; i < fs.n; i++)
        if (fs.f[i].id == TOK_NO_ID && fs.f[i].len > longest) longest = fs.f[i].len;
    /* escaped: each byte becomes at most 3 (a space -> U+2581), plus the prefix */
    uint8_t *buf = longest ? malloc(3 * longest + SPM_SPACE_LEN) : NULL;
    cllm_status st = CLLM_OK;
    if (longest && !buf) st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory encoding %zu bytes", len);
    int prev_token = !after_text; /* the first fragment counts as following a token, unless it continues text */
    for (size_t i = 0; i < fs.n && st == CLLM_OK; i++) {
        tok_fragment fr = fs.f[i];
        if (fr.id != TOK_NO_ID) {
            st = cllm_tokens_push(out, fr.id, err);
            prev_token = 1;
            continue;
        }
        size_t n = 0;
        if (s->add_space_prefix && prev_token) {
            memcpy(buf, SPM_SPACE, SPM_SPACE_LEN);
            n = SPM_SPACE_LEN;
        }
        for (size_t k = 0; k < fr.len; k++) {
            uint8_t c = text[fr.off + k];
            if (c == ' ') {
                memcpy(buf + n, SPM_SPACE, SPM_SPACE_LEN);
                n += SPM_SPACE_LEN;
            } else {
                buf[n++] = c;
            }
        }
        /* Where no piece longer than one byte holds a newline, a "\n" symbol never
         * merges, so the text left and right of it merge independently: encoding
         * line by line gives the same ids with memory bounded by the longest line.
         * The cut is only made where "\n" is a symbol of its own (an invalid lead
         * byte before it may swallow it). */
        size_t seg = 0;
        if (s->newline_cuts)
            for (size_t at = 0; at < n && st == CLLM_OK;) {
                size_t k = spm_char_len(buf[at]);
                if (k == 1 && buf[at] == '\n') {
                    st = encode_text(t, buf + seg, at + 1 - seg, out, err);
                    seg = at + 1;
                }
                at += k;
            }
        if (st == CLLM_OK) st = encode_text(t, buf + seg, n - seg, out, err);
        prev_token = 0;
    }
    free(buf);
    free(fs.f);
    return st;
}

/* ---- accessors ---------------------------------------------------------------- */

int cllm_tokenizer_is_spm(const cllm_tokenizer *t) { return t->spm != NULL; }

int64_t cllm_tokenizer_prompt_bos(const cllm_tokenizer *t) {
    return t->spm && t->spm->add_bos ? t->spm->bos : -1;
}

int64_t cllm_tokenizer_prompt_eos(const cllm_tokenizer *t) {
    return t->spm && t->spm->add_eos ? t->spm->eos : -1;
}
