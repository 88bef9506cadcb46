/*
 * test_tokenizer_spm.c: SentencePiece vocabularies in llama.cpp's GGUF
 * layout (tokenizer.ggml.model "llama"). A small vocabulary is written here
 * (scores, 256 byte tokens, <unk> <s> </s>, a user-defined and an unused
 * token) and encoded on the tricky cases: the added leading space, leading,
 * repeated and trailing spaces, newlines, byte fallback for characters
 * outside the vocabulary (accents, emoji, Korean, invalid UTF-8), merge order
 * by score with leftmost ties, control tokens with and without special
 * parsing, user-defined tokens always matched; then decoding, the GGUF round
 * trip, the add_bos / add_space_prefix keys, malformed vocabularies, and
 * the same vocabulary as a SentencePiece .model file (protobuf).
 *
 * Every expected segmentation below was checked against llama.cpp's
 * llama-tokenize on the same vocabulary (SPM_GGUF_OUT=path writes the file,
 * path.model as a SentencePiece model file, and path.flags.gguf with
 * add_bos_token and add_space_prefix false, with
 * llama hyper-parameters so llama-tokenize loads them vocab-only). The large
 * comparison is tests/interop/spm_llama.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cllm/formats/gguf.h"
#include "cllm/tokenizer/tokenizer.h"
#include "test.h"

/* ---- the vocabulary ---- */

enum { ID_UNK = 0, ID_BOS = 1, ID_EOS = 2, ID_BYTE0 = 3, ID_PIECES = 3 + 256 };

typedef struct {
    const char *text;
    float score;
} piece;

/* Normal pieces from id 259 on ("\xe2\x96\x81" is U+2581, the SPM space). */
static const piece pieces[] = {
    {"\xe2\x96\x81", -1},     {"h", -2},  {"e", -2},  {"l", -2},  {"o", -2},   {"w", -2},     {"r", -2},
    {"d", -2},                {"a", -2},  {"b", -2},  {"c", -2},  {"s", -2},   {"<", -2},     {">", -2},
    {"t", -2},                {",", -2},  {"!", -2},  {"\xe2\x96\x81h", -5},  {"he", -6},     {"ll", -4},
    {"llo", -7},              {"\xe2\x96\x81he", -3}, {"\xe2\x96\x81hello", -9}, {"hello", -8},
    {"\xe2\x96\x81w", -5},    {"or", -5}, {"ld", -5}, {"orld", -6}, {"\xe2\x96\x81world", -10},
    {"\xe2\x96\x81\xe2\x96\x81", -3},     {"\xe2\x96\x81\xe2\x96\x81\xe2\x96\x81\xe2\x96\x81", -4},
    {"ab", -5},               {"ca", -9}, {"\xec\x95\x88", -2} /* 안 */, {"\xeb\x85\x95", -2} /* 녕 */,
    {"\xec\x95\x88\xeb\x85\x95", -3} /* 안녕 */, {"\xe2\x96\x81\xec\x95\x88\xeb\x85\x95", -4} /* ▁안녕 */,
};
#define N_PIECES (sizeof pieces / sizeof pieces[0])
#define ID_TOOL (ID_PIECES + (uint32_t)N_PIECES) /* "<tool>", user-defined */
#define ID_UNUSED (ID_TOOL + 1)                  /* "[unused]", unused */
#define ID_XY (ID_TOOL + 2)                      /* "xy", user-defined */
#define ID_YZW (ID_TOOL + 3)                     /* "yzw", user-defined: overlaps xy */
#define N_VOCAB (ID_TOOL + 4)

static char texts[N_VOCAB][32];

/* Writes the vocabulary (plus llama hyper-parameters, so llama.cpp loads the
 * file vocab-only) with the given flags (-1: key left out). */
