/*
 * encode.c: text -> token ids. Special-token segmentation (only the specials
 * the caller allows), pre-tokenization, and byte-pair merging inside each
 * pre-token; sequential and OpenMP-parallel drivers with identical output.
 *
 * Merging follows tiktoken's algorithm (see tokenizer.h for the two rules):
 * repeatedly merge the adjacent pair of lowest rank, leftmost on ties. Short
 * pieces use the quadratic scan over a small array (fast for the typical
 * 2..20-byte word); long pieces (whitespace or digit runs, "none" split) use
 * a linked list and a binary heap, O(n log n), with the same order.
 *
 * SentencePiece vocabularies go to spm.c, and llama.cpp's byte-level BPE
 * vocabularies to llama_encode (both sequentially: their fragments have no
 * safe cut points for the parallel driver).
 *
 * Does not: decode (decode.c) or train (train.c).
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/utf8.h"
#include "tok_internal.h"

#define SMALL_PIECE 64 /* pieces up to this many bytes use the array scan */

void cllm_tokens_free(cllm_tokens *toks) {
    if (!toks) return;
    free(toks->ids);
    toks->ids = NULL;
    toks->n = toks->cap = 0;
}

static int tokens_reserve(cllm_tokens *toks, size_t extra) {
    if (toks->n + extra <= toks->cap) return 1;
    size_t cap = toks->cap ? toks->cap : 256;
    while (cap < toks->n + extra) {
        if (cap > SIZE_MAX / 8) return 0;
        cap *= 2;
    }
    uint32_t *n = realloc(toks->ids, cap * sizeof *n);
    if (!n) return 0;
    toks->ids = n;
    toks->cap = cap;
    return 1;
}

cllm_status cllm_tokens_push(cllm_tokens *toks, uint32_t id, cllm_error *err) {
    if (!tokens_reserve(toks, 1))
        return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory growing a token list to %zu ids",
                              toks->n + 1);
    toks->ids[toks->n++] = id;
    return CLLM_OK;
}

/* ---- merging inside one pre-token ------------------------------------------ */

static void merge_small(const cllm_tokenizer *t, const uint8_t *p, size_t n, uint32_t *out,
                        size_t *n_out) {
    uint32_t ids[SMALL_PIECE], rank[SMALL_PIECE], res[SMALL_PIECE];
    for (size_t i = 0; i < n; i++) ids[i] = t->byte_id[p[i]];
    for (size_t i = 0; i + 1 < n; i++)
        if (!tok_pair_get(&t->pairs, ids[i], ids[i + 1], &rank[i], &res[i])) rank[i] = UINT32_MAX;
    while (n > 1) {
        uint32_t best = UINT32_MAX;
        size_t bi = 0;
        for (size_t i = 0; i + 1 < n; i++)
            if (rank[i] < best) {
                best = rank[i];
                bi = i;
            }
        if (best == UINT32_MAX) break;
        ids[bi] = res[bi];
        memmove(ids + bi + 1, ids + bi + 2, (n - bi - 2) * sizeof *ids);
        memmove(rank + bi + 1, rank + bi + 2, (n > bi + 2 ? n - bi - 2 : 0) * sizeof *rank);
        memmove(res + bi + 1, res + bi + 2, (n > bi + 2 ? n - bi - 2 : 0) * sizeof *res);
        n--;
        if (bi > 0 && !tok_pair_get(&t->pairs, ids[bi - 1], ids[bi], &rank[bi - 1], &res[bi - 1]))
            rank[bi - 1] = UINT32_MAX;
        if (bi + 1 < n && !tok_pair_get(&t->pairs, ids[bi], ids[bi + 1], &rank[bi], &res[bi]))
            rank[bi] = UINT32_MAX;
    }
    memcpy(out, ids, n * sizeof *ids);
    *n_out = n;
}

typedef struct {
    uint32_t rank, pos, left, right;
} heap_entry;

