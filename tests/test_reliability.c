/*
 * test_reliability.c: RELIABILITY.md rows that no module test covered
 * (docs/RELIABILITY_COVERAGE.md maps every row to its test).
 *
 * - a tokenizer inside a GGUF file (tokenizer.ggml.*): vocab/token_type
 *   length mismatch, merges naming unknown tokens or not "<left> <right>",
 *   SentencePiece vocabularies (whose byte tokens are "<0xNN>") and their
 *   token types, empty special tokens, a tokens array of the wrong type: each
 *   rejected with a message naming the file and the key or entry; a
 *   bos/eos_token_id out of range is ignored (cllm never reads those keys:
 *   its end-of-text token is the special token's text), which is defined
 *   and checked here.
 *
 * Does not repeat the malformed-file table of test_gguf.c or the tokenizer
 * file cases of test_tokenizer.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "cllm/formats/gguf.h"
#include "cllm/tokenizer/tokenizer.h"
#include "test.h"

static char tmpdir[256];

/* A small trained byte-level BPE tokenizer (ranks rule, one special). */
static cllm_tokenizer *small_tokenizer(void) {
    static const char *const specials[] = {"<|endoftext|>"};
    cllm_bpe_train_params p = cllm_bpe_train_default_params();
    p.vocab_size = 256 + 12 + 1;
    p.pretok = CLLM_PRETOK_GPT2;
    p.specials = specials;
    p.n_specials = 1;
    p.n_threads = 1;
    char text[2000];
    size_t n = 0;
    while (n + 24 < sizeof text) n += (size_t)snprintf(text + n, sizeof text - n, "the cat sat on the mat. ");
    cllm_bpe_trainer *tr = NULL;
    cllm_tokenizer *t = NULL;
    cllm_error err;
    CHECK(cllm_bpe_trainer_create(&tr, &p, &err) == CLLM_OK, "%s", err.msg);
    if (tr) CHECK(cllm_bpe_trainer_add(tr, text, n, &err) == CLLM_OK, "%s", err.msg);
    if (tr) CHECK(cllm_bpe_trainer_finish(tr, &t, &err) == CLLM_OK, "%s", err.msg);
    cllm_bpe_trainer_destroy(tr);
    return t;
}

typedef void (*edit_fn)(cllm_gguf_writer *w, uint32_t V);

/* Writes t's GGUF keys, applies edit (setters replace a key), reads it back.
 * Returns the status; *out holds the tokenizer on success. */
static cllm_status write_edit_read(const cllm_tokenizer *t, edit_fn edit, const char *path, cllm_tokenizer **out,
                                   cllm_error *err) {
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    cllm_status st = cllm_gguf_set_str(w, "general.architecture", "tokenizer", err);
    if (st == CLLM_OK) st = cllm_tokenizer_gguf_set(t, w, NULL, err);
    if (st == CLLM_OK && edit) edit(w, cllm_tokenizer_n_vocab(t));
    if (st == CLLM_OK) st = cllm_gguf_writer_write(w, path, err);
    cllm_gguf_writer_destroy(w);
    if (st != CLLM_OK) {
        CHECK(0, "writing %s: %s", path, err->msg);
        return st;
    }
    *out = NULL;
    return cllm_tokenizer_read_gguf(path, out, err);
}