static int write_vocab(const char *path, int add_bos, int add_space_prefix) {
    const char *strs[N_VOCAB];
    float scores[N_VOCAB];
    int32_t types[N_VOCAB];
    for (uint32_t i = 0; i < N_VOCAB; i++) {
        scores[i] = 0;
        types[i] = 1;
        if (i == ID_UNK) snprintf(texts[i], sizeof texts[i], "<unk>"), types[i] = 2;
        else if (i == ID_BOS) snprintf(texts[i], sizeof texts[i], "<s>"), types[i] = 3;
        else if (i == ID_EOS) snprintf(texts[i], sizeof texts[i], "</s>"), types[i] = 3;
        else if (i < ID_PIECES) snprintf(texts[i], sizeof texts[i], "<0x%02X>", i - ID_BYTE0), types[i] = 6;
        else if (i < ID_TOOL) snprintf(texts[i], sizeof texts[i], "%s", pieces[i - ID_PIECES].text), scores[i] = pieces[i - ID_PIECES].score;
        else if (i == ID_TOOL) snprintf(texts[i], sizeof texts[i], "<tool>"), types[i] = 4;
        else if (i == ID_XY) snprintf(texts[i], sizeof texts[i], "xy"), types[i] = 4;
        else if (i == ID_YZW) snprintf(texts[i], sizeof texts[i], "yzw"), types[i] = 4;
        else snprintf(texts[i], sizeof texts[i], "[unused]"), types[i] = 5;
        strs[i] = texts[i];
    }
    cllm_error err;
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    int ok = w && cllm_gguf_set_str(w, "general.architecture", "llama", &err) == CLLM_OK &&
             cllm_gguf_set_u32(w, "llama.context_length", 64, &err) == CLLM_OK &&
             cllm_gguf_set_u32(w, "llama.embedding_length", 64, &err) == CLLM_OK &&
             cllm_gguf_set_u32(w, "llama.block_count", 1, &err) == CLLM_OK &&
             cllm_gguf_set_u32(w, "llama.feed_forward_length", 128, &err) == CLLM_OK &&
             cllm_gguf_set_u32(w, "llama.attention.head_count", 4, &err) == CLLM_OK &&
             cllm_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &err) == CLLM_OK &&
             cllm_gguf_set_str(w, "tokenizer.ggml.model", "llama", &err) == CLLM_OK &&
             cllm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", strs, NULL, N_VOCAB, &err) == CLLM_OK &&
             cllm_gguf_set_arr(w, "tokenizer.ggml.scores", CLLM_GGUF_FLOAT32, scores, N_VOCAB, &err) == CLLM_OK &&
             cllm_gguf_set_arr(w, "tokenizer.ggml.token_type", CLLM_GGUF_INT32, types, N_VOCAB, &err) == CLLM_OK &&
             cllm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", ID_BOS, &err) == CLLM_OK &&
             cllm_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", ID_EOS, &err) == CLLM_OK &&
             cllm_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", ID_UNK, &err) == CLLM_OK;
    if (ok && add_bos >= 0) ok = cllm_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos, &err) == CLLM_OK;
    if (ok && add_space_prefix >= 0)
        ok = cllm_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", add_space_prefix, &err) == CLLM_OK;
    if (ok) ok = cllm_gguf_writer_write(w, path, &err) == CLLM_OK;
    if (!ok) fprintf(stderr, "write %s: %s\n", path, err.msg);
    cllm_gguf_writer_destroy(w);
    return ok;
}

static char dir[64];
static cllm_tokenizer *tok;

static cllm_tokenizer *load(const char *name, int add_bos, int add_space_prefix) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cllm_tokenizer *t = NULL;
    cllm_error err;
    if (!write_vocab(path, add_bos, add_space_prefix)) return NULL;
    if (cllm_tokenizer_read_gguf(path, &t, &err) != CLLM_OK) {
        fprintf(stderr, "read %s: %s\n", path, err.msg);
        return NULL;
    }
    return t;
}

/* The pieces of text's encoding joined with '|'. */
static void pieces_of(const cllm_tokenizer *t, const char *text, size_t len, int special, char *out, size_t cap) {
    cllm_tokens toks = {0};
    cllm_error err;
    cllm_special_set all = {1, NULL, 0};
    out[0] = '\0';
    if (cllm_tokenizer_encode(t, text, len, special ? &all : NULL, &toks, &err) != CLLM_OK) {
        snprintf(out, cap, "ERROR %s", err.msg);
        return;
    }
    size_t o = 0;
    for (size_t i = 0; i < toks.n && o + 40 < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "|" : "", toks.ids[i] < N_VOCAB ? texts[toks.ids[i]] : "?");
    cllm_tokens_free(&toks);
}

#define SP "\xe2\x96\x81"

static void expect(const char *text, int special, const char *want) {
    char got[2048];
    pieces_of(tok, text, strlen(text), special, got, sizeof got);
    CHECK(!strcmp(got, want), "'%s'%s: got %s, expected %s", text, special ? " (specials)" : "", got, want);
}

