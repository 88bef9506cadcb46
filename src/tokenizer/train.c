/*
 * train.c: byte-level BPE training (Sennrich et al. 2016, byte-level as in
 * GPT-2): count distinct pre-tokens, then merge the most frequent adjacent
 * pair until the vocabulary is full.
 *
 * Memory is bounded by the distinct pre-tokens, not the corpus: text is
 * reduced to a map pre-token -> count (u64) as it arrives. Pair counts are
 * 64-bit. Each merge only revisits the words that contain the merged pair
 * (an index pair -> words), updates the counts of the pairs around each
 * occurrence, and pushes changed pairs into a max-heap with lazy deletion
 * (a popped entry whose count is stale is re-pushed with the current
 * count), so there is no full recount per merge.
 *
 * Ties: the larger count wins; on equal counts the pair whose left token's
 * bytes are lexicographically smaller wins, then the right token's bytes
 * (a total order, so training is deterministic and thread-count independent).
 * A merge whose bytes already form a token reuses that token (no duplicates).
 *
 * Does not: train unigram/WordPiece models, or normalise text.
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/progress.h"
#include "tok_internal.h"

/* ---- pre-token counting ---------------------------------------------------- */

typedef struct {
    uint8_t *arena;   /* [arena_len] bytes of all distinct pieces */
    size_t arena_len, arena_cap;
    uint64_t *off;    /* [n] piece offsets */
    uint32_t *len;    /* [n] piece lengths */
    uint64_t *count;  /* [n] occurrences */
    uint64_t *hash;   /* [n] cached hashes */
    size_t n, cap;
    uint32_t *slots;  /* [n_slots] piece index + 1, 0 = empty */
    size_t n_slots;
    int oom;
} piece_counter;

static void counter_free(piece_counter *c) {
    free(c->arena);
    free(c->off);
    free(c->len);
    free(c->count);
    free(c->hash);
    free(c->slots);
    memset(c, 0, sizeof *c);
}

static int counter_grow_slots(piece_counter *c) {
    size_t ns = c->n_slots ? c->n_slots * 2 : 1024;
    uint32_t *s = calloc(ns, sizeof *s);
    if (!s) return 0;
    for (size_t i = 0; i < c->n; i++) {
        size_t j = c->hash[i] & (ns - 1);
        while (s[j]) j = (j + 1) & (ns - 1);
        s[j] = (uint32_t)i + 1;
    }
    free(c->slots);
    c->slots = s;
    c->n_slots = ns;
    return 1;
}

static int counter_add(piece_counter *c, const uint8_t *p, size_t n, uint64_t count) {
    if (n == 0) return 1;
    if (n > UINT32_MAX) return 0;
    if (2 * (c->n + 1) > c->n_slots && !counter_grow_slots(c)) return 0;
    uint64_t h = tok_hash_bytes(p, n);
    size_t mask = c->n_slots - 1, j = h & mask;
    for (; c->slots[j]; j = (j + 1) & mask) {
        size_t i = c->slots[j] - 1;
        if (c->hash[i] == h && c->len[i] == n && !memcmp(c->arena + c->off[i], p, n)) {
            c->count[i] += count;
            return 1;
        }
    }
    if (c->n >= UINT32_MAX - 1) return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        uint64_t *off = realloc(c->off, cap * sizeof *off);
        if (off) c->off = off;
        uint32_t *len = realloc(c->len, cap * sizeof *len);
        if (len) c->len = len;
        uint64_t *cnt = realloc(c->count, cap * sizeof *cnt);
        if (cnt) c->count = cnt;
        uint64_t *hs = realloc(c->hash, cap * sizeof *hs);
        if (hs) c->hash = hs;
        if (!off || !len || !cnt || !hs) return 0;
        c->cap = cap;
    }
    if (c->arena_len + n > c->arena_cap) {
        size_t cap = c->arena_cap ? c->arena_cap : 65536;
        while (cap < c->arena_len + n) cap *= 2;
        uint8_t *a = realloc(c->arena, cap);
        if (!a) return 0;
        c->arena = a;
        c->arena_cap = cap;
    }
    memcpy(c->arena + c->arena_len, p, n);
    c->off[c->n] = c->arena_len;
    c->len[c->n] = (uint32_t)n;
    c->count[c->n] = count;
    c->hash[c->n] = h;
    c->arena_len += n;
    c->slots[j] = (uint32_t)++c->n;
    return 1;
}

