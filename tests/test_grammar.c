/*
 * test_grammar.c: the GBNF engine and JSON Schema conversion (grammar.h).
 *
 * Accept/reject tables for hand-written grammars and converted schemas,
 * parse errors with line:column, token masking on a small synthetic
 * vocabulary (tokens spanning several symbols, split UTF-8 characters,
 * end-of-generation only when complete), the sampler stage, and a
 * differential check: random grammars printed as GBNF against a simple
 * backtracking matcher on their syntax trees, over every short string; and
 * random JSON Schema patterns against the C library's POSIX regular
 * expressions (regcomp), on every short string.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/rng.h"
#include "cllm/infer/grammar.h"
#include "cllm/infer/sampler.h"
#include "test.h"

static cllm_grammar *parse_ok(const char *text) {
    cllm_grammar *g = NULL;
    cllm_error err;
    cllm_status st = cllm_grammar_parse(text, strlen(text), "g", &g, &err);
    CHECK(st == CLLM_OK, "grammar should parse: %s\n%s", st == CLLM_OK ? "" : err.msg, text);
    return g;
}

/* 1 when the whole input is a sentence of g; -1 when g does not parse. */
static int matches_g(const cllm_grammar *g, const char *input, size_t len) {
    cllm_error err;
    cllm_grammar_matcher *m = cllm_grammar_matcher_create(g, &err);
    if (!m) return -1;
    int ok = cllm_grammar_matcher_accept(m, (const uint8_t *)input, len) && cllm_grammar_matcher_complete(m);
    cllm_grammar_matcher_destroy(m);
    return ok;
}

static int matches(const char *grammar, const char *input) {
    cllm_grammar *g = parse_ok(grammar);
    if (!g) return -1;
    int r = matches_g(g, input, strlen(input));
    cllm_grammar_destroy(g);
    return r;
}

typedef struct {
    const char *grammar, *input;
    int expect;
} match_case;