static int heap_less(const heap_entry *a, const heap_entry *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(heap_entry *h, size_t *n, heap_entry e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(&e, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = e;
}

static heap_entry heap_pop(heap_entry *h, size_t *n) {
    heap_entry top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

/* Long pieces: same merge order as merge_small, O(n log n). Arrays from scratch. */
static int merge_large(const cllm_tokenizer *t, const uint8_t *p, size_t n, cllm_tokens *out) {
    if (n > UINT32_MAX - 1) return 0;
    uint32_t *id = malloc(n * sizeof *id), *next = malloc(n * sizeof *next),
             *prev = malloc(n * sizeof *prev);
    heap_entry *heap = malloc(2 * n * sizeof *heap); /* n-1 initial + 2 per merge (<n) */
    int ok = id && next && prev && heap;
    if (ok) {
        size_t hn = 0;
        for (size_t i = 0; i < n; i++) {
            id[i] = t->byte_id[p[i]];
            next[i] = (uint32_t)(i + 1);
            prev[i] = (uint32_t)i - 1; /* UINT32_MAX for the first */
        }
        uint32_t r = 0, res = 0;
        for (size_t i = 0; i + 1 < n; i++)
            if (tok_pair_get(&t->pairs, id[i], id[i + 1], &r, &res))
                heap_push(heap, &hn, (heap_entry){r, (uint32_t)i, id[i], id[i + 1]});
        while (hn) {
            heap_entry e = heap_pop(heap, &hn);
            uint32_t i = e.pos, j = next[i];
            if (id[i] == TOK_NO_ID || j >= n || id[i] != e.left || id[j] != e.right) continue;
            tok_pair_get(&t->pairs, e.left, e.right, &r, &res);
            id[i] = res;
            id[j] = TOK_NO_ID; /* dead */
            next[i] = next[j];
            if (next[i] < n) prev[next[i]] = i;
            if (prev[i] != UINT32_MAX && tok_pair_get(&t->pairs, id[prev[i]], id[i], &r, &res))
                heap_push(heap, &hn, (heap_entry){r, prev[i], id[prev[i]], id[i]});
            if (next[i] < n && tok_pair_get(&t->pairs, id[i], id[next[i]], &r, &res))
                heap_push(heap, &hn, (heap_entry){r, i, id[i], id[next[i]]});
        }
        size_t count = 0;
        for (uint32_t i = 0; i < n; i = next[i]) count++;
        ok = tokens_reserve(out, count);
        if (ok)
            for (uint32_t i = 0; i < n; i = next[i]) out->ids[out->n++] = id[i];
    }
    free(id);
    free(next);
    free(prev);
    free(heap);
    return ok;
}

/* Appends the tokens of one pre-token; 0 on allocation failure. */
static int encode_piece(const cllm_tokenizer *t, const uint8_t *p, size_t n, cllm_tokens *out) {
    if (n == 0) return 1;
    if (t->rule == CLLM_BPE_RANKS || t->ignore_merges) { /* tiktoken, Llama 3: a piece that is a token is emitted whole */
        uint32_t whole = n == 1 ? t->byte_id[p[0]] : tok_bytes_get(t, p, n);
        if (whole != TOK_NO_ID) {
            if (!tokens_reserve(out, 1)) return 0;
            out->ids[out->n++] = whole;
            return 1;
        }
    }
    if (n > SMALL_PIECE) return merge_large(t, p, n, out);
    if (!tokens_reserve(out, n)) return 0;
    size_t k;
    merge_small(t, p, n, out->ids + out->n, &k);
    out->n += k;
    return 1;
}

typedef struct {
    const cllm_tokenizer *t;
    cllm_tokens *out;
    int oom;
} piece_ctx;

static int on_piece(void *ctx, const uint8_t *piece, size_t len) {
    piece_ctx *c = ctx;
    if (!encode_piece(c->t, piece, len, c->out)) {
        c->oom = 1;
        return 1;
    }
    return 0;
}

/* Encodes text[begin,end) of an ordinary segment text[0,len). */
static cllm_status encode_ordinary(const cllm_tokenizer *t, const uint8_t *text, size_t len,
                                   size_t begin, size_t end, cllm_tokens *out, cllm_error *err) {
    piece_ctx c = {t, out, 0};
    cllm_status st = cllm_pretok_split(t->pretok, text, len, begin, end, on_piece, &c, err);
    if (st == CLLM_OK && c.oom)
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory while encoding (%zu tokens so far)",
                            out->n);
    return st;
}

/* ---- special tokens ---------------------------------------------------------- */

static int special_allowed(const cllm_tokenizer *t, const cllm_special_set *allowed, uint32_t id) {
    if (!allowed) return 0;
    if (allowed->all) return t->kind[id] == CLLM_TOKEN_SPECIAL;
    for (size_t i = 0; i < allowed->n; i++)
        if (allowed->ids[i] == id) return t->kind[id] == CLLM_TOKEN_SPECIAL;
    return 0;
}

/* Finds allowed special tokens left to right. Caches each special's next
 * occurrence so a text with many specials is scanned once per special, not
 * once per occurrence. */
typedef struct {
    const cllm_tokenizer *t;
    const uint8_t *text;
    size_t len;
    uint32_t n;     /* allowed specials */
    uint32_t *ids;  /* [n] */
    size_t *next;   /* [n] next start >= last query, or SIZE_MAX for none */
} special_finder;

static int finder_init(special_finder *f, const cllm_tokenizer *t, const cllm_special_set *allowed,
                       const uint8_t *text, size_t len) {
    memset(f, 0, sizeof *f);
    f->t = t;
    f->text = text;
    f->len = len;
    f->ids = malloc(((size_t)t->n_special + 1) * sizeof *f->ids);
    f->next = malloc(((size_t)t->n_special + 1) * sizeof *f->next);
    if (!f->ids || !f->next) return 0;
    for (uint32_t k = 0; k < t->n_special; k++) {
        uint32_t sid = t->special_ids[k];
        if (!special_allowed(t, allowed, sid)) continue;
        f->ids[f->n] = sid;
        f->next[f->n++] = SIZE_MAX - 1; /* not searched yet */
    }
    return 1;
}

static void finder_free(special_finder *f) {
    free(f->ids);
    free(f->next);
}

/* Earliest allowed special starting at or after pos (longest on ties). */
static int finder_next(special_finder *f, size_t pos, size_t *start, uint32_t *id) {
    int found = 0;
    size_t best = SIZE_MAX;
    for (uint32_t k = 0; k < f->n; k++) {
        uint32_t sid = f->ids[k];
        if (f->next[k] == SIZE_MAX) continue; /* no more occurrences */
        if (f->next[k] == SIZE_MAX - 1 || f->next[k] < pos) {
            const uint8_t *hit = pos < f->len ? memmem(f->text + pos, f->len - pos,
                                                       f->t->blob + f->t->off[sid], f->t->len[sid])
                                              : NULL;
            f->next[k] = hit ? (size_t)(hit - f->text) : SIZE_MAX;
            if (!hit) continue;
        }
        size_t s = f->next[k];
        if (!found || s < best || (s == best && f->t->len[sid] > f->t->len[*id])) {
            found = 1;
            best = s;
            *id = sid;
        }
    }
    *start = best;
    return found;
}

static int allows_any(const cllm_tokenizer *t, const cllm_special_set *allowed) {
    return allowed && t->n_special && (allowed->all || allowed->n);
}

/* ---- llama.cpp's byte-level BPE vocabularies ---------------------------------- */

/* One character as llama.cpp's unicode_cpt_from_utf8 reads it: the length
 * from the lead byte, continuation bytes checked, no check for overlong
 * forms or surrogates; 0 when invalid (the byte then becomes U+FFFD). */
static size_t llama_char(const uint8_t *p, size_t n, uint32_t *cpt) {
    uint8_t c = p[0];
    size_t k = c < 0x80 ? 1 : c < 0xC0 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 0;
    if (!k || k > n) return 0;
    uint32_t v = k == 1 ? c : (uint32_t)c & (0x7Fu >> k);
    for (size_t i = 1; i < k; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (p[i] & 0x3F);
    }
    *cpt = v;
    return k;
}

/* The text llama.cpp's pre-tokenizer sees: each byte that starts no valid
 * character becomes U+FFFD, and characters are written back in their
 * shortest form. Returns text itself when nothing changes, else a new
 * buffer (*n updated), NULL when out of memory. */
static const uint8_t *llama_text(const uint8_t *text, size_t *n) {
    size_t len = *n, i = 0;
    uint8_t tmp[4];
    uint32_t c;
    for (; i < len; i++) {
        if (text[i] < 0x80) continue;
        size_t k = llama_char(text + i, len - i, &c);
        if (!k || cllm_utf8_put(c, tmp) != k) break; /* invalid, overlong or out of range */
        i += k - 1;
    }
    if (i == len) return text;
    uint8_t *out = malloc(3 * len + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (i = 0; i < len;) {
        size_t k = llama_char(text + i, len - i, &c), w = k ? cllm_utf8_put(c, out + o) : 0;
        if (!w) {
            memcpy(out + o, "\xEF\xBF\xBD", 3); /* U+FFFD */
            w = 3;
            k = k ? k : 1;
        }
        o += w;
        i += k;
    }
    *n = o;
    return out;
}

/* Encodes as llama.cpp's BPE tokenizer does (see tok_internal.h). */
static cllm_status llama_encode(const cllm_tokenizer *t, const uint8_t *text, size_t len,
                                const cllm_special_set *allowed, cllm_tokens *out, cllm_error *err) {
    tok_fragments fs = {0};
    if (!tok_partition(t, t->match, t->n_match, text, len, allowed, &fs)) {
        free(fs.f);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory splitting %zu bytes at special tokens", len);
    }
    cllm_status st = CLLM_OK;
    for (size_t i = 0; i < fs.n && st == CLLM_OK; i++) {
        if (fs.f[i].id != TOK_NO_ID) {
            st = cllm_tokens_push(out, fs.f[i].id, err);
            continue;
        }
        size_t n = fs.f[i].len;
        const uint8_t *p = llama_text(text + fs.f[i].off, &n);
        if (!p) {
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory encoding %zu bytes", fs.f[i].len);
            break;
        }
        for (size_t k = 0; k < n && st == CLLM_OK; k++)
            if (t->byte_id[p[k]] == TOK_NO_ID)
                st = cllm_error_set(err, CLLM_ERR_FORMAT,
                                    "encode: the text holds byte 0x%02x at %zu, which this vocabulary has no token for",
                                    p[k], fs.f[i].off + k);
        if (st == CLLM_OK) st = encode_ordinary(t, p, n, 0, n, out, err);
        if (p != text + fs.f[i].off) free((void *)p);
    }
    free(fs.f);
    return st;
}

/* cllm_tokenizer_encode; after_text = 1: the text continues ordinary text
 * (cllm_tokenizer_encode_after; only SentencePiece encodes it differently). */
static cllm_status encode_text(const cllm_tokenizer *t, const uint8_t *text, size_t len, const cllm_special_set *allowed,
                               int after_text, cllm_tokens *out, cllm_error *err) {
    if (!t->finalized) return cllm_error_set(err, CLLM_ERR_ARG, "tokenizer is not finalized");
    if (!text && len) return cllm_error_set(err, CLLM_ERR_ARG, "encode: NULL text");
    if (t->spm) return tok_spm_encode(t, text, len, allowed, after_text, out, err);
    if (t->llama) return llama_encode(t, text, len, allowed, out, err);
    size_t pos = 0;
    if (allows_any(t, allowed)) {
        special_finder f;
        if (!finder_init(&f, t, allowed, text, len)) {
            finder_free(&f);
            return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
        }
        size_t s;
        uint32_t id;
        cllm_status st = CLLM_OK;
        while (st == CLLM_OK && pos < len && finder_next(&f, pos, &s, &id)) {
            st = encode_ordinary(t, text + pos, s - pos, 0, s - pos, out, err);
            if (st == CLLM_OK) st = cllm_tokens_push(out, id, err);
            pos = s + t->len[id];
        }
        finder_free(&f);
        if (st != CLLM_OK) return st;
    }
    return encode_ordinary(t, text + pos, len - pos, 0, len - pos, out, err);
}

cllm_status cllm_tokenizer_encode(const cllm_tokenizer *t, const void *text, size_t len,
                                  const cllm_special_set *allowed, cllm_tokens *out, cllm_error *err) {
    return encode_text(t, text, len, allowed, 0, out, err);
}

cllm_status cllm_tokenizer_encode_after(const cllm_tokenizer *t, int64_t prev, const void *text, size_t len,
                                        const cllm_special_set *allowed, cllm_tokens *out, cllm_error *err) {
    const int after_text = t->spm && prev >= 0 && (uint64_t)prev < t->n_vocab && !tok_spm_cuts_text(t, (uint32_t)prev);
    return encode_text(t, text, len, allowed, after_text, out, err);
}

/* One unit of parallel work: range [begin,end) of the ordinary segment
 * [seg, seg+seg_len) of the text, or one special token. */
typedef struct {
    size_t seg, seg_len, begin, end;
    uint32_t special; /* TOK_NO_ID for ordinary text */
} work_item;

#define PAR_CHUNK (256u * 1024u) /* bytes per parallel work item (target) */

static int add_item(work_item **items, size_t *n, size_t *cap, work_item it) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        work_item *ni = realloc(*items, c * sizeof *ni);
        if (!ni) return 0;
        *items = ni;
        *cap = c;
    }
    (*items)[(*n)++] = it;
    return 1;
}

static int add_segment(const cllm_tokenizer *t, const uint8_t *text, size_t seg, size_t seg_len,
                       work_item **items, size_t *n, size_t *cap) {
    int splittable = t->pretok_kind == CLLM_PRETOK_GPT2 || t->pretok_kind == CLLM_PRETOK_CL100K ||
                     t->pretok_kind == CLLM_PRETOK_O200K;
    size_t b = 0;
    while (b < seg_len) {
        size_t e = seg_len;
        if (splittable && seg_len - b > 2 * PAR_CHUNK)
            e = cllm_pretok_safe_split(text + seg, seg_len, b + PAR_CHUNK);
        if (!add_item(items, n, cap, (work_item){seg, seg_len, b, e, TOK_NO_ID})) return 0;
        b = e;
    }
    return 1;
}

cllm_status cllm_tokenizer_encode_parallel(const cllm_tokenizer *t, const void *text_v, size_t len,
                                           const cllm_special_set *allowed, int n_threads,
                                           cllm_tokens *out, cllm_error *err) {
    const uint8_t *text = text_v;
    if (!t->finalized) return cllm_error_set(err, CLLM_ERR_ARG, "tokenizer is not finalized");
    if (n_threads <= 0) n_threads = omp_get_max_threads();
    if (n_threads == 1 || len < 2 * PAR_CHUNK || t->spm || t->llama) /* no safe cut points known */
        return cllm_tokenizer_encode(t, text, len, allowed, out, err);
    work_item *items = NULL;
    size_t n_items = 0, cap = 0, pos = 0;
    int ok = 1;
    if (allows_any(t, allowed)) {
        special_finder f;
        ok = finder_init(&f, t, allowed, text, len);
        size_t s;
        uint32_t id;
        while (ok && pos < len && finder_next(&f, pos, &s, &id)) {
            ok = add_segment(t, text, pos, s - pos, &items, &n_items, &cap) &&
                 add_item(&items, &n_items, &cap, (work_item){0, 0, 0, 0, id});
            pos = s + t->len[id];
        }
        finder_free(&f);
    }
    ok = ok && add_segment(t, text, pos, len - pos, &items, &n_items, &cap);
    cllm_tokens *parts = ok ? calloc(n_items ? n_items : 1, sizeof *parts) : NULL;
    cllm_error *errs = ok ? calloc(n_items ? n_items : 1, sizeof *errs) : NULL;
    cllm_status *sts = ok ? calloc(n_items ? n_items : 1, sizeof *sts) : NULL;
    if (!parts || !errs || !sts) {
        free(items);
        free(parts);
        free(errs);
        free(sts);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory planning a parallel encode");
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
    for (size_t i = 0; i < n_items; i++) {
        work_item *it = &items[i];
        if (it->special != TOK_NO_ID)
            sts[i] = cllm_tokens_push(&parts[i], it->special, &errs[i]);
        else
            sts[i] = encode_ordinary(t, text + it->seg, it->seg_len, it->begin, it->end, &parts[i],
                                     &errs[i]);
    }
    cllm_status st = CLLM_OK;
    size_t total = 0;
    for (size_t i = 0; i < n_items; i++) {
        if (sts[i] != CLLM_OK && st == CLLM_OK) {
            st = sts[i];
            *err = errs[i];
        }
        total += parts[i].n;
    }
    if (st == CLLM_OK && !tokens_reserve(out, total))
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for %zu tokens", total);
    for (size_t i = 0; i < n_items; i++) {
        if (st == CLLM_OK && parts[i].n) {
            memcpy(out->ids + out->n, parts[i].ids, parts[i].n * sizeof *out->ids);
            out->n += parts[i].n;
        }
        cllm_tokens_free(&parts[i]);
    }
    free(items);
    free(parts);
    free(errs);
    free(sts);
    return st;
}
