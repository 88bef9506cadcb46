/*
 * fuzz_grammar.c: the GBNF parser and matcher, and JSON Schema conversion
 * (include/cllm/infer/grammar.h). The first byte picks the mode: even, the
 * rest is GBNF text up to a NUL byte, and what follows the NUL is fed to
 * the matcher in uneven pieces (mask, accept, complete after each); odd,
 * the rest is a JSON Schema, and a schema the converter accepts must give a
 * grammar that parses (anything else is a bug: abort). Refusals are the
 * parser's job; crashes, sanitizer reports, leaks, runaway memory or time
 * are findings (the depth and stack caps must stop every blow-up).
 */
#include <stdlib.h>
#include <string.h>

#include "cllm/infer/grammar.h"
#include "fuzz.h"

/* A small vocabulary: ASCII pieces, JSON punctuation, split UTF-8, an eog. */
static const char *const vocab_text[] = {"", "a", "b", "ab", "{", "}", "\"", ":", ",", " ", "\n", "0", "12",
                                         "[", "]", "true", "null", "\xc3", "\xa9", "\xc3\xa9", "\xe2\x82",
                                         "\xac", "\xf0\x9f\x98\x80", "\xff", "x\"}", "\\"};
#define N_VOCAB ((int)(sizeof vocab_text / sizeof *vocab_text))

static void run_matcher(const cllm_grammar *g, const uint8_t *in, size_t n) {
    static cllm_grammar_vocab *v;
    cllm_error err;
    if (!v) {
        const uint8_t *b[N_VOCAB];
        size_t l[N_VOCAB];
        for (int i = 0; i < N_VOCAB; i++) b[i] = (const uint8_t *)vocab_text[i], l[i] = strlen(vocab_text[i]);
        int32_t eog = 0;
        v = cllm_grammar_vocab_create(N_VOCAB, b, l, &eog, 1, &err);
        if (!v) return;
    }
    cllm_grammar_matcher *m = cllm_grammar_matcher_create(g, &err);
    if (!m) return;
    uint8_t allowed[N_VOCAB];
    size_t at = 0;
    for (int step = 0; at < n && step < 64; step++) {
        cllm_grammar_matcher_mask(m, v, allowed);
        size_t piece = 1 + in[at] % 4;
        if (piece > n - at) piece = n - at;
        if (!cllm_grammar_matcher_accept(m, in + at, piece)) {
            /* a token the mask allowed must be accepted */
            for (int t = 1; t < N_VOCAB; t++)
                if (allowed[t] && !cllm_grammar_matcher_accept_token(m, v, t)) abort();
                else if (allowed[t]) break;
        }
        at += piece;
        (void)cllm_grammar_matcher_complete(m);
    }
    cllm_grammar_matcher_destroy(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    cllm_error err;
    cllm_grammar *g = NULL;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] % 2 == 0) {
        const char *nul = memchr(text, 0, len);
        size_t glen = nul ? (size_t)(nul - text) : len;
        if (cllm_grammar_parse(text, glen, "fuzz", &g, &err) != CLLM_OK) return 0;
        if (nul) run_matcher(g, (const uint8_t *)nul + 1, len - glen - 1);
        cllm_grammar_destroy(g);
        return 0;
    }
    char *gbnf = NULL;
    if (cllm_json_schema_to_gbnf(text, len, "fuzz", &gbnf, &err) != CLLM_OK) return 0;
    if (cllm_grammar_parse(gbnf, strlen(gbnf), "fuzz", &g, &err) != CLLM_OK) abort(); /* converter bug */
    static const char sample[] = "{\"a\": [1, \"\xc3\xa9\"], \"b\": null}";
    run_matcher(g, (const uint8_t *)sample, sizeof sample - 1);
    cllm_grammar_destroy(g);
    free(gbnf);
    return 0;
}