static void test_grammar_accept_reject_table(void) {
    static const match_case cases[] = {
        {"root ::= \"abc\"", "abc", 1},
        {"root ::= \"abc\"", "ab", 0},
        {"root ::= \"abc\"", "abcd", 0},
        {"root ::= \"a\" | \"b\"", "b", 1},
        {"root ::= \"a\" | \"b\"", "c", 0},
        {"root ::= (\"a\" | \"b\")* \"c\"", "ababc", 1},
        {"root ::= (\"a\" | \"b\")* \"c\"", "c", 1},
        {"root ::= (\"a\" | \"b\")* \"c\"", "abca", 0},
        {"root ::= \"a\"+", "", 0},
        {"root ::= \"a\"+", "aaa", 1},
        {"root ::= \"a\"? \"b\"", "b", 1},
        {"root ::= \"a\"? \"b\"", "ab", 1},
        {"root ::= \"a\"? \"b\"", "aab", 0},
        {"root ::= [a-c]{2,3}", "a", 0},
        {"root ::= [a-c]{2,3}", "ab", 1},
        {"root ::= [a-c]{2,3}", "abc", 1},
        {"root ::= [a-c]{2,3}", "abca", 0},
        {"root ::= [a-c]{2}", "cc", 1},
        {"root ::= [a-c]{2,}", "cccccc", 1},
        {"root ::= [a-c]{0,1} \"x\"", "x", 1},
        {"root ::= [^abc]", "d", 1},
        {"root ::= [^abc]", "b", 0},
        {"root ::= [^abc]", "\n", 1},
        {"root ::= .", "\xe2\x82\xac", 1}, /* any character: one code point, three bytes */
        {"root ::= . .", "\xe2\x82\xac", 0},
        {"root ::= \"\\x41\\u00e9\\U0001F600\\n\\t\\\\\\\"\"", "A\xc3\xa9\xf0\x9f\x98\x80\n\t\\\"", 1},
        {"root ::= [\\x30-\\x39\\-]+", "1-2", 1},
        {"root ::= [\\]\\[]", "]", 1},
        {"# a comment\nroot ::= x # trailing\nx ::= \"y\" # more\n", "y", 1},
        {"root ::=\n  \"a\" (\n    \"b\" |\n    \"c\"\n  )\n", "ac", 1},
        {"root ::= \"a\" |\n  \"b\"", "b", 1},
        {"root ::= [0-9]", "\xd9\xa3", 0}, /* Arabic-Indic three is not an ASCII digit */
        {"root ::= \"\xec\x95\x88\xeb\x85\x95\"", "\xec\x95\x88\xeb\x85\x95", 1}, /* UTF-8 in the grammar text */
        {"root ::= [\xea\xb0\x80-\xed\x9e\xa3]+", "\xed\x95\x9c\xea\xb8\x80", 1},   /* a Hangul syllable range */
        {"root ::= [\xea\xb0\x80-\xed\x9e\xa3]+", "\xed\x95", 0},                   /* half a character */
        {"root ::= \"a\" root | \"\"", "aaaa", 1},                                   /* right recursion */
        {"root ::= \"(\" root \")\" | \"\"", "((()))", 1},                           /* nesting */
        {"root ::= \"(\" root \")\" | \"\"", "(()", 0},
        {"root ::= x x\nx ::= \"a\" | \"ab\"", "aab", 1},                             /* ambiguity */
        {"root ::= x x\nx ::= \"a\" | \"ab\"", "abab", 1},
        {"root ::= \"a\" \"\\xff\"", "a\xff", 0}, /* invalid UTF-8 input never matches */
        {"root ::= \"a\"", "a\xc3\xa9", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int got = matches(cases[i].grammar, cases[i].input);
        CHECK(got == cases[i].expect, "case %zu: grammar %s on '%s': got %d, expected %d", i, cases[i].grammar,
              cases[i].input, got, cases[i].expect);
    }
}

static void test_grammar_json_grammar_table(void) {
    cllm_grammar *g = parse_ok(cllm_grammar_json_object_text());
    static const struct {
        const char *input;
        int expect;
    } cases[] = {
        {"{}", 1},
        {"{\"a\": 1, \"b\": [true, false, null, -0.5e+3, \"x\\n\\u00e9\"]}", 1},
        {"{ \"nested\" : { \"deep\" : [ [ ] , { } ] } }", 1},
        {"{\"a\": 01}", 0},
        {"{\"a\" 1}", 0},
        {"[1, 2]", 0}, /* json_object: the top level must be an object */
        {"{\"a\": \"unterminated}", 0},
        {"{\"a\": \"tab\tinside\"}", 0},
        {"{\"a\": 1,}", 0},
        {"{\"\xed\x95\x9c\": \"\xf0\x9f\x98\x80\"}", 1},
    };
    for (size_t i = 0; g && i < sizeof cases / sizeof *cases; i++) {
        int got = matches_g(g, cases[i].input, strlen(cases[i].input));
        CHECK(got == cases[i].expect, "json case %zu '%s': got %d, expected %d", i, cases[i].input, got,
              cases[i].expect);
    }
    cllm_grammar_destroy(g);
}

static void test_grammar_parse_errors_name_line_and_column(void) {
    static const struct {
        const char *text, *expect;
    } cases[] = {
        {"root ::= \"a", "g:1:10: unterminated string literal"},
        {"root ::= foo", "g:1:10: rule 'foo' is used but never defined"},
        {"x ::= \"a\"", "g: the grammar has no 'root' rule"},
        {"root ::= \"a\"\nroot ::= \"b\"", "g:2:1: rule 'root' is defined twice"},
        {"root = \"a\"", "g:1:6: expected '::=' after rule name 'root'"},
        {"root ::= [a-", "g:1:10: unterminated character class"},
        {"root ::= (\"a\"", "g:1:10: '(' is never closed"},
        {"root ::= \"a\" )", "g:1:14: ')' without a matching '('"},
        {"root ::= *", "g:1:10: '*' has nothing before it to repeat"},
        {"root ::= \"\\q\"", "g:1:11: unknown escape '\\q'"},
        {"root ::= \"\\x4\"", "g:1:11: '\\x' needs 2 hex digits"},
        {"root ::= [z-a]", "g:1:13: character range ends before it starts"},
        {"root ::= root \"a\"", "g:1:1: rule 'root' is left-recursive"},
        {"root ::= (\"a\"?)*", "left-recursive"},
        {"root ::= \"a\"{5,2}", "g:1:13: repetition {5,2} has max < min"},
        {"root ::= \"a\"{2000}", "repetition counts are limited to 1000"},
        {"\n\nroot ::= \"a\" \"b\" @", "g:3:18: unexpected '@' in rule 'root'"},
        {"root ::= \"\xff\"", "g:1:11: invalid UTF-8 in the grammar text"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cllm_grammar *g = NULL;
        cllm_error err = {0};
        cllm_status st = cllm_grammar_parse(cases[i].text, strlen(cases[i].text), "g", &g, &err);
        CHECK(st != CLLM_OK && !g, "case %zu should fail: %s", i, cases[i].text);
        CHECK(st == CLLM_OK || strstr(err.msg, cases[i].expect), "case %zu: message '%s' lacks '%s'", i, err.msg,
              cases[i].expect);
        cllm_grammar_destroy(g);
    }
}

/* ---- token masking on a synthetic vocabulary ----------------------------- */

enum { EOG_ID = 0 };
static const char *const vocab_text[] = {
    "",        /* 0: end of generation */
    "{",       "\"",  "a",  "\":", "{\"", "1",  "12", "}", "1}", "x",
    "\xc3",    /* 11: first byte of e-acute */
    "\xa9",    /* 12: its second byte */
    "\xc3\xa9",/* 13: e-acute whole */
    "\xa9}",   /* 14: second byte then a brace */
    " ",       "\"a\":1}", ":",
};
#define N_VOCAB ((int)(sizeof vocab_text / sizeof *vocab_text))

static cllm_grammar_vocab *make_vocab(void) {
    const uint8_t *bytes[N_VOCAB];
    size_t len[N_VOCAB];
    for (int i = 0; i < N_VOCAB; i++) {
        bytes[i] = (const uint8_t *)vocab_text[i];
        len[i] = strlen(vocab_text[i]);
    }
    int32_t eog = EOG_ID;
    cllm_error err;
    cllm_grammar_vocab *v = cllm_grammar_vocab_create(N_VOCAB, bytes, len, &eog, 1, &err);
    CHECK(v, "vocab: %s", err.msg);
    return v;
}

/* The allowed token ids as a string "1,5,..." for readable checks. */
static void mask_string(cllm_grammar_matcher *m, const cllm_grammar_vocab *v, char *out, size_t cap) {
    uint8_t allowed[N_VOCAB];
    int n = cllm_grammar_matcher_mask(m, v, allowed);
    size_t at = 0;
    int count = 0;
    out[0] = 0;
    for (int i = 0; i < N_VOCAB; i++)
        if (allowed[i]) at += (size_t)snprintf(out + at, cap - at, "%s%d", count++ ? "," : "", i);
    CHECK(n == count, "mask returned %d but set %d", n, count);
}

static void test_grammar_mask_spans_symbols_and_utf8(void) {
    cllm_grammar_vocab *v = make_vocab();
    cllm_grammar *g = parse_ok("root ::= \"{\" \"\\\"a\\\":\" [0-9]+ \"}\"");
    cllm_error err;
    cllm_grammar_matcher *m = g ? cllm_grammar_matcher_create(g, &err) : NULL;
    char s[256];
    if (v && m) {
        mask_string(m, v, s, sizeof s);
        CHECK(!strcmp(s, "1,5"), "start: '{' and '{\"' (spans two symbols), got %s", s);
        CHECK(cllm_grammar_matcher_accept_token(m, v, 5), "accept '{\"'");
        mask_string(m, v, s, sizeof s);
        CHECK(!strcmp(s, "3"), "after '{\"': only 'a', got %s", s);
        CHECK(cllm_grammar_matcher_accept_token(m, v, 3) && cllm_grammar_matcher_accept_token(m, v, 4), "a\":");
        mask_string(m, v, s, sizeof s);
        CHECK(!strcmp(s, "6,7,9"), "first digit: '1', '12' and '1}' (a digit, then the closing brace), got %s", s);
        CHECK(cllm_grammar_matcher_accept_token(m, v, 7), "12");
        mask_string(m, v, s, sizeof s);
        CHECK(!strcmp(s, "6,7,8,9"), "after 12: digits, '}' and '1}', got %s", s);
        CHECK(!cllm_grammar_matcher_accept_token(m, v, EOG_ID), "eog refused before complete");
        CHECK(cllm_grammar_matcher_accept_token(m, v, 9), "1}");
        mask_string(m, v, s, sizeof s);
        CHECK(!strcmp(s, "0"), "complete: only end of generation, got %s", s);
        CHECK(cllm_grammar_matcher_complete(m) && !cllm_grammar_matcher_can_continue(m), "finished");
    }
    cllm_grammar_matcher_destroy(m);
    cllm_grammar_destroy(g);

    /* "é}" : the e-acute may come whole or as two tokens, and a token may
     * finish one character and start the next symbol. */
    g = parse_ok("root ::= \"\\u00e9\" \"}\"");
    m = g ? cllm_grammar_matcher_create(g, &err) : NULL;
    if (v && m) {
        mask_string(m, v, s, sizeof s);
        CHECK(!strcmp(s, "11,13"), "start: first byte or whole character, got %s", s);
        CHECK(cllm_grammar_matcher_accept_token(m, v, 11), "first byte");
        CHECK(!cllm_grammar_matcher_complete(m), "half a character is not complete");
        mask_string(m, v, s, sizeof s);
        CHECK(!strcmp(s, "12,14"), "after the first byte: the second, or second+brace, got %s", s);
        CHECK(cllm_grammar_matcher_accept_token(m, v, 14), "second byte then brace");
        CHECK(cllm_grammar_matcher_complete(m), "complete");
    }
    cllm_grammar_matcher_destroy(m);
    cllm_grammar_destroy(g);

    /* A lead byte alone is judged by the characters it can still become:
     * 0xE0 starts only U+0800..U+0FFF, never an ASCII letter. */
    {
        const uint8_t *b[3] = {(const uint8_t *)"a", (const uint8_t *)"\xe0", (const uint8_t *)"\xf0"};
        size_t l[3] = {1, 1, 1};
        cllm_grammar_vocab *lead = cllm_grammar_vocab_create(3, b, l, NULL, 0, &err);
        g = parse_ok("root ::= [a-z]");
        m = g && lead ? cllm_grammar_matcher_create(g, &err) : NULL;
        uint8_t allowed[3];
        if (m) CHECK(cllm_grammar_matcher_mask(m, lead, allowed) == 1 && allowed[0], "only 'a', not 0xE0 or 0xF0");
        cllm_grammar_matcher_destroy(m);
        cllm_grammar_destroy(g);
        cllm_grammar_vocab_destroy(lead);
    }

    /* A partial character is only allowed when some completion could match. */
    g = parse_ok("root ::= [a-z\\u00e0-\\u00e5]");
    m = g ? cllm_grammar_matcher_create(g, &err) : NULL;
    if (v && m) {
        mask_string(m, v, s, sizeof s);
        CHECK(!strcmp(s, "3,10,11"), "'a', 'x', and 0xC3 (C3 80..C3 A5 are in the class), got %s", s);
        CHECK(cllm_grammar_matcher_accept_token(m, v, 11), "0xC3");
        mask_string(m, v, s, sizeof s);
        CHECK(!strcmp(s, ""), "0xC3 0xA9 (e-acute, U+E9) is outside [a-z U+E0-U+E5], got %s", s);
    }
    cllm_grammar_matcher_destroy(m);
    cllm_grammar_destroy(g);
    cllm_grammar_vocab_destroy(v);
}

static void test_grammar_sampler_stage_masks_and_stops(void) {
    cllm_grammar_vocab *v = make_vocab();
    cllm_grammar *g = parse_ok("root ::= \"{\\\"a\\\":\" [0-9] \"}\"");
    cllm_error err;
    cllm_sampler_params p = cllm_sampler_default_params();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    for (uint64_t seed = 1; v && g && seed <= 20; seed++) {
        p.seed = seed;
        cllm_sampler *s = cllm_sampler_create(&p, N_VOCAB, &err);
        CHECK(s && cllm_sampler_set_grammar(s, g, v, &err) == CLLM_OK, "sampler with grammar: %s", err.msg);
        if (!s) continue;
        float logits[N_VOCAB];
        cllm_rng rng;
        cllm_rng_seed(&rng, seed * 77);
        char out[64] = "";
        int steps = 0;
        while (steps++ < 20 && !cllm_sampler_grammar_finished(s)) {
            for (int i = 0; i < N_VOCAB; i++) logits[i] = 4.0f * cllm_rng_float(&rng);
            logits[10] = 50.0f; /* the model loves 'x', which the grammar never allows */
            int32_t t = cllm_sampler_sample(s, logits, NULL, NULL, 0);
            CHECK(t >= 0 && t != 10, "seed %llu: sampled %d", (unsigned long long)seed, t);
            if (t < 0 || t == EOG_ID) break;
            CHECK(cllm_sampler_advance(s, t), "advance");
            strncat(out, vocab_text[t], sizeof out - strlen(out) - 1);
        }
        CHECK(!strcmp(out, "{\"a\":1}"), "seed %llu: output '%s'", (unsigned long long)seed, out);
        CHECK(cllm_sampler_grammar_finished(s), "finished");
        cllm_sampler_destroy(s);
    }
    /* Dead end: the vocabulary cannot spell 'q'. */
    cllm_grammar *q = parse_ok("root ::= \"q\"");
    cllm_sampler *s = cllm_sampler_create(&p, N_VOCAB, &err);
    if (q && s && v && cllm_sampler_set_grammar(s, q, v, &err) == CLLM_OK) {
        float logits[N_VOCAB] = {0};
        CHECK(cllm_sampler_sample(s, logits, NULL, NULL, 0) == CLLM_SAMPLER_GRAMMAR_DEAD_END, "dead end");
    }
    cllm_sampler_destroy(s);
    cllm_grammar_destroy(q);
    cllm_grammar_destroy(g);
    cllm_grammar_vocab_destroy(v);
}

/* ---- JSON Schema --------------------------------------------------------- */

static cllm_grammar *schema_grammar(const char *schema) {
    char *gbnf = NULL;
    cllm_error err;
    cllm_status st = cllm_json_schema_to_gbnf(schema, strlen(schema), "s", &gbnf, &err);
    CHECK(st == CLLM_OK, "schema %s: %s", schema, err.msg);
    if (st != CLLM_OK) return NULL;
    cllm_grammar *g = NULL;
    st = cllm_grammar_parse(gbnf, strlen(gbnf), "s", &g, &err);
    CHECK(st == CLLM_OK, "generated grammar does not parse: %s\n%s", err.msg, gbnf);
    free(gbnf);
    return g;
}

static void test_grammar_json_schema_table(void) {
    static const struct {
        const char *schema;
        const char *yes[4], *no[4];
    } cases[] = {
        {"{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"}},"
         "\"required\":[\"name\"]}",
         {"{\"name\": \"Ann\", \"age\": 31}", "{\"name\":\"Bo\"}", "{ \"name\" : \"\" }"},
         {"{\"age\": 3}", "{\"name\": 1}", "{\"name\": \"a\", \"age\": 1.5}", "{\"name\":\"a\",\"x\":1}"}},
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"boolean\"},\"b\":{\"type\":\"null\"},"
         "\"c\":{\"type\":\"number\"}}}",
         {"{}", "{\"b\": null}", "{\"a\": true, \"c\": -1.5e3}", "{\"a\": false, \"b\": null, \"c\": 0}"},
         {"{\"c\": 1, \"a\": true}", "{\"a\": 1}", "{,}", "{\"a\": true,}"}},
        {"{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":2,\"maxItems\":3}",
         {"[1, 2]", "[1,2,3]", "[ -4 , 5 ]"},
         {"[]", "[1]", "[1,2,3,4]", "[1, \"2\"]"}},
        {"{\"type\":\"array\",\"items\":{\"enum\":[\"red\",\"green\",7,null]}}",
         {"[]", "[\"red\", 7]", "[null,\"green\"]"},
         {"[\"blue\"]", "[8]", "[\"Red\"]"}},
        {"{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"point\"},\"at\":{\"type\":\"object\","
         "\"properties\":{\"x\":{\"type\":\"number\"},\"y\":{\"type\":\"number\"}},\"required\":[\"x\",\"y\"],"
         "\"additionalProperties\":false}},\"required\":[\"kind\",\"at\"]}",
         {"{\"kind\": \"point\", \"at\": {\"x\": 1, \"y\": 2}}"},
         {"{\"kind\": \"line\", \"at\": {\"x\": 1, \"y\": 2}}", "{\"kind\": \"point\", \"at\": {\"x\": 1}}"}},
        {"{\"type\":[\"string\",\"null\"],\"maxLength\":3}", {"\"abc\"", "null", "\"\""}, {"\"abcd\"", "1"}},
        {"{\"type\":\"string\",\"minLength\":2}", {"\"ab\"", "\"\xed\x95\x9c\xea\xb8\x80\""}, {"\"a\""}},
        {"{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"array\",\"items\":{\"type\":\"string\"}}]}",
         {"12", "[\"x\"]"}, {"1.5", "[1]"}},
        {"{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}}",
         {"{}", "{\"any\": 1, \"keys\": 2}"}, {"{\"a\": \"b\"}"}},
        {"{}", {"1", "{\"a\": [null]}", "\"s\""}, {"nul", "{a: 1}"}},
        {"{\"type\":\"object\",\"properties\":{\"q\\\"uote\":{\"type\":\"string\"}},\"required\":[\"q\\\"uote\"],"
         "\"title\":\"t\",\"description\":\"annotations are ignored\"}",
         {"{\"q\\\"uote\": \"x\"}"}, {"{\"q\"uote\": \"x\"}"}},
        {"{\"enum\":[\"\xed\x95\x9c\", \"\xf0\x9f\x98\x80\", \"tab\\t\"]}", {"\"\xed\x95\x9c\"", "\"\xf0\x9f\x98\x80\"", "\"tab\\t\""},
         {"\"\xed\x95\"", "\"tab\t\""}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cllm_grammar *g = schema_grammar(cases[i].schema);
        if (!g) continue;
        for (int k = 0; k < 4 && cases[i].yes[k]; k++)
            CHECK(matches_g(g, cases[i].yes[k], strlen(cases[i].yes[k])) == 1, "schema %zu should accept %s", i,
                  cases[i].yes[k]);
        for (int k = 0; k < 4 && cases[i].no[k]; k++)
            CHECK(matches_g(g, cases[i].no[k], strlen(cases[i].no[k])) == 0, "schema %zu should reject %s", i,
                  cases[i].no[k]);
        cllm_grammar_destroy(g);
    }
}

