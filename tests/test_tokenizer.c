/*
 * test_tokenizer.c: the tokenizer library: split patterns, training (ties,
 * determinism, compression on English and Korean), encode/decode round
 * trips on arbitrary bytes, parallel == sequential, special tokens only
 * where allowed, streaming decode, file round trip, and malformed files.
 * Exactness against tiktoken / tokenizers is tests/test_tokenizer_tiktoken.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cllm/core/rng.h"
#include "cllm/formats/gguf.h"
#include "cllm/tokenizer/tokenizer.h"
#include "test.h"

/* ---- helpers ---- */

typedef struct {
    char pieces[64][64];
    size_t lens[64];
    int n;
} piece_list;

static int collect(void *ctx, const uint8_t *p, size_t n) {
    piece_list *l = ctx;
    if (l->n < 64 && n < 64) {
        memcpy(l->pieces[l->n], p, n);
        l->pieces[l->n][n] = '\0';
        l->lens[l->n] = n;
    }
    l->n++;
    return 0;
}

static void check_split(cllm_pretok_kind kind, const char *text, const char *const *expect, int n) {
    cllm_pretok *pt;
    cllm_error err;
    CHECK(cllm_pretok_create(&pt, cllm_pretok_pattern(kind), &err) == CLLM_OK, "%s", err.msg);
    piece_list l = {0};
    size_t len = strlen(text);
    CHECK(cllm_pretok_split(pt, (const uint8_t *)text, len, 0, len, collect, &l, &err) == CLLM_OK, "%s", err.msg);
    CHECK(l.n == n, "%s: %d pieces, expected %d", cllm_pretok_name(kind), l.n, n);
    for (int i = 0; i < n && i < l.n; i++)
        CHECK(!strcmp(l.pieces[i], expect[i]), "%s piece %d: '%s', expected '%s'", cllm_pretok_name(kind), i,
              l.pieces[i], expect[i]);
    cllm_pretok_destroy(pt);
}

static const char *english_words[] = {"the", "model", "learns", "to", "predict", "next", "token", "from",
                                      "text", "and", "data", "training", "is", "fast", "with", "good",
                                      "tokenizer", "language", "people", "write", "many", "words"};
static const char *korean_words[] = {"안녕하세요", "세계", "토크나이저", "한국어", "문장을", "나눕니다",
                                     "모델은", "다음", "토큰을", "예측합니다", "데이터", "학습"};

/* Deterministic text of about n bytes from a word list. */
static char *make_text(const char **words, size_t n_words, size_t n, uint64_t seed) {
    cllm_rng rng;
    cllm_rng_seed(&rng, seed);
    char *s = malloc(n + 64);
    size_t len = 0;
    while (len < n) {
        const char *w = words[cllm_rng_below(&rng, n_words)];
        size_t wl = strlen(w);
        memcpy(s + len, w, wl);
        len += wl;
        uint64_t r = cllm_rng_below(&rng, 12);
        s[len++] = r == 0 ? '\n' : r == 1 ? '.' : ' ';
    }
    s[len] = '\0';
    return s;
}