/* ---- cases ---- */

static void test_tokenizer_spm_loads(void) {
    CHECK(tok != NULL, "the vocabulary loads");
    if (!tok) return;
    CHECK(cllm_tokenizer_is_spm(tok), "is SentencePiece");
    CHECK(cllm_tokenizer_n_vocab(tok) == N_VOCAB, "V %u", cllm_tokenizer_n_vocab(tok));
    CHECK(cllm_tokenizer_prompt_bos(tok) == ID_BOS, "bos %lld", (long long)cllm_tokenizer_prompt_bos(tok));
    CHECK(cllm_tokenizer_prompt_eos(tok) == -1, "no eos appended by default");
    CHECK(cllm_tokenizer_eot_id(tok) == ID_EOS, "eot is </s>");
    CHECK(cllm_tokenizer_special_id(tok, "<s>") == ID_BOS && cllm_tokenizer_special_id(tok, "<unk>") == ID_UNK,
          "control and unknown tokens are special");
    CHECK(cllm_tokenizer_special_id(tok, "<tool>") == -1, "user-defined tokens are not special");
    CHECK(cllm_tokenizer_token_kind(tok, ID_UNUSED) == CLLM_TOKEN_UNUSED, "unused kind");
}

static void test_tokenizer_spm_words(void) {
    if (!tok) return;
    expect("hello world", 0, SP "hello|" SP "world");
    expect("hello", 0, SP "hello");
    expect("", 0, "");
    /* the leading space is added even when the text starts with one */
    expect(" hello", 0, SP SP "|hello");
    expect("hello  world", 0, SP "hello|" SP SP "|w|orld");
    expect("hello    world", 0, SP "hello|" SP SP SP SP "|w|orld");
    expect("hello ", 0, SP "hello|" SP);
    expect(" ", 0, SP SP);
    expect("hello\nworld", 0, SP "hello|<0x0A>|w|orld");
    expect("\n\n", 0, SP "|<0x0A>|<0x0A>");
    /* encoded line by line (no piece holds a newline), but an invalid lead byte may swallow one */
    expect("hello\nhello\n\nworld ", 0, SP "hello|<0x0A>|hello|<0x0A>|<0x0A>|w|orld|" SP);
    expect("a\xe2\nb\n\xf0\n\n\nc", 0, SP "|a|<0xE2>|<0x0A>|<0x62>|<0x0A>|<0xF0>|<0x0A>|<0x0A>|<0x0A>|c");
}

static void test_tokenizer_spm_merge_order(void) {
    if (!tok) return;
    expect("abc", 0, SP "|ab|c");  /* ab and bc: only ab is a piece */
    expect("cab", 0, SP "|c|ab");  /* ab (-5) beats the leftmost ca (-9) */
    expect("ca", 0, SP "|ca");
}

static void test_tokenizer_spm_byte_fallback(void) {
    if (!tok) return;
    expect("\xc3\xa9", 0, SP "|<0xC3>|<0xA9>");                               /* é */
    expect("\xf0\x9f\x98\x80", 0, SP "|<0xF0>|<0x9F>|<0x98>|<0x80>");          /* 😀 */
    expect("\xec\x95\x88\xeb\x85\x95", 0, SP "\xec\x95\x88\xeb\x85\x95");       /* 안녕 */
    expect("\xec\x95\x88\xeb\x85\x95\xed\x95\x98", 0, SP "\xec\x95\x88\xeb\x85\x95|<0xED>|<0x95>|<0x98>"); /* 안녕하 */
    expect("a\xff" "b", 0, SP "|a|<0xFF>|<0x62>"); /* invalid UTF-8: 0xFF claims 4 bytes, takes "\xff" "b" */
    expect("\xe2\x96", 0, SP "|<0xE2>|<0x96>");                                /* truncated character */
}