/* Patterns, formats and integer bounds: schema -> accepted / refused JSON
 * texts (each text is a whole JSON value). */
static void test_grammar_json_schema_string_pattern_format_bounds(void) {
    static const struct {
        const char *schema;
        const char *yes[6], *no[6];
    } cases[] = {
        /* anchored: the whole string */
        {"{\"type\":\"string\",\"pattern\":\"^[a-z]+\\\\d{2,3}$\"}", {"\"ab12\"", "\"x999\""},
         {"\"ab1\"", "\"ab1234\"", "\"12\"", "\"aB12\"", "\"ab12 \""}},
        /* unanchored: anywhere in the string */
        {"{\"type\":\"string\",\"pattern\":\"ab+c\"}", {"\"abc\"", "\"xxabbbcyy\"", "\"\\\"abc\\\\\""},
         {"\"ac\"", "\"abxc\"", "\"\""}},
        {"{\"type\":\"string\",\"pattern\":\"^a|b$\"}", {"\"a\"", "\"axx\"", "\"xxb\"", "\"b\""}, {"\"xa\"", "\"bx\""}},
        /* groups, alternation, optional, lazy, escapes of metacharacters */
        {"{\"type\":\"string\",\"pattern\":\"^(?:ab|c)*?x?\\\\.(?<tail>[0-9]{2})$\"}",
         {"\"abcab.12\"", "\"x.00\"", "\".55\"", "\"cx.12\""}, {"\"abx.1\"", "\"a.12\"", "\"xx.12\"", "\".123\""}},
        /* '.' is any character but a line terminator; '"' and '\\' travel as JSON escapes */
        {"{\"type\":\"string\",\"pattern\":\"^.{3}$\"}", {"\"a\\\"\\\\\"", "\"\xed\x95\x9c\xea\xb8\x80!\"", "\"\\t  \""},
         {"\"a\\nb\"", "\"ab\"", "\"a\"b\""}},
        /* classes: negation, ranges, class escapes, \s \S \w \W \D */
        {"{\"type\":\"string\",\"pattern\":\"^[^\\\\s,]+,\\\\s?\\\\w\\\\W\\\\D$\"}",
         {"\"ab,_.x\"", "\"a, 1-y\"", "\"\\\"x,\\tZ!!\""}, {"\"a b,c.d\"", "\"ab,c.1\"", "\"ab,cd1\"", "\"a,  1.x\""}},
        {"{\"type\":\"string\",\"pattern\":\"^[\\\\u0000-\\\\u001f]$\"}", {"\"\\n\"", "\"\\u001F\"", "\"\\u0000\""},
         {"\" \"", "\"\\\"\"", "\"a\""}},
        {"{\"type\":\"string\",\"pattern\":\"^\\\\u00e9\\\\x41[\\\\-+]\\\\/\\\\\\\\$\"}",
         {"\"\xc3\xa9" "A-/\\\\\"", "\"\xc3\xa9" "A+/\\\\\""},
         {"\"eA-/\\\\\"", "\"\xc3\xa9" "A*/\\\\\""}},
        {"{\"type\":\"object\",\"properties\":{\"id\":{\"type\":[\"string\",\"null\"],\"pattern\":\"^[A-Z]{2}-\\\\d+$\"}},"
         "\"required\":[\"id\"]}",
         {"{\"id\": \"AB-12\"}", "{\"id\": null}"}, {"{\"id\": \"ab-12\"}", "{\"id\": \"AB-\"}", "{\"id\": 12}"}},
        /* formats */
        {"{\"type\":\"string\",\"format\":\"date\"}", {"\"2024-02-29\"", "\"1999-12-31\""},
         {"\"2024-13-01\"", "\"2024-00-10\"", "\"2024-1-01\"", "\"2024-01-32\"", "\"24-01-01\""}},
        {"{\"type\":\"string\",\"format\":\"time\"}", {"\"23:59:60Z\"", "\"08:30:00.123+05:30\""},
         {"\"24:00:00Z\"", "\"08:30:00\"", "\"8:30:00Z\"", "\"08:61:00Z\""}},
        {"{\"type\":\"string\",\"format\":\"date-time\"}", {"\"2024-05-06T07:08:09Z\"", "\"2024-05-06T07:08:09.5-01:00\""},
         {"\"2024-05-06 07:08:09Z\"", "\"2024-05-06\""}},
        {"{\"type\":\"string\",\"format\":\"uuid\"}", {"\"123e4567-e89b-12d3-a456-426614174000\""},
         {"\"123e4567e89b12d3a456426614174000\"", "\"123e4567-e89b-12d3-a456-42661417400g\""}},
        {"{\"type\":\"string\",\"format\":\"ipv4\"}", {"\"192.168.0.1\"", "\"255.255.255.0\"", "\"0.0.0.0\""},
         {"\"256.1.1.1\"", "\"01.1.1.1\"", "\"1.1.1\""}},
        /* integer bounds */
        {"{\"type\":\"integer\",\"minimum\":-15,\"maximum\":123}", {"-15", "-9", "0", "7", "99", "123"},
         {"-16", "124", "200", "1000", "-0", "05"}},
        {"{\"type\":\"integer\",\"exclusiveMinimum\":7,\"exclusiveMaximum\":10}", {"8", "9"}, {"7", "10", "-8"}},
        {"{\"type\":\"integer\",\"minimum\":100}", {"100", "999", "1000", "123456789012"}, {"99", "-100", "0"}},
        {"{\"type\":\"integer\",\"maximum\":-3}", {"-3", "-1000", "-9999999999999999"}, {"-2", "0", "3"}},
        {"{\"type\":[\"integer\",\"null\"],\"minimum\":2.5,\"maximum\":4}", {"3", "4", "null"}, {"2", "5", "2.5"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cllm_grammar *g = schema_grammar(cases[i].schema);
        if (!g) continue;
        for (int k = 0; k < 6 && cases[i].yes[k]; k++)
            CHECK(matches_g(g, cases[i].yes[k], strlen(cases[i].yes[k])) == 1, "schema %zu should accept %s", i,
                  cases[i].yes[k]);
        for (int k = 0; k < 6 && cases[i].no[k]; k++)
            CHECK(matches_g(g, cases[i].no[k], strlen(cases[i].no[k])) == 0, "schema %zu should reject %s", i,
                  cases[i].no[k]);
        cllm_grammar_destroy(g);
    }
}

/* Random patterns over {a, b, "} from literals, classes, '.', groups, '|'
 * and quantifiers, each with and without anchors, against POSIX extended
 * regular expressions (the same language for this subset): every string of
 * up to 4 characters of {a, b, c, "} must be accepted (as JSON text) exactly
 * when regexec finds a match. */
static void gen_pattern(cllm_rng *r, char *out, size_t cap, int depth) {
    int n = 1 + (int)(cllm_rng_u64(r) % 3);
    for (int i = 0; i < n; i++) {
        int k = (int)(cllm_rng_u64(r) % (depth >= 2 ? 4 : 6));
        static const char *const atoms[] = {"a", "b", "\"", "[ab]", "[^a]", "."};
        if (k < 4 || depth >= 2) {
            strncat(out, atoms[cllm_rng_u64(r) % 6], cap - strlen(out) - 1);
        } else if (k == 4) {
            strncat(out, "(", cap - strlen(out) - 1);
            gen_pattern(r, out, cap, depth + 1);
            strncat(out, "|", cap - strlen(out) - 1);
            gen_pattern(r, out, cap, depth + 1);
            strncat(out, ")", cap - strlen(out) - 1);
        } else {
            strncat(out, "(", cap - strlen(out) - 1);
            gen_pattern(r, out, cap, depth + 1);
            strncat(out, ")", cap - strlen(out) - 1);
        }
        static const char *const quants[] = {"", "", "", "*", "+", "?", "{2}", "{1,2}", "{0,}"};
        strncat(out, quants[cllm_rng_u64(r) % 9], cap - strlen(out) - 1);
    }
}

static void test_grammar_json_schema_pattern_matches_posix_regex(void) {
    cllm_rng rng;
    cllm_rng_seed(&rng, 1234);
    int compared = 0, refused = 0;
    for (int t = 0; t < 300; t++) {
        char body[256] = "", pat[300];
        gen_pattern(&rng, body, sizeof body, 0);
        int anchor = (int)(cllm_rng_u64(&rng) % 4); /* none, ^, $, both */
        snprintf(pat, sizeof pat, "%s%s%s", anchor & 1 ? "^" : "", body, anchor & 2 ? "$" : "");
        regex_t re;
        if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0) {
            CHECK(0, "posix regcomp refused generated pattern %s", pat);
            continue;
        }
        /* The schema: the pattern as a JSON string ('"' escaped). */
        char schema[800] = "{\"type\":\"string\",\"pattern\":\"";
        for (const char *p = pat; *p; p++) {
            size_t l = strlen(schema);
            if (*p == '"') schema[l++] = '\\';
            schema[l++] = *p;
            schema[l] = 0;
        }
        strcat(schema, "\"}");
        char *gbnf = NULL;
        cllm_error err;
        if (cllm_json_schema_to_gbnf(schema, strlen(schema), "s", &gbnf, &err) != CLLM_OK) {
            /* the one refusal this generator can reach */
            CHECK(strstr(err.msg, "unbounded repetition of something that can be empty"), "pattern %s: %s", pat,
                  err.msg);
            refused++;
            regfree(&re);
            continue;
        }
        cllm_grammar *g = NULL;
        if (cllm_grammar_parse(gbnf, strlen(gbnf), "s", &g, &err) != CLLM_OK) {
            CHECK(0, "pattern %s: the grammar does not parse: %s\n%s", pat, err.msg, gbnf);
            free(gbnf);
            regfree(&re);
            continue;
        }
        static const char alphabet[] = "abc\"";
        int mismatches = 0;
        for (int len = 0; len <= 4; len++) {
            int total = 1;
            for (int k = 0; k < len; k++) total *= 4;
            for (int code = 0; code < total; code++) {
                char str[8], json[20];
                size_t j = 0;
                json[j++] = '"';
                for (int k = 0, c = code; k < len; k++, c /= 4) {
                    str[k] = alphabet[c % 4];
                    if (str[k] == '"') json[j++] = '\\';
                    json[j++] = str[k];
                }
                str[len] = 0;
                json[j++] = '"';
                int want = regexec(&re, str, 0, NULL, 0) == 0;
                int got = matches_g(g, json, j);
                if (got != want && mismatches++ == 0)
                    CHECK(0, "pattern %s on '%s': grammar %d, regexec %d\n%s", pat, str, got, want, gbnf);
            }
        }
        compared++;
        cllm_grammar_destroy(g);
        free(gbnf);
        regfree(&re);
    }
    fprintf(stderr, "  pattern differential: %d patterns compared on 341 strings each, %d refused\n", compared,
            refused);
    CHECK(compared >= 200, "only %d of 300 random patterns were compared (%d refused)", compared, refused);
}

/* Integer bounds: random [lo, hi] (some one-sided) against the integers
 * around both ends and random ones across and beyond the range. */
static void test_grammar_json_schema_integer_bounds_random(void) {
    static const int64_t picks[] = {0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 5000, 12345, 99999, 100000};
    cllm_rng rng;
    cllm_rng_seed(&rng, 99);
    int checked = 0;
    for (int t = 0; t < 120; t++) {
        int64_t v[2];
        for (int k = 0; k < 2; k++) {
            v[k] = cllm_rng_u64(&rng) % 2 ? picks[cllm_rng_u64(&rng) % 14] : (int64_t)(cllm_rng_u64(&rng) % 200000);
            if (cllm_rng_u64(&rng) % 3 == 0) v[k] = -v[k];
        }
        int64_t lo = v[0] < v[1] ? v[0] : v[1], hi = v[0] < v[1] ? v[1] : v[0];
        int sides = (int)(cllm_rng_u64(&rng) % 3); /* both, minimum only, maximum only */
        char schema[200];
        if (sides == 0)
            snprintf(schema, sizeof schema, "{\"type\":\"integer\",\"minimum\":%lld,\"maximum\":%lld}", (long long)lo,
                     (long long)hi);
        else if (sides == 1)
            snprintf(schema, sizeof schema, "{\"type\":\"integer\",\"minimum\":%lld}", (long long)lo);
        else
            snprintf(schema, sizeof schema, "{\"type\":\"integer\",\"maximum\":%lld}", (long long)hi);
        cllm_grammar *g = schema_grammar(schema);
        if (!g) continue;
        int64_t span = hi - lo + 200;
        for (int k = 0; k < 60; k++) {
            int64_t x; /* around lo, around hi, across the range, and one anywhere */
            if (k < 10) x = lo - 5 + k;
            else if (k < 20) x = hi - 5 + (k - 10);
            else if (k < 59) x = lo - 100 + (int64_t)(cllm_rng_u64(&rng) % (uint64_t)span);
            else x = (int64_t)(cllm_rng_u64(&rng) % 20000000) - 10000000;
            int want = (sides == 2 || x >= lo) && (sides == 1 || x <= hi);
            char text[32];
            snprintf(text, sizeof text, "%lld", (long long)x);
            int got = matches_g(g, text, strlen(text));
            CHECK(got == want, "%s on %s: grammar %d, want %d", schema, text, got, want);
            checked++;
        }
        cllm_grammar_destroy(g);
    }
    CHECK(checked == 120 * 60, "checked %d", checked);
}

static void test_grammar_json_schema_root_wraps_the_value(void) {
    static const char schema[] = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},"
                                 "\"required\":[\"a\"]}";
    char *gbnf = NULL;
    cllm_error err;
    CHECK(cllm_json_schema_to_gbnf_root(schema, strlen(schema), "s", "\"<x>\" schema (\",\" schema)* \"</x>\"", &gbnf,
                                        &err) == CLLM_OK,
          "%s", err.msg);
    cllm_grammar *g = NULL;
    if (gbnf && cllm_grammar_parse(gbnf, strlen(gbnf), "s", &g, &err) == CLLM_OK) {
        CHECK(matches_g(g, "<x>{\"a\": 1}</x>", 15) == 1, "one value");
        CHECK(matches_g(g, "<x>{\"a\": 1},{\"a\":2}</x>", 23) == 1, "two values");
        CHECK(matches_g(g, "{\"a\": 1}", 8) == 0, "the wrapper is required");
    } else {
        CHECK(0, "wrapped grammar: %s", err.msg);
    }
    cllm_grammar_destroy(g);
    free(gbnf);
}