static cllm_tokenizer *train_on(const char *text, size_t len, uint32_t vocab, cllm_pretok_kind kind) {
    cllm_bpe_train_params p = cllm_bpe_train_default_params();
    p.vocab_size = vocab;
    p.pretok = kind;
    p.n_threads = 2;
    cllm_bpe_trainer *tr;
    cllm_tokenizer *t = NULL;
    cllm_error err;
    CHECK(cllm_bpe_trainer_create(&tr, &p, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_bpe_trainer_add(tr, text, len, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_bpe_trainer_finish(tr, &t, &err) == CLLM_OK, "%s", err.msg);
    cllm_bpe_trainer_destroy(tr);
    return t;
}

static int roundtrips(const cllm_tokenizer *t, const void *x, size_t n, const cllm_special_set *allowed) {
    cllm_tokens toks = {0};
    cllm_error err;
    char *back = NULL;
    size_t blen = 0;
    int ok = cllm_tokenizer_encode(t, x, n, allowed, &toks, &err) == CLLM_OK &&
             cllm_tokenizer_decode(t, toks.ids, toks.n, &back, &blen, &err) == CLLM_OK && blen == n &&
             !memcmp(back, x, n);
    free(back);
    cllm_tokens_free(&toks);
    return ok;
}

/* ---- cases ---- */

static void test_tokenizer_pretok_patterns(void) {
    const char *text = "Hello, world! I'm 12345  ok\n";
    const char *gpt2[] = {"Hello", ",", " world", "!", " I", "'m", " 12345", " ", " ok", "\n"};
    check_split(CLLM_PRETOK_GPT2, text, gpt2, 10);
    const char *cl100k[] = {"Hello", ",", " world", "!", " I", "'m", " ", "123", "45", " ", " ok", "\n"};
    check_split(CLLM_PRETOK_CL100K, text, cl100k, 12);
    /* gpt4-digits: cl100k, but every digit alone (here and after letters / "+"). */
    const char *digits[] = {"Hello", ",", " world", "!", " I", "'m", " ", "1", "2", "3", "4", "5", " ", " ok", "\n"};
    check_split(CLLM_PRETOK_CL100K_DIGITS, text, digits, 15);
    const char *sum[] = {"What", " is", " ", "4", "7", " +", " ", "3", "8", "?", " x", "9"};
    check_split(CLLM_PRETOK_CL100K_DIGITS, "What is 47 + 38? x9", sum, 12);
    /* o200k splits camel case and keeps contractions on the word. */
    const char *o200k[] = {"Hello", "World", " I'M", " ok"};
    check_split(CLLM_PRETOK_O200K, "HelloWorld I'M ok", o200k, 4);
    const char *none[] = {"a b c"};
    check_split(CLLM_PRETOK_NONE, "a b c", none, 1);
    cllm_pretok_kind k;
    cllm_error err;
    CHECK(cllm_pretok_parse("gpt4", &k, &err) == CLLM_OK && k == CLLM_PRETOK_CL100K, "gpt4 alias");
    CHECK(cllm_pretok_parse("gpt4-digits", &k, &err) == CLLM_OK && k == CLLM_PRETOK_CL100K_DIGITS, "gpt4-digits");
    CHECK(!strcmp(cllm_pretok_name(CLLM_PRETOK_CL100K_DIGITS), "gpt4-digits"), "gpt4-digits name");
    CHECK(cllm_pretok_parse("gpt5", &k, &err) != CLLM_OK && strstr(err.msg, "gpt5"), "unknown name rejected");
    cllm_pretok *pt;
    CHECK(cllm_pretok_create(&pt, "(unclosed", &err) == CLLM_ERR_FORMAT, "bad regex rejected");
}

static void test_tokenizer_pretok_invalid_utf8_tiles_input(void) {
    /* Invalid sequences never match; they come out as their own pieces and
     * all pieces together are exactly the input. */
    const uint8_t text[] = {'a', 'b', 0xFF, ' ', 'c', 0xED, 0xA0, 0x80, 'd', 0x00, 'e', 0xC0, 0x80, 0xE2, 0x82};
    cllm_pretok *pt;
    cllm_error err;
    CHECK(cllm_pretok_create(&pt, cllm_pretok_pattern(CLLM_PRETOK_CL100K), &err) == CLLM_OK, "%s", err.msg);
    piece_list l = {0};
    CHECK(cllm_pretok_split(pt, text, sizeof text, 0, sizeof text, collect, &l, &err) == CLLM_OK, "%s", err.msg);
    size_t total = 0;
    uint8_t joined[64];
    for (int i = 0; i < l.n; i++) {
        size_t n = l.lens[i];
        memcpy(joined + total, l.pieces[i], n);
        total += n;
    }
    CHECK(total == sizeof text && !memcmp(joined, text, total), "pieces tile the input (%zu of %zu bytes)", total,
          sizeof text);
    cllm_pretok_destroy(pt);
}

static void test_tokenizer_train_tie_break_and_determinism(void) {
    /* "ab" and " cd" repeated: pairs (a,b), (' ',c), (c,d) all occur 50
     * times; the tie goes to the lexicographically smallest bytes: " c". */
    char text[251];
    for (int i = 0; i < 50; i++) memcpy(text + 5 * i, "ab cd", 5);
    text[250] = '\0';
    cllm_tokenizer *t = train_on(text, 250, 256 + 1 + 3, CLLM_PRETOK_GPT2);
    CHECK(t && cllm_tokenizer_n_vocab(t) == 260, "vocab 260");
    const uint8_t *b;
    size_t n;
    cllm_error err;
    CHECK(t && cllm_tokenizer_token_bytes(t, 256, &b, &n, &err) == CLLM_OK && n == 2 && !memcmp(b, " c", 2),
          "first merge is ' c' (tie broken by bytes)");
    CHECK(t && cllm_tokenizer_special_id(t, "<|endoftext|>") == 257 && cllm_tokenizer_special_id(t, "<|im_end|>") == 259,
          "specials appended after merges");
    cllm_tokenizer *t2 = train_on(text, 250, 260, CLLM_PRETOK_GPT2);
    CHECK(t && t2 && cllm_tokenizer_hash(t) == cllm_tokenizer_hash(t2), "training is deterministic");
    cllm_tokenizer_destroy(t);
    cllm_tokenizer_destroy(t2);
    /* Most frequent pair first: "aa" dominates. */
    const char *t3text = "aaaa aaaa aaaa xy";
    cllm_tokenizer *t3 = train_on(t3text, strlen(t3text), 256 + 2 + 3, CLLM_PRETOK_GPT2);
    CHECK(t3 && cllm_tokenizer_token_bytes(t3, 256, &b, &n, &err) == CLLM_OK && n == 2 && !memcmp(b, "aa", 2),
          "first merge 'aa'");
    CHECK(t3 && cllm_tokenizer_token_bytes(t3, 257, &b, &n, &err) == CLLM_OK && n == 4 && !memcmp(b, "aaaa", 4),
          "second merge 'aaaa' (pair counts updated after the first merge)");
    cllm_tokenizer_destroy(t3);
}

/* Many distinct pairs and thousands of merges: the pair tables grow (and
 * move) while merges run; the result must not depend on the thread count. */
static void test_tokenizer_train_many_merges_thread_independent(void) {
    cllm_rng rng;
    cllm_rng_seed(&rng, 11);
    size_t n = 600000, len = 0;
    char *text = malloc(n + 16);
    while (len < n) {
        size_t wl = 1 + cllm_rng_below(&rng, 9);
        for (size_t i = 0; i < wl; i++) text[len++] = (char)('a' + cllm_rng_below(&rng, 26));
        text[len++] = cllm_rng_below(&rng, 10) ? ' ' : '\n';
    }
    cllm_bpe_train_params p = cllm_bpe_train_default_params();
    p.vocab_size = 6000;
    p.pretok = CLLM_PRETOK_GPT2;
    uint64_t hashes[2] = {0, 1};
    for (int k = 0; k < 2; k++) {
        p.n_threads = k + 1;
        cllm_bpe_trainer *tr;
        cllm_tokenizer *t = NULL;
        cllm_error err;
        CHECK(cllm_bpe_trainer_create(&tr, &p, &err) == CLLM_OK, "%s", err.msg);
        CHECK(cllm_bpe_trainer_add(tr, text, len, &err) == CLLM_OK, "%s", err.msg);
        CHECK(cllm_bpe_trainer_finish(tr, &t, &err) == CLLM_OK, "%s", err.msg);
        cllm_bpe_trainer_destroy(tr);
        if (!t) continue;
        CHECK(cllm_tokenizer_n_vocab(t) == 6000, "vocab %u", cllm_tokenizer_n_vocab(t));
        CHECK(roundtrips(t, text, len, NULL), "round trip");
        hashes[k] = cllm_tokenizer_hash(t);
        cllm_tokenizer_destroy(t);
    }
    CHECK(hashes[0] == hashes[1], "1 and 2 counting threads give the same vocabulary");
    free(text);
}

static void test_tokenizer_train_compresses_english_and_korean(void) {
    char *en = make_text(english_words, sizeof english_words / sizeof *english_words, 200000, 1);
    char *ko = make_text(korean_words, sizeof korean_words / sizeof *korean_words, 200000, 2);
    size_t le = strlen(en), lk = strlen(ko);
    char *both = malloc(le + lk + 1);
    memcpy(both, en, le);
    memcpy(both + le, ko, lk + 1);
    cllm_tokenizer *t = train_on(both, le + lk, 1024, CLLM_PRETOK_CL100K);
    char *en2 = make_text(english_words, sizeof english_words / sizeof *english_words, 20000, 3);
    char *ko2 = make_text(korean_words, sizeof korean_words / sizeof *korean_words, 20000, 4);
    cllm_tokens te = {0}, tk = {0};
    cllm_error err;
    CHECK(t && cllm_tokenizer_encode(t, en2, strlen(en2), NULL, &te, &err) == CLLM_OK, "encode en");
    CHECK(t && cllm_tokenizer_encode(t, ko2, strlen(ko2), NULL, &tk, &err) == CLLM_OK, "encode ko");
    double bpt_en = te.n ? (double)strlen(en2) / (double)te.n : 0, bpt_ko = tk.n ? (double)strlen(ko2) / (double)tk.n : 0;
    fprintf(stderr, "  vocab 1024: English %.2f bytes/token, Korean %.2f bytes/token (held-out samples)\n", bpt_en,
            bpt_ko);
    /* Every word of these small vocabularies fits in 1024 tokens, so each
     * word (+ its leading space) becomes about one token: English words
     * average ~5.5 bytes, Korean words ~10 bytes (3 bytes per syllable). */
    CHECK(bpt_en > 3.5, "English compresses: %.2f bytes/token", bpt_en);
    CHECK(bpt_ko > 6.0, "Korean compresses: %.2f bytes/token", bpt_ko);
    CHECK(t && roundtrips(t, en2, strlen(en2), NULL) && roundtrips(t, ko2, strlen(ko2), NULL), "round trip");
    cllm_tokens_free(&te);
    cllm_tokens_free(&tk);
    cllm_tokenizer_destroy(t);
    free(en);
    free(ko);
    free(both);
    free(en2);
    free(ko2);
}

static void test_tokenizer_roundtrip_any_bytes(void) {
    char *en = make_text(english_words, sizeof english_words / sizeof *english_words, 30000, 5);
    cllm_rng rng;
    cllm_rng_seed(&rng, 42);
    for (int k = CLLM_PRETOK_NONE; k <= CLLM_PRETOK_O200K; k++) {
        cllm_tokenizer *t = train_on(en, strlen(en), 600, (cllm_pretok_kind)k);
        if (!t) continue;
        static const uint8_t nasty[][6] = {{0x00, 'a', 0x00, ' ', 0x00, 0x00}, {0xED, 0xA0, 0x80, 0xED, 0xBF, 0xBF},
                                           {0xC0, 0x80, 0xF5, 0xFF, 0xFE, ' '}, {0xF0, 0x9F, 0x98, ' ', 0x80, 0x80},
                                           {'\r', '\n', 0xE2, 0x80, 0xA8, '\n'}};
        for (size_t i = 0; i < sizeof nasty / sizeof nasty[0]; i++)
            CHECK(roundtrips(t, nasty[i], 6, NULL), "%s: nasty input %zu round-trips", cllm_pretok_name(k), i);
        int bad = 0;
        for (int trial = 0; trial < 200; trial++) {
            uint8_t buf[300];
            size_t n = cllm_rng_below(&rng, sizeof buf);
            for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)cllm_rng_below(&rng, 256);
            bad += !roundtrips(t, buf, n, NULL);
        }
        CHECK(bad == 0, "%s: %d of 200 random byte strings failed to round-trip", cllm_pretok_name(k), bad);
        CHECK(roundtrips(t, "", 0, NULL), "empty input");
        /* A long single piece takes the O(n log n) merge path. */
        char *spaces = malloc(5000);
        memset(spaces, ' ', 5000);
        CHECK(roundtrips(t, spaces, 5000, NULL), "%s: 5000 spaces", cllm_pretok_name(k));
        free(spaces);
        cllm_tokenizer_destroy(t);
    }
    free(en);
}

static void test_tokenizer_parallel_equals_sequential(void) {
    char *en = make_text(english_words, sizeof english_words / sizeof *english_words, 1500000, 6);
    size_t n = strlen(en);
    /* Sprinkle specials and odd bytes so segments and safe splits interact. */
    memcpy(en + 700000, "<|endoftext|>", 13);
    en[900001] = (char)0xFF;
    cllm_tokenizer *t = train_on(en, 200000, 700, CLLM_PRETOK_CL100K);
    cllm_special_set all = {1, NULL, 0};
    for (int s = 0; s < 2 && t; s++) {
        cllm_tokens a = {0}, b = {0}, c = {0};
        cllm_error err;
        const cllm_special_set *al = s ? &all : NULL;
        CHECK(cllm_tokenizer_encode(t, en, n, al, &a, &err) == CLLM_OK, "%s", err.msg);
        CHECK(cllm_tokenizer_encode_parallel(t, en, n, al, 2, &b, &err) == CLLM_OK, "%s", err.msg);
        CHECK(cllm_tokenizer_encode_parallel(t, en, n, al, 3, &c, &err) == CLLM_OK, "%s", err.msg);
        CHECK(a.n == b.n && !memcmp(a.ids, b.ids, a.n * 4), "2 threads == 1 thread (%zu vs %zu)", b.n, a.n);
        CHECK(a.n == c.n && !memcmp(a.ids, c.ids, a.n * 4), "3 threads == 1 thread (%zu vs %zu)", c.n, a.n);
        cllm_tokens_free(&a);
        cllm_tokens_free(&b);
        cllm_tokens_free(&c);
    }
    cllm_tokenizer_destroy(t);
    free(en);
}

static int count_id(const cllm_tokens *t, uint32_t id) {
    int c = 0;
    for (size_t i = 0; i < t->n; i++) c += t->ids[i] == id;
    return c;
}

static void test_tokenizer_specials_only_when_allowed(void) {
    char *en = make_text(english_words, sizeof english_words / sizeof *english_words, 20000, 7);
    cllm_tokenizer *t = train_on(en, strlen(en), 400, CLLM_PRETOK_CL100K);
    if (!t) return;
    const char *text = "hi<|endoftext|>there<|im_start|>user<|im_end|>";
    uint32_t eot = (uint32_t)cllm_tokenizer_eot_id(t), ims = (uint32_t)cllm_tokenizer_special_id(t, "<|im_start|>");
    cllm_tokens a = {0}, b = {0}, c = {0};
    cllm_error err;
    CHECK(cllm_tokenizer_encode(t, text, strlen(text), NULL, &a, &err) == CLLM_OK, "default");
    CHECK(count_id(&a, eot) == 0 && count_id(&a, ims) == 0, "user text never becomes control tokens");
    cllm_special_set all = {1, NULL, 0};
    CHECK(cllm_tokenizer_encode(t, text, strlen(text), &all, &b, &err) == CLLM_OK, "all");
    CHECK(count_id(&b, eot) == 1 && count_id(&b, ims) == 1 && b.n < a.n, "allowed specials recognised");
    cllm_special_set some = {0, &ims, 1};
    CHECK(cllm_tokenizer_encode(t, text, strlen(text), &some, &c, &err) == CLLM_OK, "some");
    CHECK(count_id(&c, eot) == 0 && count_id(&c, ims) == 1, "only the listed special is recognised");
    CHECK(roundtrips(t, text, strlen(text), &all) && roundtrips(t, text, strlen(text), NULL), "round trips");
    cllm_tokens_free(&a);
    cllm_tokens_free(&b);
    cllm_tokens_free(&c);
    cllm_tokenizer_destroy(t);
    free(en);
}

static void test_tokenizer_decode_stream_whole_chars(void) {
    cllm_utf8_stream st = {0};
    char out[64];
    const uint8_t han[] = {0xED, 0x95, 0x9C}; /* U+D55C */
    size_t o = 0;
    for (int i = 0; i < 3; i++) {
        size_t got = cllm_utf8_stream_feed(&st, han + i, 1, out + o);
        CHECK(i < 2 ? got == 0 : got == 3, "byte %d: emitted %zu", i, got);
        o += got;
    }
    CHECK(o == 3 && !memcmp(out, han, 3), "whole character emitted once complete");
    /* A lone surrogate (ED A0 80) is three maximal invalid subparts. */
    const uint8_t sur[] = {0xED, 0xA0, 0x80, 'x'};
    o = cllm_utf8_stream_feed(&st, sur, 4, out);
    CHECK(o == 10 && !memcmp(out, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDx", 10), "surrogate -> 3 x U+FFFD then x");
    const uint8_t dangling[] = {0xF0, 0x9F};
    o = cllm_utf8_stream_feed(&st, dangling, 2, out);
    CHECK(o == 0, "incomplete prefix withheld");
    o = cllm_utf8_stream_flush(&st, out);
    CHECK(o == 3 && !memcmp(out, "\xEF\xBF\xBD", 3) && st.n_pending == 0, "flush ends with one U+FFFD");
}

static void test_tokenizer_decode_rejects_bad_ids(void) {
    char *en = make_text(english_words, sizeof english_words / sizeof *english_words, 5000, 8);
    cllm_tokenizer *t = train_on(en, strlen(en), 300, CLLM_PRETOK_GPT2);
    if (!t) return;
    uint32_t V = cllm_tokenizer_n_vocab(t);
    uint32_t ids[3] = {1, V, 2};
    char *out = (char *)1;
    size_t n;
    cllm_error err;
    CHECK(cllm_tokenizer_decode(t, ids, 3, &out, &n, &err) == CLLM_ERR_ARG && out == NULL, "id == V rejected");
    CHECK(strstr(err.msg, "position 1") != NULL, "error names the position: %s", err.msg);
    ids[1] = UINT32_MAX;
    CHECK(cllm_tokenizer_decode(t, ids, 3, &out, &n, &err) == CLLM_ERR_ARG, "huge id rejected");
    cllm_utf8_stream st = {0};
    char buf[64];
    size_t ol = 0;
    CHECK(cllm_tokenizer_decode_stream(t, &st, V + 5, buf, sizeof buf, &ol, &err) == CLLM_ERR_ARG, "stream too");
    cllm_tokenizer_destroy(t);
    free(en);
}

static void test_tokenizer_save_load_roundtrip(void) {
    char *en = make_text(english_words, sizeof english_words / sizeof *english_words, 30000, 9);
    cllm_tokenizer *t = train_on(en, strlen(en), 500, CLLM_PRETOK_O200K);
    char path[] = "/tmp/cllm_test_tok_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    cllm_error err;
    cllm_tokenizer *u = NULL;
    CHECK(t && cllm_tokenizer_save(t, path, &err) == CLLM_OK, "save: %s", err.msg);
    CHECK(cllm_tokenizer_load(path, &u, &err) == CLLM_OK, "load: %s", err.msg);
    if (t && u) {
        CHECK(cllm_tokenizer_hash(t) == cllm_tokenizer_hash(u), "same fingerprint");
        CHECK(cllm_tokenizer_pretok_kind(u) == CLLM_PRETOK_O200K, "pattern kept");
        cllm_tokens a = {0}, b = {0};
        cllm_tokenizer_encode(t, en, strlen(en), NULL, &a, &err);
        cllm_tokenizer_encode(u, en, strlen(en), NULL, &b, &err);
        CHECK(a.n == b.n && !memcmp(a.ids, b.ids, a.n * 4), "same encoding after reload");
        cllm_tokens_free(&a);
        cllm_tokens_free(&b);
    }
    unlink(path);
    cllm_tokenizer_destroy(t);
    cllm_tokenizer_destroy(u);
    free(en);
}

/* A minimal valid own-format file: 256 bytes, one merge-rule merge. */
static char *valid_file(size_t *len) {
    size_t cap = 16384, n = 0;
    char *s = malloc(cap);
    n += (size_t)sprintf(s + n, "cllm-tokenizer 1\nrule merges\npattern gpt2\nvocab 258\n");
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int b = 0; b < 256; b++)
        n += (size_t)sprintf(s + n, "n %c%c==\n", b64[b >> 2], b64[(b & 3) << 4]);
    n += (size_t)sprintf(s + n, "n YWI=\ns PHxlb3x8Pg==\nmerges 1\n97 98\nend\n"); /* "ab", "<|eo||>" */
    *len = n;
    return s;
}

static void expect_bad(const char *what, const char *data, size_t len) {
    cllm_tokenizer *t = (cllm_tokenizer *)1;
    cllm_error err = {0};
    cllm_status st = cllm_tokenizer_parse(data, len, "bad.tok", &t, &err);
    CHECK(st != CLLM_OK && t == NULL && err.msg[0], "%s: accepted (status %d)", what, (int)st);
    if (st != CLLM_OK) CHECK(strstr(err.msg, "bad.tok") != NULL, "%s: message names the file: %s", what, err.msg);
    if (st == CLLM_OK) cllm_tokenizer_destroy(t);
}

/* Returns a copy of s with the first occurrence of from replaced by to. */
static char *replaced(const char *s, size_t len, const char *from, const char *to, size_t *out_len) {
    const char *p = memmem(s, len, from, strlen(from));
    char *r = malloc(len + strlen(to) + 1);
    size_t pre = p ? (size_t)(p - s) : len;
    memcpy(r, s, pre);
    size_t n = pre;
    if (p) {
        memcpy(r + n, to, strlen(to));
        n += strlen(to);
        memcpy(r + n, p + strlen(from), len - pre - strlen(from));
        n += len - pre - strlen(from);
    }
    *out_len = n;
    return r;
}

static void test_tokenizer_bad_files_rejected(void) {
    size_t len;
    char *good = valid_file(&len);
    cllm_tokenizer *t = NULL;
    cllm_error err;
    CHECK(cllm_tokenizer_parse(good, len, "good.tok", &t, &err) == CLLM_OK, "valid file: %s", err.msg);
    if (t) CHECK(cllm_tokenizer_n_merges(t) == 1 && cllm_tokenizer_special_id(t, "<|eo||>") == 257, "contents");
    cllm_tokenizer_destroy(t);
    expect_bad("empty", "", 0);
    expect_bad("1 byte", "c", 1);
    expect_bad("wrong magic", "gguf-tokenizer 1\n", 17);
    for (size_t cut = 1; cut + 4 < len; cut += len / 7) expect_bad("truncated", good, cut);
    expect_bad("truncated before end", good, len - 4);
    static const struct {
        const char *what, *from, *to;
    } cases[] = {
        {"future version", "cllm-tokenizer 1", "cllm-tokenizer 2"},
        {"unknown rule", "rule merges", "rule magic"},
        {"unknown pattern", "pattern gpt2", "pattern gpt9"},
        {"vocab count 2^32-1", "vocab 258", "vocab 4294967295"},
        {"vocab count overflow", "vocab 258", "vocab 99999999999999999999"},
        {"vocab count larger than file", "vocab 258", "vocab 100000"},
        {"vocab count too small", "vocab 258", "vocab 257"},
        {"bad base64", "n YWI=", "n Y!I="},
        {"empty token", "n YWI=", "n "},
        {"duplicate token", "n YWI=", "n YQ=="},
        {"missing byte token", "n AA==\n", "u\n"},
        {"unknown token kind", "n YWI=", "x YWI="},
        {"merge of unknown id", "97 98", "97 999"},
        {"merge negative id", "97 98", "-1 98"},
        {"merge result not a token", "97 98", "98 97"},
        {"merge names a special", "97 98", "257 98"},
        {"merge count beyond file", "merges 1", "merges 5"},
        {"merges in a ranks file", "rule merges", "rule ranks"},
        {"missing end", "end\n", "fin\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t bl;
        char *b = replaced(good, len, cases[i].from, cases[i].to, &bl);
        expect_bad(cases[i].what, b, bl);
        free(b);
    }
    free(good);
}

static void write_file(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    fputs(s, f);
    fclose(f);
}

static void test_tokenizer_bad_foreign_files_rejected(void) {
    char dir[] = "/tmp/cllm_tok_bad_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char p1[128], p2[128];
    snprintf(p1, sizeof p1, "%s/a", dir);
    snprintf(p2, sizeof p2, "%s/b", dir);
    cllm_tokenizer *t;
    cllm_error err;
    static const char *tiktoken_bad[] = {"", "QQ== x\n", "QQ== -1\n", "QQ==\n", "Q!== 0\n", "QQ== 0\nQQ== 1\n",
                                         "QQ== 0\nQg== 0\n", "QQ== 99999999999\n", " 0\n"};
    for (size_t i = 0; i < sizeof tiktoken_bad / sizeof *tiktoken_bad; i++) {
        write_file(p1, tiktoken_bad[i]);
        t = NULL;
        CHECK(cllm_tokenizer_load_tiktoken(p1, CLLM_PRETOK_CL100K, NULL, NULL, 0, &t, &err) != CLLM_OK && !t,
              "tiktoken case %zu accepted", i);
        cllm_tokenizer_destroy(t);
    }
    static const char *hf_bad[] = {
        "{", "[]", "{\"model\": 3}", "{\"model\": {\"type\": \"Unigram\", \"vocab\": {}, \"merges\": []}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", /* bytes missing */
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\\u2581a\": 0}, \"merges\": []}}", /* not byte-level */
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}, \"merges\": []}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a zz\"]}}",
        "{\"normalizer\": {\"type\": \"NFC\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}",
        "{\"pre_tokenizer\": {\"type\": \"Metaspace\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}",
    };
    for (size_t i = 0; i < sizeof hf_bad / sizeof *hf_bad; i++) {
        write_file(p1, hf_bad[i]);
        t = NULL;
        CHECK(cllm_tokenizer_load_hf(p1, &t, &err) != CLLM_OK && !t, "tokenizer.json case %zu accepted", i);
        cllm_tokenizer_destroy(t);
    }
    /* 10^5 nested arrays: an error, not a stack overflow. */
    char *deep = malloc(200002);
    memset(deep, '[', 100000);
    memset(deep + 100000, ']', 100000);
    deep[200000] = '\0';
    write_file(p1, deep);
    free(deep);
    t = NULL;
    CHECK(cllm_tokenizer_load_hf(p1, &t, &err) != CLLM_OK && !t, "deep nesting rejected");
    write_file(p1, "{\"a\": 0}");
    write_file(p2, "#version: 0.2\na b\n");
    CHECK(cllm_tokenizer_load_gpt2(p1, p2, &t, &err) != CLLM_OK, "gpt2 files without all bytes rejected");
    CHECK(cllm_tokenizer_load_any(dir, CLLM_PRETOK_GPT2, &t, &err) != CLLM_OK, "a directory is rejected");
    CHECK(cllm_tokenizer_load_any("/dev/zero", CLLM_PRETOK_GPT2, &t, &err) != CLLM_OK, "/dev/zero rejected");
    unlink(p1);
    unlink(p2);
    rmdir(dir);
}

/* A few bytes claiming an id near 2^30 used to allocate a 2^30-entry
 * vocabulary (1 GB, up to 28 s) before failing or succeeding: each reader
 * now refuses ids past tok_id_limit (2 x entries + 1024) up front, naming
 * the file. */
static void test_tokenizer_far_ids_rejected_before_allocating(void) {
    char dir[] = "/tmp/cllm_tok_far_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char p1[128], p2[128];
    snprintf(p1, sizeof p1, "%s/a", dir);
    snprintf(p2, sizeof p2, "%s/b", dir);
    cllm_tokenizer *t = NULL;
    cllm_error err;
    write_file(p1, "QQ== 0\nQg== 1073741000\n");
    CHECK(cllm_tokenizer_load_tiktoken(p1, CLLM_PRETOK_CL100K, NULL, NULL, 0, &t, &err) == CLLM_ERR_FORMAT && !t &&
              strstr(err.msg, "far beyond") && strstr(err.msg, p1),
          "tiktoken rank near 2^30: %s", err.msg);
    cllm_special_def special = {"<|x|>", 1073741000u};
    write_file(p1, "QQ== 0\n");
    CHECK(cllm_tokenizer_load_tiktoken(p1, CLLM_PRETOK_CL100K, NULL, &special, 1, &t, &err) == CLLM_ERR_FORMAT &&
              !t && strstr(err.msg, "far beyond"),
          "tiktoken special near 2^30: %s", err.msg);
    write_file(p1, "{\"a\": 0, \"b\": 1073741000}");
    write_file(p2, "#version: 0.2\n");
    CHECK(cllm_tokenizer_load_gpt2(p1, p2, &t, &err) == CLLM_ERR_FORMAT && !t && strstr(err.msg, "far beyond"),
          "encoder.json id near 2^30: %s", err.msg);
    write_file(p1, "{\"added_tokens\": [{\"id\": 1073741000, \"content\": \"<x>\"}],"
                   " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}");
    CHECK(cllm_tokenizer_load_hf(p1, &t, &err) == CLLM_ERR_FORMAT && !t && strstr(err.msg, "far beyond"),
          "tokenizer.json added token near 2^30: %s", err.msg);
    unlink(p1);
    unlink(p2);
    rmdir(dir);
}

/* Errors name the file: a newer cllm tokenizer file is reported as such (it
 * was read as a bad tiktoken file), and a GGUF tokenizer whose keys have the
 * wrong types is reported with the GGUF's path (the getters' messages alone
 * did not name it). */
static void test_tokenizer_errors_name_the_file(void) {
    char dir[] = "/tmp/cllm_tok_name_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char p1[128];
    snprintf(p1, sizeof p1, "%s/tok-v2.cllm", dir);
    cllm_tokenizer *t = NULL;
    cllm_error err;
    write_file(p1, "cllm-tokenizer 2\nrule merges\n");
    CHECK(cllm_tokenizer_load_any(p1, CLLM_PRETOK_GPT2, &t, &err) == CLLM_ERR_FORMAT && !t &&
              strstr(err.msg, "version 2") && strstr(err.msg, p1) && !strstr(err.msg, "tiktoken"),
          "version 2: %s", err.msg);
    snprintf(p1, sizeof p1, "%s/t.gguf", dir);
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    const char *tokens[2] = {"a", "b"}; /* no byte tokens: the vocabulary check deep down knows no file */
    const int32_t types[2] = {1, 1};
    CHECK(w && cllm_gguf_set_str(w, "tokenizer.ggml.model", "gpt2", &err) == CLLM_OK &&
              cllm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", tokens, NULL, 2, &err) == CLLM_OK &&
              cllm_gguf_set_arr(w, "tokenizer.ggml.token_type", CLLM_GGUF_INT32, types, 2, &err) == CLLM_OK &&
              cllm_gguf_writer_write(w, p1, &err) == CLLM_OK,
          "write gguf: %s", err.msg);
    cllm_gguf_writer_destroy(w);
    CHECK(cllm_tokenizer_read_gguf(p1, &t, &err) != CLLM_OK && !t && strstr(err.msg, p1),
          "GGUF tokenizer error names the file: %s", err.msg);
    unlink(p1);
    snprintf(p1, sizeof p1, "%s/tok-v2.cllm", dir);
    unlink(p1);
    rmdir(dir);
}

static void test_tokenizer_gguf_roundtrip(void) {
    char *en = make_text(english_words, sizeof english_words / sizeof *english_words, 30000, 12);
    char dir[] = "/tmp/cllm_tok_gguf_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[128];
    snprintf(path, sizeof path, "%s/t.gguf", dir);
    for (int k = CLLM_PRETOK_NONE; k <= CLLM_PRETOK_O200K; k++) {
        cllm_tokenizer *t = train_on(en, strlen(en), 500, (cllm_pretok_kind)k), *u = NULL;
        cllm_error err;
        if (!t) continue;
        CHECK(cllm_tokenizer_write_gguf(t, path, "{{ messages }}", &err) == CLLM_OK, "write: %s", err.msg);
        CHECK(cllm_tokenizer_load_any(path, CLLM_PRETOK_NONE, &u, &err) == CLLM_OK, "read: %s", err.msg);
        if (u) {
            CHECK(cllm_tokenizer_hash(u) == cllm_tokenizer_hash(t), "%s: same fingerprint", cllm_pretok_name(k));
            CHECK(cllm_tokenizer_n_merges(u) == cllm_tokenizer_n_merges(t), "merges kept");
            CHECK(cllm_tokenizer_eot_id(u) == cllm_tokenizer_eot_id(t), "eot kept");
            cllm_tokens a = {0}, b = {0};
            cllm_tokenizer_encode(t, en, strlen(en), NULL, &a, &err);
            cllm_tokenizer_encode(u, en, strlen(en), NULL, &b, &err);
            CHECK(a.n == b.n && !memcmp(a.ids, b.ids, a.n * 4), "same encoding");
            cllm_tokens_free(&a);
            cllm_tokens_free(&b);
        }
        cllm_tokenizer_destroy(u);
        cllm_tokenizer_destroy(t);
    }
    /* A GGUF whose tokenizer is not byte-level BPE is rejected clearly. */
    write_file(path, "GGUF");
    cllm_tokenizer *t = NULL;
    cllm_error err;
    CHECK(cllm_tokenizer_read_gguf(path, &t, &err) != CLLM_OK && !t, "truncated GGUF rejected");
    unlink(path);
    rmdir(dir);
    free(en);
}

/* The splits of llama.cpp's GGUF pre-tokenizer families, several of them
 * sequences of regexes (each later stage splits each piece of the one
 * before, gaps included). Expected pieces worked out by hand from the
 * regexes of src/llama-vocab.cpp. */
static void test_tokenizer_pretok_llama_families(void) {
    /* llama3 spells contractions [sS]: "'\u017Fx" (long s) is one letter piece; */
    const char *llama3[] = {"a", "'\xc5\xbfx", " I", "'LL", " ", "123", "45"};
    check_split(CLLM_PRETOK_LLAMA3, "a'\xc5\xbfx I'LL 12345", llama3, 7);
    const char *qwen2[] = {"abc", " ", "1", "2", "3", "\n\n"};
    check_split(CLLM_PRETOK_QWEN2, "abc 123\n\n", qwen2, 6);
    /* qwen35 keeps combining marks on the word; qwen2 starts a new piece. */
    const char *qwen35[] = {"e\xcc\x81x", " y"};
    check_split(CLLM_PRETOK_QWEN35, "e\xcc\x81x y", qwen35, 2);
    const char *qwen2m[] = {"e", "\xcc\x81x", " y"};
    check_split(CLLM_PRETOK_QWEN2, "e\xcc\x81x y", qwen2m, 3);
    /* deepseek-llm: newlines, Latin letters, ASCII/full-width punctuation,
     * trailing whitespace, CJK, numbers. */
    const char *dsl[] = {"Hello", ",", " ", "\xe4\xb8\x96\xe7\x95\x8c", "!", "\n", "123", "  "};
    check_split(CLLM_PRETOK_DEEPSEEK_LLM, "Hello, \xe4\xb8\x96\xe7\x95\x8c!\n123  ", dsl, 8);
    const char *dsc[] = {"foo", "(", "1", ",", " ", "2", "3", ")", "\n"};
    check_split(CLLM_PRETOK_DEEPSEEK_CODER, "foo(1, 23)\n", dsc, 9);
    const char *star[] = {"x", "1", "2", " ab", "'s"};
    check_split(CLLM_PRETOK_STARCODER, "x12 ab's", star, 5);
    const char *falcon[] = {"a", "+", "b", " ", "123", "4"};
    check_split(CLLM_PRETOK_FALCON, "a+b 1234", falcon, 6);
    const char *def[] = {"a", ",", " ", "123", "45"};
    check_split(CLLM_PRETOK_LLAMA_DEFAULT, "a, 12345", def, 5);
    /* tekken: a new piece where lower case follows upper case runs, single digits, "/" keeps newlines */
    const char *tekken[] = {" Java", "Script", " i", "Phone", " x", "1", "/\n"};
    check_split(CLLM_PRETOK_TEKKEN, " JavaScript iPhone x1/\n", tekken, 7);
    cllm_pretok_kind k;
    cllm_error err;
    CHECK(cllm_pretok_parse("smollm", &k, &err) == CLLM_OK && k == CLLM_PRETOK_STARCODER, "smollm alias");
    for (int i = CLLM_PRETOK_LLAMA3; i < CLLM_PRETOK_COUNT; i++)
        CHECK(cllm_pretok_parse(cllm_pretok_name((cllm_pretok_kind)i), &k, &err) == CLLM_OK && (int)k == i,
              "name %s parses back", cllm_pretok_name((cllm_pretok_kind)i));
    /* A bad later stage is refused like a bad single regex. */
    cllm_pretok *pt;
    CHECK(cllm_pretok_create(&pt, "a\x1f(b", &err) == CLLM_ERR_FORMAT && strstr(err.msg, "later stage"),
          "bad second stage rejected: %s", err.msg);
}

/* GPT-2's byte-level text of one byte (what llama.cpp's GGUF files store). */
static size_t byte_char(uint8_t b, char *out) {
    uint32_t cp = b;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)) {
        uint32_t n = 0;
        for (uint32_t c = 0; c < b; c++)
            if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174)) n++;
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* A llama.cpp-style GGUF vocabulary: 256 byte tokens, "ab", "abc", a control
 * and a user-defined token, one merge "a b". */