static int on_count_piece(void *ctx, const uint8_t *p, size_t n) {
    piece_counter *c = ctx;
    if (!counter_add(c, p, n, 1)) {
        c->oom = 1;
        return 1;
    }
    return 0;
}

struct cllm_bpe_trainer {
    cllm_bpe_train_params p;
    cllm_pretok *pretok;
    const char *regex; /* borrowed: built-in pattern or p.regex */
    piece_counter pieces;
};

cllm_bpe_train_params cllm_bpe_train_default_params(void) {
    static const char *const specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    cllm_bpe_train_params p = {0};
    p.vocab_size = 32768;
    p.pretok = CLLM_PRETOK_CL100K;
    p.specials = specials;
    p.n_specials = 3;
    p.min_pair_count = 2;
    p.n_threads = 0;
    p.progress = 0;
    return p;
}

cllm_status cllm_bpe_trainer_create(cllm_bpe_trainer **out, const cllm_bpe_train_params *p,
                                    cllm_error *err) {
    *out = NULL;
    if (p->vocab_size < 256 + p->n_specials || p->vocab_size > (1u << 30))
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "vocab size %u must be at least 256 + %zu specials and at most 2^30",
                              p->vocab_size, p->n_specials);
    if ((unsigned)p->pretok >= CLLM_PRETOK_COUNT || (p->pretok == CLLM_PRETOK_CUSTOM && !p->regex))
        return cllm_error_set(err, CLLM_ERR_ARG, "training needs a valid split pattern");
    for (size_t i = 0; i < p->n_specials; i++) {
        if (!p->specials[i] || !p->specials[i][0])
            return cllm_error_set(err, CLLM_ERR_ARG, "special token %zu is empty", i);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(p->specials[i], p->specials[j]))
                return cllm_error_set(err, CLLM_ERR_ARG, "special token '%s' given twice", p->specials[i]);
    }
    cllm_bpe_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    tr->p = *p;
    if (tr->p.min_pair_count < 1) tr->p.min_pair_count = 1;
    tr->regex = p->pretok == CLLM_PRETOK_CUSTOM ? p->regex : cllm_pretok_pattern(p->pretok);
    cllm_status st = cllm_pretok_create(&tr->pretok, tr->regex, err);
    if (st != CLLM_OK) {
        free(tr);
        return st;
    }
    *out = tr;
    return CLLM_OK;
}

void cllm_bpe_trainer_destroy(cllm_bpe_trainer *tr) {
    if (!tr) return;
    cllm_pretok_destroy(tr->pretok);
    counter_free(&tr->pieces);
    free(tr);
}

uint64_t cllm_bpe_trainer_n_unique(const cllm_bpe_trainer *tr) { return tr->pieces.n; }

#define COUNT_CHUNK (1u << 20) /* bytes per counting task */