static void test_tokenizer_spm_specials(void) {
    if (!tok) return;
    expect("<s>hello", 0, SP "|<|s|>|hello");
    expect("<s>hello", 1, "<s>|" SP "hello");
    expect("hello</s>", 1, SP "hello|</s>");
    expect("<s></s>", 1, "<s>|</s>");
    expect("<unk>", 1, "<unk>");
    expect("a<tool>b", 0, SP "|a|<tool>|" SP "|b"); /* user-defined: always, and a space after it */
    expect("<tool>", 0, "<tool>");
    /* longest token first over the whole text, not the leftmost match */
    expect("xyzw", 0, SP "|<0x78>|yzw");
    expect("xyxy", 0, "xy|xy"); /* no text fragment, so no space prefix */
    /* only the allowed special ids */
    cllm_tokens toks = {0};
    cllm_error err;
    uint32_t only_eos = ID_EOS;
    cllm_special_set some = {0, &only_eos, 1};
    CHECK(cllm_tokenizer_encode(tok, "<s>a</s>", 8, &some, &toks, &err) == CLLM_OK, "%s", err.msg);
    CHECK(toks.n >= 1 && toks.ids[toks.n - 1] == ID_EOS, "</s> allowed");
    for (size_t i = 0; i < toks.n; i++) CHECK(toks.ids[i] != ID_BOS, "<s> not allowed");
    cllm_tokens_free(&toks);
}

/* Text encoded in pieces with cllm_tokenizer_encode_after (the chat
 * renderer's way) gives the ids of the whole text where the cut is a token
 * boundary: the leading space only at the start and after special or
 * user-defined tokens, not before a piece that continues text. */
static void test_tokenizer_spm_encode_after(void) {
    if (!tok) return;
    static const char *const cuts[][2] = {{"<s>", "hello"},      {"hello", " world"}, {"<s>[x]", "hello</s>"},
                                          {"a", "<tool>b"},      {"hello</s>", "a b"}, {"", "hello"},
                                          {"hello world", "\n"}};
    cllm_special_set all = {1, NULL, 0};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        cllm_tokens whole = {0}, parts = {0};
        cllm_error err;
        char text[64];
        snprintf(text, sizeof text, "%s%s", cuts[i][0], cuts[i][1]);
        int ok = cllm_tokenizer_encode(tok, text, strlen(text), &all, &whole, &err) == CLLM_OK &&
                 cllm_tokenizer_encode(tok, cuts[i][0], strlen(cuts[i][0]), &all, &parts, &err) == CLLM_OK &&
                 cllm_tokenizer_encode_after(tok, parts.n ? (int64_t)parts.ids[parts.n - 1] : -1, cuts[i][1],
                                             strlen(cuts[i][1]), &all, &parts, &err) == CLLM_OK;
        CHECK(ok, "encode: %s", err.msg);
        CHECK(ok && whole.n == parts.n && !memcmp(whole.ids, parts.ids, whole.n * sizeof *whole.ids),
              "'%s' + '%s': %zu ids in pieces, %zu whole", cuts[i][0], cuts[i][1], parts.n, whole.n);
        cllm_tokens_free(&whole);
        cllm_tokens_free(&parts);
    }
}

static void check_decode(const uint32_t *ids, size_t n, const char *want) {
    char *out;
    size_t len;
    cllm_error err;
    CHECK(cllm_tokenizer_decode(tok, ids, n, &out, &len, &err) == CLLM_OK, "%s", err.msg);
    if (!out) return;
    CHECK(len == strlen(want) && !memcmp(out, want, len), "decode: '%s', expected '%s'", out, want);
    free(out);
}

static void test_tokenizer_spm_decode(void) {
    if (!tok) return;
    static const char *const texts_rt[] = {"hello world", " hello", "hello  world ", "\n\nhello\n", "\xc3\xa9t\xc3\xa9",
                                           "\xf0\x9f\x98\x80!", "\xec\x95\x88\xeb\x85\x95 \xec\x84\xb8\xea\xb3\x84",
                                           "a\xff" "b", "<s>x</s>", ""};
    for (size_t k = 0; k < sizeof texts_rt / sizeof texts_rt[0]; k++) {
        cllm_tokens toks = {0};
        cllm_error err;
        const char *x = texts_rt[k];
        CHECK(cllm_tokenizer_encode(tok, x, strlen(x), NULL, &toks, &err) == CLLM_OK, "%s", err.msg);
        check_decode(toks.ids, toks.n, x);
        cllm_tokens_free(&toks);
    }
    uint32_t hello = ID_PIECES + 22; /* "▁hello" */
    CHECK(!strcmp(texts[hello], SP "hello"), "id of ▁hello");
    uint32_t a[] = {ID_BOS, hello}, b[] = {hello, hello}, c[] = {ID_BYTE0 + ' ', hello}, d[] = {ID_UNUSED, hello};
    check_decode(a, 2, "<s> hello");    /* the space after a special token stays */
    check_decode(b, 2, "hello hello");  /* one leading space dropped */
    check_decode(c, 2, " hello");        /* a byte token's space too */
    check_decode(d, 2, " hello");        /* unused: nothing */
    /* streaming keeps every space (it decodes tokens after the first) */
    cllm_utf8_stream st = {0};
    char buf[64];
    size_t n = 0;
    cllm_error err;
    CHECK(cllm_tokenizer_decode_stream(tok, &st, hello, buf, sizeof buf, &n, &err) == CLLM_OK && n == 6 &&
              !memcmp(buf, " hello", 6), "stream");
}