static void test_grammar_json_schema_refusals_name_the_keyword(void) {
    static const struct {
        const char *schema, *expect;
    } cases[] = {
        {"{\"type\":\"string\",\"format\":\"email\"}",
         "s: unsupported JSON Schema keyword 'format' at /: format 'email' is not supported"},
        {"{\"type\":\"string\",\"pattern\":\"(a)\\\\1\"}",
         "unsupported JSON Schema keyword 'pattern' at /: a backreference '\\1' (at offset 3 of the pattern)"},
        {"{\"type\":\"string\",\"pattern\":\"^(?=a)\"}", "'pattern' at /: a lookahead '(?='"},
        {"{\"type\":\"string\",\"pattern\":\"(?<!a)b\"}", "'pattern' at /: a lookbehind '(?<!'"},
        {"{\"type\":\"string\",\"pattern\":\"\\\\bword\"}", "the word boundary assertion '\\b'"},
        {"{\"type\":\"string\",\"pattern\":\"\\\\p{L}\"}", "a Unicode property escape '\\p'"},
        {"{\"type\":\"string\",\"pattern\":\"a^b\"}", "the anchor '^' other than at the start"},
        {"{\"type\":\"string\",\"pattern\":\"(a$)\"}", "the anchor '$' other than at the end"},
        {"{\"type\":\"string\",\"pattern\":\"(a?)*\"}", "an unbounded repetition of something that can be empty"},
        {"{\"type\":\"string\",\"pattern\":\"a{2000}\"}", "a repetition count above 1000"},
        {"{\"type\":\"string\",\"pattern\":\"(ab\"}", "'pattern' at / is not a valid regular expression: missing ')'"},
        {"{\"type\":\"string\",\"pattern\":\"ab)\"}", "not a valid regular expression: unbalanced ')'"},
        {"{\"type\":\"string\",\"pattern\":\"[a-\"}", "unterminated character class"},
        {"{\"type\":\"string\",\"pattern\":\"[z-a]\"}", "the range's end comes before its start"},
        {"{\"type\":\"string\",\"pattern\":\"*a\"}", "'*' with nothing to repeat"},
        {"{\"type\":\"string\",\"pattern\":\"a{2,1}\"}", "a repetition {m,n} with n < m"},
        {"{\"type\":\"string\",\"pattern\":\"[^\\\\s\\\\S]\"}", "a character class that matches nothing"},
        {"{\"type\":\"string\",\"pattern\":\"\\\\q\"}", "unknown escape '\\q'"},
        {"{\"type\":\"string\",\"pattern\":\"a\",\"maxLength\":3}", "'pattern' together with 'minLength' or 'maxLength'"},
        {"{\"type\":\"string\",\"pattern\":\"a\",\"format\":\"date\"}", "'pattern' and 'format' together"},
        {"{\"pattern\":\"a\"}", "'pattern' at / needs a 'type'"},
        {"{\"minimum\":1}", "'minimum' at / needs a 'type'"},
        {"{\"type\":\"number\",\"minimum\":0}", "supported on 'integer' only"},
        {"{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", "no integer at / is within its minimum and maximum"},
        {"{\"type\":\"integer\",\"exclusiveMinimum\":true}", "the boolean form of draft 4 is not supported"},
        {"{\"type\":\"integer\",\"multipleOf\":2}", "unsupported JSON Schema keyword 'multipleOf'"},
        {"{\"oneOf\":[{\"type\":\"string\"}]}", "unsupported JSON Schema keyword 'oneOf' at /"},
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#/$defs/x\"}}}",
         "unsupported JSON Schema keyword '$ref' at /properties/a"},
        {"{\"type\":\"object\",\"properties\":{\"a\":{}},\"additionalProperties\":true}",
         "unsupported JSON Schema keyword 'additionalProperties'"},
        {"{\"type\":\"object\",\"properties\":{\"a\":{}},\"required\":[\"b\"]}",
         "'required' at / names 'b', which is not in 'properties'"},
        {"{\"type\":\"strin\"}", "unknown type 'strin'"},
        {"{\"type\":\"array\",\"minItems\":3,\"maxItems\":1}", "maxItems < minItems"},
        {"{\"type\":\"array\",\"minItems\":-1}", "'minItems' at / must be a non-negative integer"},
        {"{\"enum\":[]}", "'enum' at / must be a non-empty array"},
        {"{not json", "s: the schema is not valid JSON"},
        {"[1]", "the schema at / must be an object"},
        {"{\"type\":\"object\",\"properties\":{\"b\xff\":{}}}", "is not valid UTF-8"}, /* found by fuzz_grammar */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *gbnf = NULL;
        cllm_error err = {0};
        cllm_status st = cllm_json_schema_to_gbnf(cases[i].schema, strlen(cases[i].schema), "s", &gbnf, &err);
        CHECK(st != CLLM_OK && !gbnf, "schema %zu should be refused: %s", i, cases[i].schema);
        CHECK(st == CLLM_OK || strstr(err.msg, cases[i].expect), "schema %zu: message '%s' lacks '%s'", i, err.msg,
              cases[i].expect);
        free(gbnf);
    }
}

