/*
 * partition.c: llama.cpp's cut of a text at the tokens it matches before
 * tokenizing (its tokenizer_st_partition), shared by the SentencePiece
 * encoder (spm.c) and the encoder of llama.cpp's byte-level BPE vocabularies
 * (encode.c).
 *
 * Each matchable token in turn, longest text first, cuts every text fragment
 * left so far at each of its occurrences (left to right, not overlapping).
 * User-defined tokens are always matchable; control (special) tokens only
 * where the caller allows them, as llama.cpp's parse_special.
 *
 * Does not: encode the text fragments.
 */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

static int frag_add(tok_fragments *fs, size_t off, size_t len, uint32_t id) {
    if (fs->n == fs->cap) {
        size_t cap = fs->cap ? fs->cap * 2 : 16;
        tok_fragment *nf = realloc(fs->f, cap * sizeof *nf);
        if (!nf) return 0;
        fs->f = nf;
        fs->cap = cap;
    }
    fs->f[fs->n++] = (tok_fragment){off, len, id};
    return 1;
}

/* The text a matchable token is found by, and whether it is user-defined. */
static const uint8_t *match_text(const cllm_tokenizer *t, uint32_t id, size_t *n, int *user) {
    if (t->spm) {
        *n = t->spm->text_n[id];
        *user = t->spm->type[id] == TOK_TT_USER_DEFINED;
        return t->spm->text + t->spm->text_off[id];
    }
    *n = t->len[id];
    *user = t->user_defined && t->user_defined[id];
    return t->blob + t->off[id];
}

static int may_match(const cllm_special_set *allowed, uint32_t id, int user) {
    if (user) return 1; /* always, as in llama.cpp */
    if (!allowed) return 0;
    if (allowed->all) return 1;
    for (size_t i = 0; i < allowed->n; i++)
        if (allowed->ids[i] == id) return 1;
    return 0;
}

int tok_partition(const cllm_tokenizer *t, const uint32_t *ids, uint32_t n_ids, const uint8_t *text, size_t len,
                  const cllm_special_set *allowed, tok_fragments *fs) {
    tok_fragments next = {0};
    if (len && !frag_add(fs, 0, len, TOK_NO_ID)) return 0;
    for (uint32_t k = 0; k < n_ids; k++) {
        uint32_t id = ids[k];
        size_t pn;
        int user;
        const uint8_t *pat = match_text(t, id, &pn, &user);
        if (!pn || !may_match(allowed, id, user)) continue;
        next.n = 0;
        int hit = 0;
        for (size_t i = 0; i < fs->n; i++) {
            tok_fragment fr = fs->f[i];
            if (fr.id == TOK_NO_ID) {
                size_t pos = fr.off, end = fr.off + fr.len;
                const uint8_t *m;
                while (pos < end && (m = memmem(text + pos, end - pos, pat, pn))) {
                    size_t at = (size_t)(m - text);
                    if ((at > pos && !frag_add(&next, pos, at - pos, TOK_NO_ID)) || !frag_add(&next, at, pn, id)) {
                        free(next.f);
                        return 0;
                    }
                    pos = at + pn;
                    hit = 1;
                }
                if (pos < end && !frag_add(&next, pos, end - pos, TOK_NO_ID)) {
                    free(next.f);
                    return 0;
                }
            } else if (!frag_add(&next, fr.off, fr.len, fr.id)) {
                free(next.f);
                return 0;
            }
        }
        if (hit) { /* swap: the cut list becomes the current one */
            tok_fragments tmp = *fs;
            *fs = next;
            next = tmp;
        }
    }
    free(next.f);
    return 1;
}

static int u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int tok_match_order(const cllm_tokenizer *t, uint32_t *ids, uint32_t n) {
    uint64_t *order = malloc(((size_t)n + 1) * sizeof *order);
    if (!order) return 0;
    for (uint32_t k = 0; k < n; k++) {
        size_t len;
        int user;
        match_text(t, ids[k], &len, &user);
        order[k] = (uint64_t)(UINT32_MAX - (uint32_t)len) << 32 | ids[k]; /* longest first, then by id */
    }
    qsort(order, n, sizeof *order, u64_cmp);
    for (uint32_t k = 0; k < n; k++) ids[k] = (uint32_t)order[k];
    free(order);
    return 1;
}