static void test_tokenizer_spm_gguf_round_trip(void) {
    if (!tok) return;
    char path[128];
    snprintf(path, sizeof path, "%s/again.gguf", dir);
    cllm_error err;
    cllm_tokenizer *t2 = NULL;
    CHECK(cllm_tokenizer_write_gguf(tok, path, NULL, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_tokenizer_read_gguf(path, &t2, &err) == CLLM_OK, "%s", err.msg);
    if (!t2) return;
    CHECK(cllm_tokenizer_is_spm(t2), "still SentencePiece");
    CHECK(cllm_tokenizer_hash(t2) == cllm_tokenizer_hash(tok), "same fingerprint");
    const char *x = "<s>hello  world\n\xc3\xa9 \xec\x95\x88\xeb\x85\x95<tool>!";
    cllm_tokens a = {0}, b = {0};
    cllm_special_set all = {1, NULL, 0};
    CHECK(cllm_tokenizer_encode(tok, x, strlen(x), &all, &a, &err) == CLLM_OK &&
              cllm_tokenizer_encode(t2, x, strlen(x), &all, &b, &err) == CLLM_OK,
          "%s", err.msg);
    CHECK(a.n == b.n && !memcmp(a.ids, b.ids, a.n * sizeof *a.ids), "same ids after the round trip");
    cllm_tokens_free(&a);
    cllm_tokens_free(&b);
    snprintf(path, sizeof path, "%s/own.tok", dir);
    CHECK(cllm_tokenizer_save(tok, path, &err) != CLLM_OK, "cllm's own file refuses SPM");
    cllm_tokenizer_destroy(t2);
}

static void test_tokenizer_spm_flags(void) {
    cllm_tokenizer *t = load("flags.gguf", 0, 0);
    CHECK(t != NULL, "loads");
    if (!t) return;
    CHECK(cllm_tokenizer_prompt_bos(t) == -1, "add_bos_token false");
    cllm_tokenizer *keep = tok;
    tok = t;
    expect("hello world", 0, "hello|" SP "world");
    expect(" hello", 0, SP "hello");
    expect("<s>hello", 1, "<s>|hello");
    uint32_t ids[] = {ID_PIECES + 22};
    check_decode(ids, 1, " hello"); /* no prefix added, none removed */
    tok = keep;
    CHECK(cllm_tokenizer_hash(t) != cllm_tokenizer_hash(tok), "flags change the fingerprint");
    cllm_tokenizer_destroy(t);
}

static void expect_refused(const char *name, const char *const *strs, const int32_t *types, uint32_t n,
                           const char *msg_part) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    cllm_error err;
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    int ok = w && cllm_gguf_set_str(w, "tokenizer.ggml.model", "llama", &err) == CLLM_OK &&
             cllm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", strs, NULL, n, &err) == CLLM_OK &&
             cllm_gguf_set_arr(w, "tokenizer.ggml.token_type", CLLM_GGUF_INT32, types, n, &err) == CLLM_OK &&
             cllm_gguf_writer_write(w, path, &err) == CLLM_OK;
    cllm_gguf_writer_destroy(w);
    CHECK(ok, "%s: write", name);
    cllm_tokenizer *t = NULL;
    cllm_status st = cllm_tokenizer_read_gguf(path, &t, &err);
    CHECK(st != CLLM_OK && t == NULL, "%s: refused", name);
    if (st != CLLM_OK) CHECK(strstr(err.msg, msg_part) != NULL, "%s: message '%s' lacks '%s'", name, err.msg, msg_part);
    cllm_tokenizer_destroy(t);
}