/* ---- differential: random grammars against a backtracking reference ------ */

enum { N_LIT, N_CLASS, N_REF, N_SEQ, N_ALT, N_REP };
typedef struct node {
    int kind;
    char text[4];    /* N_LIT: the literal; N_CLASS: the set */
    int neg, ref, min, max; /* max -1: unbounded */
    struct node *kid[3];
    int n;
} node;

#define MAX_NODES 4096
static node pool[MAX_NODES];
static int n_pool;

static node *gen_node(cllm_rng *r, int rule, int n_rules, int depth) {
    node *x = &pool[n_pool++];
    memset(x, 0, sizeof *x);
    int k = (int)(cllm_rng_u64(r) % (depth >= 3 ? 3 : 6));
    if (k == N_REF && rule + 1 >= n_rules) k = N_LIT;
    x->kind = k;
    switch (k) {
    case N_LIT: {
        int len = (int)(cllm_rng_u64(r) % 3); /* 0..2, "" included */
        for (int i = 0; i < len; i++) x->text[i] = (char)('a' + cllm_rng_u64(r) % 3);
        break;
    }
    case N_CLASS:
        x->neg = (int)(cllm_rng_u64(r) % 3 == 0);
        x->text[0] = (char)('a' + cllm_rng_u64(r) % 3);
        if (cllm_rng_u64(r) % 2) x->text[1] = (char)('a' + cllm_rng_u64(r) % 3);
        break;
    case N_REF: x->ref = rule + 1 + (int)(cllm_rng_u64(r) % (uint64_t)(n_rules - rule - 1)); break;
    case N_SEQ:
    case N_ALT:
        x->n = 2 + (int)(cllm_rng_u64(r) % 2);
        for (int i = 0; i < x->n; i++) x->kid[i] = gen_node(r, rule, n_rules, depth + 1);
        break;
    case N_REP: {
        static const int forms[][2] = {{0, -1}, {1, -1}, {0, 1}, {2, 2}, {1, 3}, {0, 2}, {2, -1}};
        int f = (int)(cllm_rng_u64(r) % 7);
        x->min = forms[f][0];
        x->max = forms[f][1];
        x->n = 1;
        x->kid[0] = gen_node(r, rule, n_rules, depth + 1);
        break;
    }
    }
    return x;
}