static void write_llama_vocab(const char *path, const char *pre) {
    static char texts[262][12];
    const char *strs[262];
    int32_t types[262];
    for (int b = 0; b < 256; b++) {
        texts[b][byte_char((uint8_t)b, texts[b])] = '\0';
        types[b] = 1;
    }
    strcpy(texts[256], "ab");
    types[256] = 1;
    strcpy(texts[257], "abc");
    types[257] = 1;
    strcpy(texts[258], "<|eot|>");
    types[258] = 3;
    strcpy(texts[259], "<u>");
    types[259] = 4;
    strcpy(texts[260], "bc");
    types[260] = 1;
    strcpy(texts[261], "[PAD261]");
    types[261] = 5;
    for (int i = 0; i < 262; i++) strs[i] = texts[i];
    const char *merges[] = {"a b", "b c"};
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    cllm_error err;
    CHECK(cllm_gguf_set_str(w, "general.architecture", "llama", &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_gguf_set_str(w, "tokenizer.ggml.model", "gpt2", &err) == CLLM_OK, "%s", err.msg);
    if (pre) CHECK(cllm_gguf_set_str(w, "tokenizer.ggml.pre", pre, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", strs, NULL, 262, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_gguf_set_arr(w, "tokenizer.ggml.token_type", CLLM_GGUF_INT32, types, 262, &err) == CLLM_OK, "%s",
          err.msg);
    CHECK(cllm_gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 2, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_gguf_writer_write(w, path, &err) == CLLM_OK, "%s", err.msg);
    cllm_gguf_writer_destroy(w);
}

static int encodes_to(const cllm_tokenizer *t, const char *text, size_t len, const cllm_special_set *allowed,
                      const uint32_t *ids, size_t n) {
    cllm_tokens out = {0};
    cllm_error err;
    int ok = cllm_tokenizer_encode(t, text, len, allowed, &out, &err) == CLLM_OK && out.n == n &&
             !memcmp(out.ids, ids, n * sizeof *ids);
    if (!ok) {
        fprintf(stderr, "  '%.*s' ->", (int)len, text);
        for (size_t i = 0; i < out.n; i++) fprintf(stderr, " %u", out.ids[i]);
        fprintf(stderr, "\n");
    }
    cllm_tokens_free(&out);
    return ok;
}

/* A GGUF vocabulary of llama.cpp's encodes as llama.cpp does: ignore_merges
 * for llama-bpe, user-defined tokens always matched, control tokens where
 * allowed, invalid UTF-8 as U+FFFD; it writes back as it was read; unknown
 * pre names are refused naming key and value. */
static void test_tokenizer_llama_gguf_vocab(void) {
    char dir[] = "/tmp/cllm_tok_llama_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[128], path2[128];
    snprintf(path, sizeof path, "%s/v.gguf", dir);
    snprintf(path2, sizeof path2, "%s/w.gguf", dir);
    cllm_error err;
    cllm_special_set all = {.all = 1};
    /* llama-bpe: "abc" is a token, so the pre-token "abc" is emitted whole
     * although merges alone give "ab" "c" (the first merge wins). */
    write_llama_vocab(path, "llama-bpe");
    cllm_tokenizer *t = NULL, *u = NULL;
    CHECK(cllm_tokenizer_read_gguf(path, &t, &err) == CLLM_OK, "read llama-bpe: %s", err.msg);
    if (t) {
        CHECK(cllm_tokenizer_pretok_kind(t) == CLLM_PRETOK_LLAMA3, "llama-bpe uses the llama3 split");
        CHECK(encodes_to(t, "abc", 3, NULL, (uint32_t[]){257}, 1), "ignore_merges: abc whole");
        CHECK(encodes_to(t, "abcc", 4, NULL, (uint32_t[]){256, 'c', 'c'}, 3), "abcc merges: ab c c");
        /* <u> is user-defined: matched without permission; <|eot|> only when allowed. */
        CHECK(encodes_to(t, "x<u>y", 5, NULL, (uint32_t[]){'x', 259, 'y'}, 3), "user-defined always matched");
        CHECK(encodes_to(t, "<|eot|>", 7, &all, (uint32_t[]){258}, 1), "control matched when allowed");
        CHECK(encodes_to(t, "<|eot|>", 7, NULL, (uint32_t[]){'<', '|', 'e', 'o', 't', '|', '>'}, 7),
              "control as text otherwise");
        /* Invalid UTF-8 becomes U+FFFD (EF BF BD), as llama.cpp reads it. */
        CHECK(encodes_to(t, "\xff", 1, NULL, (uint32_t[]){0xEF, 0xBF, 0xBD}, 3), "0xFF -> U+FFFD");
        CHECK(encodes_to(t, "a\xe4\xb8", 3, NULL, (uint32_t[]){'a', 0xEF, 0xBF, 0xBD, 0xEF, 0xBF, 0xBD}, 7),
              "truncated sequence -> U+FFFD per byte");
        CHECK(encodes_to(t, "\xc0\xaf", 2, NULL, (uint32_t[]){'/'}, 1), "overlong slash read as '/'");
        /* Written back, it reads back the same (llama mode kept). */
        CHECK(cllm_tokenizer_write_gguf(t, path2, NULL, &err) == CLLM_OK, "write: %s", err.msg);
        CHECK(cllm_tokenizer_read_gguf(path2, &u, &err) == CLLM_OK, "read back: %s", err.msg);
        if (u) {
            CHECK(cllm_tokenizer_hash(u) == cllm_tokenizer_hash(t), "same fingerprint after writing back");
            CHECK(encodes_to(u, "x<u>abc", 7, NULL, (uint32_t[]){'x', 259, 257}, 3), "still llama mode");
        }
        cllm_tokenizer_destroy(u);
        u = NULL;
    }
    cllm_tokenizer_destroy(t);
    t = NULL;
    /* gpt-2 (no ignore_merges): "abc" is "ab" "c" by the merges; "bc" is
     * a token but "a b" has the higher priority. */
    write_llama_vocab(path, "gpt-2");
    CHECK(cllm_tokenizer_read_gguf(path, &t, &err) == CLLM_OK, "read gpt-2: %s", err.msg);
    if (t) CHECK(encodes_to(t, "abc", 3, NULL, (uint32_t[]){256, 'c'}, 2), "merges only: ab c");
    cllm_tokenizer_destroy(t);
    t = NULL;
    /* No pre name: llama.cpp's "default" split (punctuation runs alone). */
    write_llama_vocab(path, NULL);
    CHECK(cllm_tokenizer_read_gguf(path, &t, &err) == CLLM_OK, "read without pre: %s", err.msg);
    if (t) CHECK(cllm_tokenizer_pretok_kind(t) == CLLM_PRETOK_LLAMA_DEFAULT, "no pre: llama.cpp default");
    cllm_tokenizer_destroy(t);
    t = NULL;
    write_llama_vocab(path, "bogus-pre");
    CHECK(cllm_tokenizer_read_gguf(path, &t, &err) == CLLM_ERR_FORMAT && !t, "unknown pre refused");
    CHECK(strstr(err.msg, "tokenizer.ggml.pre") && strstr(err.msg, "bogus-pre") && strstr(err.msg, "v.gguf"),
          "error names file, key and value: %s", err.msg);
    unlink(path);
    unlink(path2);
    rmdir(dir);
}

/* A tokenizer.json's Split regex of a known family is named in the GGUF as
 * llama.cpp names it (tokenizer.ggml.pre), so llama.cpp splits the text the
 * same way: Llama 3's (cl100k's) "llama-bpe", Qwen2's (cl100k's with single
 * digits; it was written as llama.cpp's "default", a different split)
 * "qwen2", Mistral Tekken's "tekken"; any other regex "default". */
static void test_tokenizer_hf_split_names_the_family(void) {
    static const struct {
        const char *regex, *pre;
    } cases[] = {
        {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
         "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
         "llama-bpe"},
        {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
         "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
         "qwen2"},
        {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?"
         "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|"
         "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
         "tekken"},
        {"\\p{L}+|\\p{N}+|[^\\p{L}\\p{N}]+", "default"},
    };
    char dir[] = "/tmp/cllm_tok_split_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[128], gpath[128];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    snprintf(gpath, sizeof gpath, "%s/vocab.gguf", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model");
        cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
        cJSON_AddStringToObject(model, "type", "BPE");
        cJSON_AddArrayToObject(model, "merges");
        for (int b = 0; b < 256; b++) {
            char c[4] = {0};
            byte_char((uint8_t)b, c);
            cJSON_AddNumberToObject(vocab, c, b);
        }
        cJSON *pt = cJSON_AddObjectToObject(root, "pre_tokenizer"), *seq = cJSON_AddArrayToObject(pt, "pretokenizers");
        cJSON_AddStringToObject(pt, "type", "Sequence");
        cJSON *split = cJSON_CreateObject(), *bl = cJSON_CreateObject();
        cJSON_AddStringToObject(split, "type", "Split");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", cases[i].regex);
        cJSON_AddStringToObject(split, "behavior", "Isolated");
        cJSON_AddStringToObject(bl, "type", "ByteLevel");
        cJSON_AddFalseToObject(bl, "use_regex");
        cJSON_AddItemToArray(seq, split);
        cJSON_AddItemToArray(seq, bl);
        char *text = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        write_file(path, text ? text : "");
        free(text);
        cllm_tokenizer *t = NULL;
        cllm_gguf *g = NULL;
        cllm_error err;
        char pre[64] = "";
        CHECK(cllm_tokenizer_load_hf(path, &t, &err) == CLLM_OK, "%s: load: %s", cases[i].pre, err.msg);
        if (t && cllm_tokenizer_write_gguf(t, gpath, NULL, &err) == CLLM_OK && cllm_gguf_open(&g, gpath, &err) == CLLM_OK)
            cllm_gguf_get_str_buf(g, "tokenizer.ggml.pre", pre, sizeof pre, &err);
        CHECK(!strcmp(pre, cases[i].pre), "tokenizer.ggml.pre '%s', expected '%s' (%s)", pre, cases[i].pre, err.msg);
        cllm_gguf_close(g);
        cllm_tokenizer_destroy(t);
    }
    unlink(path);
    unlink(gpath);
    rmdir(dir);
}