static void test_tokenizer_spm_malformed(void) {
    static char bufs[300][16];
    const char *strs[300];
    int32_t types[300];
    for (int i = 0; i < 300; i++) {
        snprintf(bufs[i], sizeof bufs[i], "p%d", i);
        strs[i] = bufs[i];
        types[i] = 1;
    }
    expect_refused("small", strs, types, 10, "tokens");
    strs[7] = strs[5];
    expect_refused("duplicate", strs, types, 300, "same piece");
    strs[7] = bufs[7];
    types[9] = 6; /* a byte token that is not <0xXX> */
    expect_refused("badbyte", strs, types, 300, "<0xXX>");
}


/* ---- a SentencePiece .model file (protobuf) of the same vocabulary ---- */

typedef struct {
    uint8_t *b;
    size_t n, cap;
} pbuf;

static void pb_put(pbuf *o, const void *p, size_t n) {
    if (o->n + n > o->cap) {
        o->cap = 2 * (o->n + n) + 256;
        o->b = realloc(o->b, o->cap);
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void pb_varint_put(pbuf *o, uint64_t v) {
    uint8_t c[10];
    int k = 0;
    do {
        c[k] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) c[k] |= 0x80;
        k++;
    } while (v);
    pb_put(o, c, (size_t)k);
}

static void pb_field_bytes(pbuf *o, uint32_t field, const void *p, size_t n) {
    pb_varint_put(o, (uint64_t)field << 3 | 2);
    pb_varint_put(o, n);
    pb_put(o, p, n);
}

static void pb_field_varint(pbuf *o, uint32_t field, int64_t v) {
    pb_varint_put(o, (uint64_t)field << 3);
    pb_varint_put(o, (uint64_t)v);
}

/* The vocabulary of write_vocab as sentencepiece_model.proto's ModelProto. */
static int write_model(const char *path, int model_type, int truncate) {
    pbuf o = {0};
    for (uint32_t i = 0; i < N_VOCAB; i++) {
        pbuf m = {0};
        int type = i == ID_UNK ? 2 : i <= ID_EOS ? 3 : i < ID_PIECES ? 6 : i < ID_TOOL ? 1 : i == ID_UNUSED ? 5 : 4;
        float score = i >= ID_PIECES && i < ID_TOOL ? pieces[i - ID_PIECES].score : 0;
        pb_field_bytes(&m, 1, texts[i], strlen(texts[i]));
        pb_varint_put(&m, 2 << 3 | 5);
        pb_put(&m, &score, 4); /* little-endian float (x86) */
        if (type != 1) pb_field_varint(&m, 3, type); /* NORMAL is the default */
        pb_field_bytes(&o, 1, m.b, m.n);
        free(m.b);
    }
    pbuf tr = {0}, nm = {0};
    pb_field_bytes(&tr, 1, "input.txt", 9); /* a field cllm skips */
    pb_field_varint(&tr, 3, model_type);
    pb_field_varint(&tr, 40, 0);
    pb_field_varint(&tr, 41, 1);
    pb_field_varint(&tr, 42, 2);
    pb_field_varint(&tr, 43, -1);
    pb_field_bytes(&o, 2, tr.b, tr.n);
    pb_field_bytes(&nm, 1, "identity", 8);
    pb_field_varint(&nm, 3, 1);
    pb_field_bytes(&o, 3, nm.b, nm.n);
    free(tr.b);
    free(nm.b);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(o.b, 1, truncate ? o.n - 3 : o.n, f) == (truncate ? o.n - 3 : o.n);
    if (f) ok &= fclose(f) == 0;
    free(o.b);
    return ok;
}

static void test_tokenizer_spm_model_file(void) {
    if (!tok) return;
    char path[128];
    cllm_error err;
    cllm_tokenizer *t = NULL;
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    CHECK(write_model(path, 2, 0), "write %s", path);
    CHECK(cllm_tokenizer_load_any(path, CLLM_PRETOK_NONE, &t, &err) == CLLM_OK, "%s", err.msg);
    if (!t) return;
    CHECK(cllm_tokenizer_is_spm(t) && cllm_tokenizer_n_vocab(t) == N_VOCAB, "SentencePiece, V %u", cllm_tokenizer_n_vocab(t));
    CHECK(cllm_tokenizer_prompt_bos(t) == ID_BOS && cllm_tokenizer_eot_id(t) == ID_EOS, "bos/eos from trainer_spec");
    static const char *const xs[] = {"hello world", " hello", "hello  world ", "\n\nhello\n", "cab abc",
                                     "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80", "\xec\x95\x88\xeb\x85\x95\xed\x95\x98",
                                     "<s>hello</s>", "<unk>"};
    for (size_t k = 0; k < sizeof xs / sizeof xs[0]; k++)
        for (int sp = 0; sp < 2; sp++) {
            char a[2048], b[2048];
            pieces_of(tok, xs[k], strlen(xs[k]), sp, a, sizeof a);
            pieces_of(t, xs[k], strlen(xs[k]), sp, b, sizeof b);
            CHECK(!strcmp(a, b), "'%s' (specials %d): .model %s, GGUF %s", xs[k], sp, b, a);
        }
    /* a user-defined piece of the model is a normal one (llama.cpp's converter) */
    CHECK(cllm_tokenizer_token_kind(t, ID_TOOL) == CLLM_TOKEN_NORMAL, "<tool> kind");
    char got[512];
    pieces_of(t, "<tool>", 6, 1, got, sizeof got);
    CHECK(strcmp(got, "<tool>") != 0, "<tool> is not matched as a whole: %s", got);
    cllm_tokenizer_destroy(t);
    snprintf(path, sizeof path, "%s/unigram.model", dir);
    CHECK(write_model(path, 1, 0), "write");
    CHECK(cllm_tokenizer_load_spm_model(path, &t, &err) != CLLM_OK && strstr(err.msg, "BPE"), "unigram refused: %s",
          err.msg);
    snprintf(path, sizeof path, "%s/cut.model", dir);
    CHECK(write_model(path, 2, 1), "write");
    CHECK(cllm_tokenizer_load_spm_model(path, &t, &err) != CLLM_OK && strstr(err.msg, "protobuf"), "truncated refused: %s",
          err.msg);
}

/* ---- the same vocabulary as a Hugging Face tokenizer.json (Llama 2 style) ---- */

/* Writes tokenizer.json: model BPE with byte_fallback, vocab = the pieces,
 * merges = every split of every normal piece into two normal pieces, best
 * piece score first (what converting a SentencePiece model gives), the
 * normalizer Sequence[Prepend "▁", Replace " " -> "▁"] (metaspace = 0) or a
 * Metaspace pre_tokenizer (metaspace = 1), and added tokens for the control
 * and user-defined ones. */
static int write_hf_json(const char *path, int metaspace) {
    char gguf[128];
    snprintf(gguf, sizeof gguf, "%s/texts.gguf", dir);
    if (!write_vocab(gguf, -1, -1)) return 0; /* fills texts[] */
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fputs("{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"unk_token\": \"<unk>\", \"vocab\": {", f);
    for (uint32_t i = 0; i < N_VOCAB; i++) fprintf(f, "%s\"%s\": %u", i ? ", " : "", texts[i], i);
    fputs("}, \"merges\": [", f);
    /* merges ordered by the made piece's score (higher first), then id */
    int first = 1;
    for (int sc = 0; sc >= -20; sc--)
        for (uint32_t p = ID_PIECES; p < ID_TOOL; p++) {
            if ((int)pieces[p - ID_PIECES].score != sc) continue;
            const char *t = texts[p];
            size_t n = strlen(t);
            for (size_t k = 1; k < n; k++) {
                if (((uint8_t)t[k] & 0xC0) == 0x80) continue; /* split at characters only */
                int la = -1, lb = -1;
                for (uint32_t q = ID_PIECES; q < ID_TOOL; q++) {
                    if (strlen(texts[q]) == k && !memcmp(texts[q], t, k)) la = (int)q;
                    if (!strcmp(texts[q], t + k)) lb = (int)q;
                }
                if (la < 0 || lb < 0) continue;
                fprintf(f, "%s\"%s %s\"", first ? "" : ", ", texts[la], texts[lb]);
                first = 0;
            }
        }
    fputs("]}, ", f);
    if (metaspace)
        fputs("\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"" SP
              "\", \"prepend_scheme\": \"first\", \"split\": false}, ",
              f);
    else
        fputs("\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"" SP
              "\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"" SP "\"}]}, "
              "\"pre_tokenizer\": null, ",
              f);
    fprintf(f, "\"added_tokens\": [{\"id\": %u, \"content\": \"<unk>\", \"special\": true}, "
               "{\"id\": %u, \"content\": \"<s>\", \"special\": true}, {\"id\": %u, \"content\": \"</s>\", \"special\": true}, "
               "{\"id\": %u, \"content\": \"<tool>\", \"special\": false}, {\"id\": %u, \"content\": \"xy\", \"special\": false}, "
               "{\"id\": %u, \"content\": \"yzw\", \"special\": false}]}",
            ID_UNK, ID_BOS, ID_EOS, (unsigned)ID_TOOL, (unsigned)ID_XY, (unsigned)ID_YZW);
    return fclose(f) == 0;
}

/* tokenizer.json of the SentencePiece-style shape encodes as the GGUF
 * vocabulary it was made from, in both normalizer spellings. */
static void test_tokenizer_spm_hf_json(void) {
    static const char *texts_in[] = {"hello world", " hello", "hello  world", "    hello", "abc cab ab",
                                     "\xec\x95\x88\xeb\x85\x95 world!", "x <s> y </s>z", "<tool>hi <tool>", "xyzw yzwxy",
                                     "\xf0\x9f\x98\x80 emoji", "", "  ", "a\nb\n\nc", "hello, world! hello", "<unk>"};
    for (int metaspace = 0; metaspace <= 1; metaspace++) {
        char path[128];
        snprintf(path, sizeof path, "%s/tokenizer%d.json", dir, metaspace);
        CHECK(write_hf_json(path, metaspace), "write %s", path);
        cllm_tokenizer *j = NULL;
        cllm_error err;
        CHECK(cllm_tokenizer_load_hf(path, &j, &err) == CLLM_OK, "load %s: %s", path, err.msg);
        if (!j || !tok) {
            cllm_tokenizer_destroy(j);
            continue;
        }
        CHECK(cllm_tokenizer_is_spm(j), "read as SentencePiece");
        for (size_t i = 0; i < sizeof texts_in / sizeof *texts_in; i++)
            for (int special = 0; special <= 1; special++) {
                char a[2048], b[2048];
                pieces_of(tok, texts_in[i], strlen(texts_in[i]), special, a, sizeof a);
                pieces_of(j, texts_in[i], strlen(texts_in[i]), special, b, sizeof b);
                CHECK(!strcmp(a, b), "'%s' (%s, specials %d): GGUF %s, tokenizer.json %s", texts_in[i],
                      metaspace ? "Metaspace" : "normalizer", special, a, b);
            }
        CHECK(cllm_tokenizer_prompt_bos(j) == ID_BOS, "bos <s>");
        cllm_tokenizer_destroy(j);
    }
    /* A normalizer cllm does not know is refused, naming the file. */
    char path[128];
    snprintf(path, sizeof path, "%s/bad.json", dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"vocab\": {\"a\": 0}, \"merges\": []}, "
              "\"normalizer\": {\"type\": \"NFKC\"}}",
              f);
        fclose(f);
    }
    cllm_tokenizer *j = NULL;
    cllm_error err;
    CHECK(cllm_tokenizer_load_hf(path, &j, &err) == CLLM_ERR_FORMAT && !j && strstr(err.msg, "bad.json"),
          "NFKC normalizer refused: %s", err.msg);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/cllm-spm-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    tok = load("vocab.gguf", -1, -1);
    const char *keep = getenv("SPM_GGUF_OUT");
    if (keep) { /* for checking the expectations with llama-tokenize */
        char flags[512];
        snprintf(flags, sizeof flags, "%s.flags.gguf", keep);
        write_vocab(keep, -1, -1);
        write_vocab(flags, 0, 0);
        snprintf(flags, sizeof flags, "%s.model", keep);
        write_model(flags, 2, 0);
    }
    TEST_RUN(test_tokenizer_spm_loads);
    TEST_RUN(test_tokenizer_spm_words);
    TEST_RUN(test_tokenizer_spm_merge_order);
    TEST_RUN(test_tokenizer_spm_byte_fallback);
    TEST_RUN(test_tokenizer_spm_specials);
    TEST_RUN(test_tokenizer_spm_decode);
    TEST_RUN(test_tokenizer_spm_gguf_round_trip);
    TEST_RUN(test_tokenizer_spm_flags);
    TEST_RUN(test_tokenizer_spm_malformed);
    TEST_RUN(test_tokenizer_spm_model_file);
    TEST_RUN(test_tokenizer_spm_hf_json);
    TEST_RUN(test_tokenizer_spm_encode_after);
    cllm_tokenizer_destroy(tok);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish();
}