static void print_node(FILE *f, const node *x) {
    switch (x->kind) {
    case N_LIT: fprintf(f, "\"%s\"", x->text); break;
    case N_CLASS: fprintf(f, "[%s%s]", x->neg ? "^" : "", x->text); break;
    case N_REF: fprintf(f, "r%d", x->ref); break;
    case N_SEQ:
    case N_ALT:
        fputc('(', f);
        for (int i = 0; i < x->n; i++) {
            if (i) fputs(x->kind == N_ALT ? " | " : " ", f);
            print_node(f, x->kid[i]);
        }
        fputc(')', f);
        break;
    case N_REP:
        fputc('(', f);
        print_node(f, x->kid[0]);
        fputc(')', f);
        if (x->min == 0 && x->max == -1) fputc('*', f);
        else if (x->min == 1 && x->max == -1) fputc('+', f);
        else if (x->min == 0 && x->max == 1) fputc('?', f);
        else if (x->max == -1) fprintf(f, "{%d,}", x->min);
        else if (x->min == x->max) fprintf(f, "{%d}", x->min);
        else fprintf(f, "{%d,%d}", x->min, x->max);
        break;
    }
}

static node *rule_body[4];

/* The set of positions where x can end when started at any position of
 * `from` (bit i = position i), on s[0..len). */