/* tokenizer.json with model.ignore_merges (Llama 3): a pre-token in the
 * vocabulary is one token; without it the merges decide. */
static void test_tokenizer_hf_ignore_merges(void) {
    char dir[] = "/tmp/cllm_tok_hf_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    for (int ignore = 0; ignore <= 1; ignore++) {
        FILE *f = fopen(path, "w");
        CHECK(f != NULL, "open %s", path);
        if (!f) break;
        fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {", f);
        for (int b = 0; b < 256; b++) {
            char c[4];
            size_t n = byte_char((uint8_t)b, c);
            fputs(b ? ", \"" : "\"", f);
            if (n == 1 && (c[0] == '"' || c[0] == '\\')) fputc('\\', f);
            fwrite(c, 1, n, f);
            fprintf(f, "\": %d", b);
        }
        fprintf(f, ", \"ab\": 256, \"abc\": 257}, \"merges\": [\"a b\"], \"ignore_merges\": %s},"
                   " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}, \"added_tokens\": []}",
                ignore ? "true" : "false");
        fclose(f);
        cllm_tokenizer *t = NULL;
        cllm_error err;
        CHECK(cllm_tokenizer_load_hf(path, &t, &err) == CLLM_OK, "load (ignore_merges %d): %s", ignore, err.msg);
        if (!t) continue;
        if (ignore)
            CHECK(encodes_to(t, "abc", 3, NULL, (uint32_t[]){257}, 1), "ignore_merges: abc whole");
        else
            CHECK(encodes_to(t, "abc", 3, NULL, (uint32_t[]){256, 'c'}, 2), "merges: ab c");
        CHECK(encodes_to(t, "abcc", 4, NULL, (uint32_t[]){256, 'c', 'c'}, 3), "abcc is no token: ab c c");
        cllm_tokenizer_destroy(t);
    }
    unlink(path);
    rmdir(dir);
}