static void types_all(cllm_gguf_writer *w, uint32_t n, uint32_t odd_id, int32_t odd_type) {
    int32_t *ty = malloc(n * sizeof *ty);
    for (uint32_t i = 0; i < n; i++) ty[i] = i == odd_id ? odd_type : 1;
    cllm_error e;
    CHECK(cllm_gguf_set_arr(w, "tokenizer.ggml.token_type", CLLM_GGUF_INT32, ty, n, &e) == CLLM_OK, "%s", e.msg);
    free(ty);
}
static void e_types_short(cllm_gguf_writer *w, uint32_t V) { types_all(w, V - 1, UINT32_MAX, 1); }
/* type 6 is SentencePiece's BYTE token ("<0x0A>"); 2 is UNKNOWN */
static void e_type_byte(cllm_gguf_writer *w, uint32_t V) { types_all(w, V, 65, 6); }
static void e_type_negative(cllm_gguf_writer *w, uint32_t V) { types_all(w, V, 3, -7); }
static void set_merges(cllm_gguf_writer *w, const char *m) {
    cllm_error e;
    CHECK(cllm_gguf_set_str(w, "cllm.tokenizer.rule", "merges", &e) == CLLM_OK, "%s", e.msg);
    CHECK(cllm_gguf_set_arr_str(w, "tokenizer.ggml.merges", &m, NULL, 1, &e) == CLLM_OK, "%s", e.msg);
}
static void e_merge_unknown(cllm_gguf_writer *w, uint32_t V) { (void)V; set_merges(w, "zzqq xy"); }
static void e_merge_no_space(cllm_gguf_writer *w, uint32_t V) { (void)V; set_merges(w, "th"); }
static void e_merge_empty_side(cllm_gguf_writer *w, uint32_t V) { (void)V; set_merges(w, "t "); }
static void e_model_unigram(cllm_gguf_writer *w, uint32_t V) {
    (void)V;
    cllm_error e;
    CHECK(cllm_gguf_set_str(w, "tokenizer.ggml.model", "t5", &e) == CLLM_OK, "%s", e.msg);
}
static void e_tokens_ints(cllm_gguf_writer *w, uint32_t V) {
    int32_t *ids = calloc(V, sizeof *ids);
    cllm_error e;
    CHECK(cllm_gguf_set_arr(w, "tokenizer.ggml.tokens", CLLM_GGUF_INT32, ids, V, &e) == CLLM_OK, "%s", e.msg);
    free(ids);
}
static void e_special_empty(cllm_gguf_writer *w, uint32_t V) {
    /* the last token is the special: give it an empty text */
    const char **s = malloc(V * sizeof *s);
    char(*bufs)[8] = malloc(V * sizeof *bufs);
    for (uint32_t i = 0; i < V; i++) {
        snprintf(bufs[i], sizeof bufs[i], "t%u", i);
        s[i] = bufs[i];
    }
    s[V - 1] = "";
    cllm_error e;
    CHECK(cllm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", s, NULL, V, &e) == CLLM_OK, "%s", e.msg);
    free(bufs);
    free(s);
}
static void e_token_not_byte_level(cllm_gguf_writer *w, uint32_t V) {
    /* U+2581 (SentencePiece's space) is not in the GPT-2 byte alphabet */
    const char **s = malloc(V * sizeof *s);
    char(*bufs)[8] = malloc(V * sizeof *bufs);
    for (uint32_t i = 0; i < V; i++) {
        snprintf(bufs[i], sizeof bufs[i], "%s%u", i == 40 ? "\xE2\x96\x81" : "t", i);
        s[i] = bufs[i];
    }
    cllm_error e;
    CHECK(cllm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", s, NULL, V, &e) == CLLM_OK, "%s", e.msg);
    free(bufs);
    free(s);
}
static void e_eos_out_of_range(cllm_gguf_writer *w, uint32_t V) {
    cllm_error e;
    CHECK(cllm_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", V + 1000000, &e) == CLLM_OK, "%s", e.msg);
    CHECK(cllm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", UINT32_MAX, &e) == CLLM_OK, "%s", e.msg);
}

static void test_reliability_gguf_tokenizer_bad_vocab_rejected(void) {
    cllm_tokenizer *t = small_tokenizer();
    if (!t) return;
    static const struct {
        const char *name;
        edit_fn edit;
        const char *expect;
    } cases[] = {
        {"token_type shorter than tokens", e_types_short, "token_type has 268 entries, tokens has 269"},
        {"SentencePiece byte token type", e_type_byte, "token 65 has unsupported token_type 6"},
        {"negative token type", e_type_negative, "token 3 has unsupported token_type -7"},
        {"merge naming unknown tokens", e_merge_unknown, "merge 0 names an unknown token"},
        {"merge without a space", e_merge_no_space, "merge 0 is not '<left> <right>'"},
        {"merge with an empty side", e_merge_empty_side, "merge 0 is not '<left> <right>'"},
        {"SentencePiece unigram model", e_model_unigram, "tokenizer.ggml.model is 't5'"},
        {"tokens not strings", e_tokens_ints, "tokenizer.ggml.tokens"},
        {"empty special token", e_special_empty, "token 268 is empty"},
        {"token outside the byte alphabet", e_token_not_byte_level, "token 40 is not in the byte-level alphabet"},
    };
    char path[512];
    snprintf(path, sizeof path, "%s/tok.gguf", tmpdir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cllm_tokenizer *u = (cllm_tokenizer *)1;
        cllm_error err = {0};
        cllm_status st = write_edit_read(t, cases[i].edit, path, &u, &err);
        CHECK(st == CLLM_ERR_FORMAT && u == NULL, "%s: status %s (%s)", cases[i].name, cllm_status_name(st), err.msg);
        CHECK(strstr(err.msg, path) != NULL, "%s: message lacks the file: %s", cases[i].name, err.msg);
        CHECK(strstr(err.msg, cases[i].expect) != NULL, "%s: message '%s' lacks '%s'", cases[i].name, err.msg,
              cases[i].expect);
        if (st == CLLM_OK) cllm_tokenizer_destroy(u);
    }
    /* positive control, and out-of-range bos/eos ids: not read, so harmless */
    cllm_error err = {0};
    cllm_tokenizer *u = NULL;
    CHECK(write_edit_read(t, NULL, path, &u, &err) == CLLM_OK, "unedited file: %s", err.msg);
    cllm_tokenizer_destroy(u);
    u = NULL;
    CHECK(write_edit_read(t, e_eos_out_of_range, path, &u, &err) == CLLM_OK, "eos id out of range: %s", err.msg);
    if (u) {
        CHECK(cllm_tokenizer_eot_id(u) == cllm_tokenizer_eot_id(t), "end-of-text still the special (%d)",
              (int)cllm_tokenizer_eot_id(u));
        CHECK(cllm_tokenizer_eot_id(u) >= 0 && (uint32_t)cllm_tokenizer_eot_id(u) < cllm_tokenizer_n_vocab(u),
              "end-of-text id inside the vocabulary");
    }
    cllm_tokenizer_destroy(u);
    unlink(path);
    cllm_tokenizer_destroy(t);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cllm_test_reliability_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    TEST_RUN(test_reliability_gguf_tokenizer_bad_vocab_rejected);
    rmdir(tmpdir);
    return test_finish();
}