static uint32_t ref_ends(const node *x, const char *s, int len, uint32_t from) {
    uint32_t out = 0;
    switch (x->kind) {
    case N_LIT: {
        int l = (int)strlen(x->text);
        for (int p = 0; p <= len; p++)
            if ((from >> p & 1) && p + l <= len && !memcmp(s + p, x->text, (size_t)l)) out |= 1u << (p + l);
        return out;
    }
    case N_CLASS:
        for (int p = 0; p < len; p++)
            if ((from >> p & 1) && ((strchr(x->text, s[p]) != NULL) != x->neg)) out |= 1u << (p + 1);
        return out;
    case N_REF: return ref_ends(rule_body[x->ref], s, len, from);
    case N_SEQ:
        out = from;
        for (int i = 0; i < x->n; i++) out = ref_ends(x->kid[i], s, len, out);
        return out;
    case N_ALT:
        for (int i = 0; i < x->n; i++) out |= ref_ends(x->kid[i], s, len, from);
        return out;
    case N_REP: {
        uint32_t cur = from;
        for (int k = 0; k <= len + 2 + x->min; k++) {
            if (k >= x->min && (x->max < 0 || k <= x->max)) out |= cur;
            if (x->max >= 0 && k >= x->max) break;
            cur = ref_ends(x->kid[0], s, len, cur);
        }
        return out;
    }
    }
    return 0;
}