cllm_status cllm_bpe_trainer_add(cllm_bpe_trainer *tr, const void *text_v, size_t len,
                                 cllm_error *err) {
    const uint8_t *text = text_v;
    int nt = tr->p.n_threads > 0 ? tr->p.n_threads : omp_get_max_threads();
    int splittable = tr->p.pretok >= CLLM_PRETOK_GPT2 && tr->p.pretok <= CLLM_PRETOK_O200K;
    if (nt == 1 || !splittable || len < 2 * COUNT_CHUNK) {
        cllm_status st = cllm_pretok_split(tr->pretok, text, len, 0, len, on_count_piece, &tr->pieces, err);
        if (st == CLLM_OK && tr->pieces.oom)
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory counting pre-tokens (%zu distinct)",
                                tr->pieces.n);
        return st;
    }
    /* Chunks at safe boundaries; each thread counts into its own map. */
    size_t n_chunks = 0, cap = len / COUNT_CHUNK + 2;
    size_t *bounds = malloc((cap + 1) * sizeof *bounds);
    piece_counter *local = calloc((size_t)nt, sizeof *local);
    cllm_status *sts = calloc((size_t)nt, sizeof *sts);
    cllm_error *errs = calloc((size_t)nt, sizeof *errs);
    cllm_status st = CLLM_OK;
    if (!bounds || !local || !sts || !errs) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
        goto done;
    }
    bounds[0] = 0;
    for (size_t b = 0; b < len;) {
        size_t e = len - b > 2 * COUNT_CHUNK ? cllm_pretok_safe_split(text, len, b + COUNT_CHUNK) : len;
        if (n_chunks + 1 >= cap) e = len;
        bounds[++n_chunks] = e;
        b = e;
    }
#pragma omp parallel num_threads(nt)
    {
        int tid = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < n_chunks; i++) {
            if (sts[tid] != CLLM_OK || local[tid].oom) continue;
            sts[tid] = cllm_pretok_split(tr->pretok, text, len, bounds[i], bounds[i + 1],
                                         on_count_piece, &local[tid], &errs[tid]);
        }
    }
    for (int k = 0; k < nt && st == CLLM_OK; k++) {
        if (sts[k] != CLLM_OK) {
            st = sts[k];
            *err = errs[k];
        } else if (local[k].oom) {
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory counting pre-tokens");
        }
        for (size_t i = 0; i < local[k].n && st == CLLM_OK; i++)
            if (!counter_add(&tr->pieces, local[k].arena + local[k].off[i], local[k].len[i], local[k].count[i]))
                st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory merging pre-token counts");
    }
done:
    for (int k = 0; local && k < nt; k++) counter_free(&local[k]);
    free(bounds);
    free(local);
    free(sts);
    free(errs);
    return st;
}

/* ---- merging ------------------------------------------------------------------ */

typedef struct {
    uint32_t *w;  /* [n] word indices that may contain the pair (may repeat / be stale) */
    uint32_t n, cap;
} word_list;

typedef struct {
    /* vocabulary under construction */
    uint8_t *blob;     /* token bytes */
    size_t blob_len, blob_cap;
    uint64_t *tok_off; /* [n_tok] */
    uint32_t *tok_len; /* [n_tok] */
    uint32_t n_tok, tok_cap;
    uint32_t *tok_slots; /* bytes -> id + 1 */
    size_t n_tok_slots;
    /* words: distinct pre-tokens as symbol sequences */
    uint32_t *sym;     /* [total symbols] */
    uint64_t *w_off;   /* [n_words] */
    uint32_t *w_len;   /* [n_words] current length */
    uint64_t *w_count; /* [n_words] */
    uint32_t *w_stamp; /* [n_words] last merge that visited the word */
    size_t n_words;
    /* pairs */
    uint64_t *p_key;   /* [n_pairs] left << 32 | right */
    int64_t *p_count;  /* [n_pairs] */
    word_list *p_words;/* [n_pairs] */
    uint32_t *p_stamp; /* [n_pairs] last merge that touched the pair */
    int64_t *p_before; /* [n_pairs] count before that merge */
    size_t n_pairs, pair_cap;
    uint32_t *p_slots; /* key -> pair index + 1 */
    size_t n_p_slots;
    /* heap of (count, pair) */
    struct heap_item { int64_t count; uint32_t pair; } *heap;
    size_t heap_n, heap_cap;
    uint32_t *touched; /* [n_touched] pairs touched in this merge */
    size_t n_touched, touched_cap;
    int oom;
} bpe_state;

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *n = realloc(*p, c * elem);
    if (!n) return 0;
    *p = n;
    *cap = c;
    return 1;
}