int main(void) {
    TEST_RUN(test_tokenizer_pretok_patterns);
    TEST_RUN(test_tokenizer_pretok_invalid_utf8_tiles_input);
    TEST_RUN(test_tokenizer_train_tie_break_and_determinism);
    TEST_RUN(test_tokenizer_train_many_merges_thread_independent);
    TEST_RUN(test_tokenizer_train_compresses_english_and_korean);
    TEST_RUN(test_tokenizer_roundtrip_any_bytes);
    TEST_RUN(test_tokenizer_parallel_equals_sequential);
    TEST_RUN(test_tokenizer_specials_only_when_allowed);
    TEST_RUN(test_tokenizer_decode_stream_whole_chars);
    TEST_RUN(test_tokenizer_decode_rejects_bad_ids);
    TEST_RUN(test_tokenizer_save_load_roundtrip);
    TEST_RUN(test_tokenizer_bad_files_rejected);
    TEST_RUN(test_tokenizer_bad_foreign_files_rejected);
    TEST_RUN(test_tokenizer_far_ids_rejected_before_allocating);
    TEST_RUN(test_tokenizer_errors_name_the_file);
    TEST_RUN(test_tokenizer_gguf_roundtrip);
    TEST_RUN(test_tokenizer_pretok_llama_families);
    TEST_RUN(test_tokenizer_llama_gguf_vocab);
    TEST_RUN(test_tokenizer_hf_ignore_merges);
    TEST_RUN(test_tokenizer_hf_split_names_the_family);
    return test_finish();
}