static void test_grammar_random_grammars_match_reference(void) {
    cllm_rng r;
    cllm_rng_seed(&r, 1234);
    int tested = 0, refused = 0, strings = 0;
    /* every string over {a,b,c} of length <= 5, and a vocabulary of all of
     * length 1..2 for the mask check */
    static char all[400][6];
    int n_all = 0;
    for (int len = 0; len <= 5; len++) {
        int total = 1;
        for (int i = 0; i < len; i++) total *= 3;
        for (int v = 0; v < total; v++) {
            int x = v;
            for (int i = 0; i < len; i++, x /= 3) all[n_all][i] = (char)('a' + x % 3);
            all[n_all++][len] = 0;
        }
    }
    const uint8_t *vb[13];
    size_t vl[13];
    for (int i = 0; i < 12; i++) vb[i] = (const uint8_t *)all[1 + i], vl[i] = strlen(all[1 + i]);
    vb[12] = (const uint8_t *)"", vl[12] = 0;
    int32_t eog = 12;
    cllm_error err;
    cllm_grammar_vocab *v = cllm_grammar_vocab_create(13, vb, vl, &eog, 1, &err);
    for (int trial = 0; trial < 400; trial++) {
        n_pool = 0;
        int n_rules = 1 + (int)(cllm_rng_u64(&r) % 4);
        for (int i = 0; i < n_rules; i++) rule_body[i] = gen_node(&r, i, n_rules, 0);
        char *text = NULL;
        size_t tlen = 0;
        FILE *f = open_memstream(&text, &tlen);
        for (int i = 0; i < n_rules; i++) {
            fprintf(f, i == 0 ? "root ::= " : "r%d ::= ", i);
            print_node(f, rule_body[i]);
            fputc('\n', f);
        }
        fclose(f);
        cllm_grammar *g = NULL;
        if (cllm_grammar_parse(text, tlen, "random", &g, &err) != CLLM_OK) {
            CHECK(strstr(err.msg, "left-recursive"), "random grammar refused for another reason: %s\n%s", err.msg,
                  text);
            refused++;
            free(text);
            continue;
        }
        tested++;
        int bad = 0;
        for (int i = 0; i < n_all && bad < 3; i++) {
            int len = (int)strlen(all[i]);
            int want = (ref_ends(rule_body[0], all[i], len, 1u) >> len) & 1;
            int got = matches_g(g, all[i], (size_t)len);
            strings++;
            if (got != want) {
                bad++;
                CHECK(0, "grammar\n%son '%s': engine %d, reference %d", text, all[i], got, want);
            }
        }
        /* The trie walk agrees with accepting each token alone. */
        cllm_grammar_matcher *m = cllm_grammar_matcher_create(g, &err);
        uint8_t allowed[13];
        cllm_grammar_matcher_mask(m, v, allowed);
        for (int t = 0; t < 12; t++) {
            cllm_grammar_matcher *one = cllm_grammar_matcher_create(g, &err);
            int ok = cllm_grammar_matcher_accept(one, vb[t], vl[t]);
            CHECK(ok == allowed[t], "mask and accept disagree on '%s' under\n%s", all[1 + t], text);
            CHECK(cllm_grammar_matcher_check_token(m, v, t) == allowed[t], "check_token and mask disagree on '%s'",
                  all[1 + t]);
            cllm_grammar_matcher_destroy(one);
        }
        CHECK(allowed[12] == cllm_grammar_matcher_complete(m), "eog allowed iff complete");
        uint8_t again[13]; /* check_token left the matcher as it was */
        cllm_grammar_matcher_mask(m, v, again);
        CHECK(!memcmp(allowed, again, sizeof again), "the mask changed after check_token");
        cllm_grammar_matcher_destroy(m);
        cllm_grammar_destroy(g);
        free(text);
    }
    cllm_grammar_vocab_destroy(v);
    fprintf(stderr, "  differential: %d grammars, %d strings, %d refused as left-recursive\n", tested, strings,
            refused);
    CHECK(tested >= 200, "too few random grammars were usable: %d", tested);
}

int main(void) {
    TEST_RUN(test_grammar_accept_reject_table);
    TEST_RUN(test_grammar_json_grammar_table);
    TEST_RUN(test_grammar_parse_errors_name_line_and_column);
    TEST_RUN(test_grammar_mask_spans_symbols_and_utf8);
    TEST_RUN(test_grammar_sampler_stage_masks_and_stops);
    TEST_RUN(test_grammar_json_schema_table);
    TEST_RUN(test_grammar_json_schema_string_pattern_format_bounds);
    TEST_RUN(test_grammar_json_schema_pattern_matches_posix_regex);
    TEST_RUN(test_grammar_json_schema_integer_bounds_random);
    TEST_RUN(test_grammar_json_schema_root_wraps_the_value);
    TEST_RUN(test_grammar_json_schema_refusals_name_the_keyword);
    TEST_RUN(test_grammar_random_grammars_match_reference);
    return test_finish();
}