static uint32_t tok_find(const bpe_state *s, const uint8_t *p, size_t n, uint64_t h) {
    size_t mask = s->n_tok_slots - 1;
    for (size_t j = h & mask; s->tok_slots[j]; j = (j + 1) & mask) {
        uint32_t id = s->tok_slots[j] - 1;
        if (s->tok_len[id] == n && !memcmp(s->blob + s->tok_off[id], p, n)) return id;
    }
    return TOK_NO_ID;
}

static int tok_rehash(bpe_state *s, size_t ns) {
    uint32_t *sl = calloc(ns, sizeof *sl);
    if (!sl) return 0;
    for (uint32_t id = 0; id < s->n_tok; id++) {
        size_t j = tok_hash_bytes(s->blob + s->tok_off[id], s->tok_len[id]) & (ns - 1);
        while (sl[j]) j = (j + 1) & (ns - 1);
        sl[j] = id + 1;
    }
    free(s->tok_slots);
    s->tok_slots = sl;
    s->n_tok_slots = ns;
    return 1;
}

/* Appends a token with bytes a ++ b; returns its id or TOK_NO_ID on OOM. */
static uint32_t tok_append(bpe_state *s, const uint8_t *a, size_t na, const uint8_t *b, size_t nb) {
    size_t tc = s->tok_cap, bc = s->blob_cap;
    if (!grow((void **)&s->tok_off, &tc, s->n_tok + 1, sizeof *s->tok_off)) return TOK_NO_ID;
    tc = s->tok_cap;
    if (!grow((void **)&s->tok_len, &tc, s->n_tok + 1, sizeof *s->tok_len)) return TOK_NO_ID;
    s->tok_cap = (uint32_t)tc;
    if (!grow((void **)&s->blob, &bc, s->blob_len + na + nb, 1)) return TOK_NO_ID;
    s->blob_cap = bc;
    memcpy(s->blob + s->blob_len, a, na);
    if (nb) memcpy(s->blob + s->blob_len + na, b, nb);
    uint32_t id = s->n_tok++;
    s->tok_off[id] = s->blob_len;
    s->tok_len[id] = (uint32_t)(na + nb);
    s->blob_len += na + nb;
    if (2 * s->n_tok > s->n_tok_slots) return tok_rehash(s, s->n_tok_slots * 2) ? id : TOK_NO_ID;
    size_t mask = s->n_tok_slots - 1;
    size_t j = tok_hash_bytes(s->blob + s->tok_off[id], s->tok_len[id]) & mask;
    while (s->tok_slots[j]) j = (j + 1) & mask;
    s->tok_slots[j] = id + 1;
    return id;
}

/* Index of pair (a,b), created with count 0 if new; UINT32_MAX on OOM. */
static uint32_t pair_index(bpe_state *s, uint32_t a, uint32_t b) {
    uint64_t key = (uint64_t)a << 32 | b;
    if (2 * (s->n_pairs + 1) > s->n_p_slots) {
        size_t ns = s->n_p_slots ? s->n_p_slots * 2 : 4096;
        uint32_t *sl = calloc(ns, sizeof *sl);
        if (!sl) return UINT32_MAX;
        for (size_t i = 0; i < s->n_pairs; i++) {
            size_t j = tok_hash_u64(s->p_key[i]) & (ns - 1);
            while (sl[j]) j = (j + 1) & (ns - 1);
            sl[j] = (uint32_t)i + 1;
        }
        free(s->p_slots);
        s->p_slots = sl;
        s->n_p_slots = ns;
    }
    size_t mask = s->n_p_slots - 1, j = tok_hash_u64(key) & mask;
    for (; s->p_slots[j]; j = (j + 1) & mask)
        if (s->p_key[s->p_slots[j] - 1] == key) return s->p_slots[j] - 1;
    if (s->n_pairs >= UINT32_MAX - 2) return UINT32_MAX;
    size_t need = s->n_pairs + 1, c;
    c = s->pair_cap;
    if (!grow((void **)&s->p_key, &c, need, sizeof *s->p_key)) return UINT32_MAX;
    c = s->pair_cap;
    if (!grow((void **)&s->p_count, &c, need, sizeof *s->p_count)) return UINT32_MAX;
    c = s->pair_cap;
    if (!grow((void **)&s->p_words, &c, need, sizeof *s->p_words)) return UINT32_MAX;
    c = s->pair_cap;
    if (!grow((void **)&s->p_stamp, &c, need, sizeof *s->p_stamp)) return UINT32_MAX;
    c = s->pair_cap;
    if (!grow((void **)&s->p_before, &c, need, sizeof *s->p_before)) return UINT32_MAX;
    s->pair_cap = c;
    uint32_t i = (uint32_t)s->n_pairs++;
    s->p_key[i] = key;
    s->p_count[i] = 0;
    s->p_words[i] = (word_list){NULL, 0, 0};
    s->p_stamp[i] = UINT32_MAX;
    s->p_before[i] = 0;
    s->p_slots[j] = i + 1;
    return i;
}

static int list_add(word_list *l, uint32_t w) {
    if (l->n && l->w[l->n - 1] == w) return 1; /* cheap de-duplication */
    if (l->n == l->cap) {
        uint32_t c = l->cap ? l->cap * 2 : 4;
        uint32_t *n = realloc(l->w, (size_t)c * sizeof *n);
        if (!n) return 0;
        l->w = n;
        l->cap = c;
    }
    l->w[l->n++] = w;
    return 1;
}

/* Heap order: larger count first; ties: smaller left bytes, then right bytes. */
static int pair_bytes_cmp(const bpe_state *s, uint32_t pa, uint32_t pb) {
    for (int side = 0; side < 2; side++) {
        uint32_t x = side ? (uint32_t)s->p_key[pa] : (uint32_t)(s->p_key[pa] >> 32);
        uint32_t y = side ? (uint32_t)s->p_key[pb] : (uint32_t)(s->p_key[pb] >> 32);
        if (x == y) continue;
        size_t lx = s->tok_len[x], ly = s->tok_len[y];
        int c = memcmp(s->blob + s->tok_off[x], s->blob + s->tok_off[y], lx < ly ? lx : ly);
        if (c) return c;
        if (lx != ly) return lx < ly ? -1 : 1;
    }
    return 0;
}

static int heap_before(const bpe_state *s, const struct heap_item *a, const struct heap_item *b) {
    if (a->count != b->count) return a->count > b->count;
    return pair_bytes_cmp(s, a->pair, b->pair) < 0;
}

static int heap_push(bpe_state *s, int64_t count, uint32_t pair) {
    if (!grow((void **)&s->heap, &s->heap_cap, s->heap_n + 1, sizeof *s->heap)) return 0;
    struct heap_item e = {count, pair};
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_before(s, &e, &s->heap[parent])) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = e;
    return 1;
}

static struct heap_item heap_pop(bpe_state *s) {
    struct heap_item top = s->heap[0], last = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_before(s, &s->heap[c + 1], &s->heap[c])) c++;
        if (!heap_before(s, &s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return top;
}

/* Adds delta to pair (a,b) during merge number m; records word w for new pairs. */
static void pair_bump(bpe_state *s, uint32_t a, uint32_t b, int64_t delta, uint32_t m, uint32_t w,
                      int add_word) {
    uint32_t i = pair_index(s, a, b);
    if (i == UINT32_MAX) {
        s->oom = 1;
        return;
    }
    if (s->p_stamp[i] != m) {
        s->p_stamp[i] = m;
        s->p_before[i] = s->p_count[i];
        if (!grow((void **)&s->touched, &s->touched_cap, s->n_touched + 1, sizeof *s->touched)) {
            s->oom = 1;
            return;
        }
        s->touched[s->n_touched++] = i;
    }
    s->p_count[i] += delta;
    if (add_word && !list_add(&s->p_words[i], w)) s->oom = 1;
}

static void state_free(bpe_state *s) {
    free(s->blob);
    free(s->tok_off);
    free(s->tok_len);
    free(s->tok_slots);
    free(s->sym);
    free(s->w_off);
    free(s->w_len);
    free(s->w_count);
    free(s->w_stamp);
    for (size_t i = 0; i < s->n_pairs; i++) free(s->p_words[i].w);
    free(s->p_key);
    free(s->p_count);
    free(s->p_words);
    free(s->p_stamp);
    free(s->p_before);
    free(s->p_slots);
    free(s->heap);
    free(s->touched);
}

cllm_status cllm_bpe_trainer_finish(cllm_bpe_trainer *tr, cllm_tokenizer **out, cllm_error *err) {
    *out = NULL;
    bpe_state s;
    memset(&s, 0, sizeof s);
    cllm_status st = CLLM_OK;
    const piece_counter *pc = &tr->pieces;
    uint32_t target = tr->p.vocab_size - (uint32_t)tr->p.n_specials; /* bytes + merges */
    cllm_tokenizer *t = NULL;
#define OOM()                                                                        \
    do {                                                                             \
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory during BPE training"); \
        goto done;                                                                   \
    } while (0)
    if (!tok_rehash(&s, 1024)) OOM();
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        if (tok_append(&s, &c, 1, NULL, 0) == TOK_NO_ID) OOM();
    }
    /* Words: pieces of length >= 2 (single bytes never take part in a pair). */
    size_t n_sym = 0;
    for (size_t i = 0; i < pc->n; i++)
        if (pc->len[i] >= 2) n_sym += pc->len[i], s.n_words++;
    s.sym = malloc((n_sym ? n_sym : 1) * sizeof *s.sym);
    s.w_off = malloc((s.n_words + 1) * sizeof *s.w_off);
    s.w_len = malloc((s.n_words + 1) * sizeof *s.w_len);
    s.w_count = malloc((s.n_words + 1) * sizeof *s.w_count);
    s.w_stamp = malloc((s.n_words + 1) * sizeof *s.w_stamp);
    if (!s.sym || !s.w_off || !s.w_len || !s.w_count || !s.w_stamp) OOM();
    size_t o = 0, w = 0;
    for (size_t i = 0; i < pc->n; i++) {
        if (pc->len[i] < 2) continue;
        s.w_off[w] = o;
        s.w_len[w] = pc->len[i];
        s.w_count[w] = pc->count[i];
        s.w_stamp[w] = UINT32_MAX;
        for (uint32_t k = 0; k < pc->len[i]; k++) s.sym[o++] = pc->arena[pc->off[i] + k];
        w++;
    }
    /* Initial pair counts and word lists (merge number 0 is "setup"). */
    for (size_t wi = 0; wi < s.n_words; wi++) {
        const uint32_t *x = s.sym + s.w_off[wi];
        for (uint32_t k = 0; k + 1 < s.w_len[wi]; k++)
            pair_bump(&s, x[k], x[k + 1], (int64_t)s.w_count[wi], UINT32_MAX - 1, (uint32_t)wi, 1);
        if (s.oom) OOM();
    }
    s.n_touched = 0;
    for (size_t i = 0; i < s.n_pairs; i++)
        if (s.p_count[i] > 0 && !heap_push(&s, s.p_count[i], (uint32_t)i)) OOM();
    cllm_progress prog;
    if (tr->p.progress) cllm_progress_begin(&prog, "bpe merges", (double)(target - 256), "merge");
    uint32_t n_merges = 0, step = 0;
    tok_merge *merges = NULL;
    size_t merges_cap = 0;
    while (s.n_tok < target && s.heap_n) {
        struct heap_item top = heap_pop(&s);
        int64_t cur = s.p_count[top.pair];
        if (cur != top.count) { /* stale entry: re-queue with the current count */
            if (cur > 0 && !heap_push(&s, cur, top.pair)) OOM();
            continue;
        }
        if ((uint64_t)cur < tr->p.min_pair_count) break;
        uint32_t a = (uint32_t)(s.p_key[top.pair] >> 32), b = (uint32_t)s.p_key[top.pair];
        /* The merged token (reusing an existing token with the same bytes). */
        size_t la = s.tok_len[a], lb = s.tok_len[b];
        uint8_t *tmp = malloc(la + lb);
        if (!tmp) OOM();
        memcpy(tmp, s.blob + s.tok_off[a], la);
        memcpy(tmp + la, s.blob + s.tok_off[b], lb);
        uint32_t nid = tok_find(&s, tmp, la + lb, tok_hash_bytes(tmp, la + lb));
        int is_new = nid == TOK_NO_ID;
        if (is_new) nid = tok_append(&s, tmp, la + lb, NULL, 0);
        free(tmp);
        if (nid == TOK_NO_ID) OOM();
        if (is_new) {
            if (!grow((void **)&merges, &merges_cap, n_merges + 1, sizeof *merges)) {
                free(merges);
                OOM();
            }
            merges[n_merges++] = (tok_merge){a, b, nid};
        }
        uint32_t m = step++; /* unique stamp of this step */
        s.n_touched = 0;
        /* pair_bump may grow (move) the p_words array but never appends to
         * this pair's own list, so its element array stays put. */
        const uint32_t *wlist = s.p_words[top.pair].w;
        uint32_t wn = s.p_words[top.pair].n;
        for (uint32_t li = 0; li < wn; li++) {
            uint32_t wi = wlist[li];
            if (s.w_stamp[wi] == m) continue;
            s.w_stamp[wi] = m;
            uint32_t *x = s.sym + s.w_off[wi];
            uint32_t n = s.w_len[wi];
            int found = 0;
            for (uint32_t k = 0; k + 1 < n; k++)
                if (x[k] == a && x[k + 1] == b) {
                    found = 1;
                    break;
                }
            if (!found) continue; /* stale list entry */
            int64_t c = (int64_t)s.w_count[wi];
            for (uint32_t k = 0; k + 1 < n; k++) pair_bump(&s, x[k], x[k + 1], -c, m, wi, 0);
            uint32_t nn = 0;
            for (uint32_t k = 0; k < n; k++) {
                if (k + 1 < n && x[k] == a && x[k + 1] == b) {
                    x[nn++] = nid;
                    k++;
                } else {
                    x[nn++] = x[k];
                }
            }
            s.w_len[wi] = nn;
            for (uint32_t k = 0; k + 1 < nn; k++)
                pair_bump(&s, x[k], x[k + 1], c, m, wi, x[k] == nid || x[k + 1] == nid);
            if (s.oom) {
                free(merges);
                OOM();
            }
        }
        word_list *wl = &s.p_words[top.pair];
        free(wl->w);
        *wl = (word_list){NULL, 0, 0};
        for (size_t k = 0; k < s.n_touched; k++) {
            uint32_t pi = s.touched[k];
            if (s.p_count[pi] > s.p_before[pi] && !heap_push(&s, s.p_count[pi], pi)) {
                free(merges);
                OOM();
            }
        }
        if (tr->p.progress) cllm_progress_update(&prog, (double)(s.n_tok - 256), NULL);
    }
    if (tr->p.progress) cllm_progress_end(&prog, NULL);
    /* Build the tokenizer: bytes, merges in order, then specials. */
    uint32_t V = s.n_tok + (uint32_t)tr->p.n_specials;
    st = cllm_tokenizer_new(&t, V, tr->p.pretok, tr->p.regex, err);
    for (uint32_t id = 0; id < s.n_tok && st == CLLM_OK; id++)
        st = cllm_tokenizer_set_token(t, id, s.blob + s.tok_off[id], s.tok_len[id], CLLM_TOKEN_NORMAL, err);
    for (size_t i = 0; i < tr->p.n_specials && st == CLLM_OK; i++) {
        const char *sp = tr->p.specials[i];
        st = cllm_tokenizer_set_token(t, s.n_tok + (uint32_t)i, sp, strlen(sp), CLLM_TOKEN_SPECIAL, err);
    }
    free(merges);
    if (st == CLLM_OK) st = cllm_tokenizer_finalize(t, CLLM_BPE_RANKS, err);
#undef OOM
done:
    state_free(&s);
    if (st == CLLM_OK) {
        *out = t;
    } else {
        cllm_tokenizer_destroy(t);
    }
    return st;
}
