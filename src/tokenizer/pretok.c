/*
 * pretok.c: pre-tokenization, the regex split that runs before BPE merges.
 *
 * Does: the GPT-2, cl100k (GPT-4) and o200k (GPT-4o) split patterns exactly
 * as tiktoken declares them, cl100k with single-digit numbers
 * ("gpt4-digits"), compiled with PCRE2 (UTF, Unicode properties, JIT),
 * custom patterns, "none", and a finder of chunk boundaries that are
 * safe for parallel encoding.
 * Does not: merge bytes (encode.c) or handle special tokens (encode.c).
 *
 * Invalid UTF-8 is defined: the pattern is compiled with
 * PCRE2_MATCH_INVALID_UTF, so matching never starts or runs inside an invalid
 * sequence; the bytes between matches (invalid sequences, or anything a
 * custom pattern does not cover) are emitted as pre-tokens of their own, so
 * the pieces always tile the input exactly.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/tokenizer/tokenizer.h"

/* The patterns of tiktoken's gpt2, cl100k_base and o200k_base encodings. */
static const char pattern_gpt2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char pattern_cl100k[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char pattern_o200k[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* cl100k with single digits ("2024" -> "2" "0" "2" "4"), so BPE never merges
 * digits and every number is spelled the same way: small models can then
 * learn digit-wise arithmetic. */
static const char pattern_cl100k_digits[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct cllm_pretok {
    pcre2_code *code; /* NULL for "none" */
    int jit;          /* 1 when JIT compilation succeeded */
};

const char *cllm_pretok_pattern(cllm_pretok_kind kind) {
    switch (kind) {
    case CLLM_PRETOK_GPT2: return pattern_gpt2;
    case CLLM_PRETOK_CL100K: return pattern_cl100k;
    case CLLM_PRETOK_O200K: return pattern_o200k;
    case CLLM_PRETOK_CL100K_DIGITS: return pattern_cl100k_digits;
    default: return NULL;
    }
}

const char *cllm_pretok_name(cllm_pretok_kind kind) {
    static const char *names[CLLM_PRETOK_COUNT] = {"none", "gpt2", "cl100k", "o200k", "custom", "gpt4-digits"};
    return (unsigned)kind < CLLM_PRETOK_COUNT ? names[kind] : "?";
}

cllm_status cllm_pretok_parse(const char *name, cllm_pretok_kind *kind, cllm_error *err) {
    static const struct {
        const char *name;
        cllm_pretok_kind kind;
    } table[] = {{"none", CLLM_PRETOK_NONE},     {"gpt2", CLLM_PRETOK_GPT2},
                 {"gpt4", CLLM_PRETOK_CL100K},   {"cl100k", CLLM_PRETOK_CL100K},
                 {"cl100k_base", CLLM_PRETOK_CL100K}, {"gpt4o", CLLM_PRETOK_O200K},
                 {"o200k", CLLM_PRETOK_O200K},   {"o200k_base", CLLM_PRETOK_O200K},
                 {"gpt4-digits", CLLM_PRETOK_CL100K_DIGITS}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (name && !strcmp(name, table[i].name)) {
            *kind = table[i].kind;
            return CLLM_OK;
        }
    return cllm_error_set(err, CLLM_ERR_ARG,
                          "unknown split pattern '%s' (expected gpt2, gpt4, gpt4-digits, cl100k, o200k or none)",
                          name ? name : "(null)");
}

cllm_status cllm_pretok_create(cllm_pretok **out, const char *regex, cllm_error *err) {
    *out = NULL;
    cllm_pretok *pt = calloc(1, sizeof *pt);
    if (!pt) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory creating a pre-tokenizer");
    if (regex) {
        int ecode;
        PCRE2_SIZE eoff;
        pt->code = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ecode, &eoff,
                                 NULL);
        if (!pt->code) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ecode, msg, sizeof msg);
            free(pt);
            return cllm_error_set(err, CLLM_ERR_FORMAT, "split pattern: %s at offset %zu", msg,
                                  (size_t)eoff);
        }
        pt->jit = pcre2_jit_compile(pt->code, PCRE2_JIT_COMPLETE) == 0;
    }
    *out = pt;
    return CLLM_OK;
}

void cllm_pretok_destroy(cllm_pretok *pt) {
    if (!pt) return;
    pcre2_code_free(pt->code);
    free(pt);
}

cllm_status cllm_pretok_split(const cllm_pretok *pt, const uint8_t *text, size_t len, size_t begin,
                              size_t end, cllm_piece_fn fn, void *ctx, cllm_error *err) {
    if (begin > end || end > len)
        return cllm_error_set(err, CLLM_ERR_ARG, "pre-tokenizer: range [%zu,%zu) outside %zu bytes",
                              begin, end, len);
    if (begin == end) return CLLM_OK;
    if (!pt->code) {
        fn(ctx, text + begin, end - begin);
        return CLLM_OK;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(pt->code, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_jit_stack *js = pt->jit ? pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL) : NULL;
    cllm_status st = CLLM_OK;
    if (!md || !mc || (pt->jit && !js)) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for regex match data");
        goto done;
    }
    if (js) pcre2_jit_stack_assign(mc, NULL, js);
    size_t pos = begin;
    while (pos < end) {
        int rc = pcre2_match(pt->code, (PCRE2_SPTR)text, len, pos, 0, md, mc);
        size_t ms, me;
        if (rc >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            ms = ov[0];
            me = ov[1];
        } else if (rc == PCRE2_ERROR_NOMATCH) {
            ms = me = end;
        } else {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            st = cllm_error_set(err, CLLM_ERR_LIMIT, "pre-tokenizer: regex failed at byte %zu: %s",
                                pos, msg);
            goto done;
        }
        if (ms >= end) { /* nothing more starts in our range: the rest is a gap */
            if (fn(ctx, text + pos, end - pos)) goto done;
            break;
        }
        if (ms > pos && fn(ctx, text + pos, ms - pos)) goto done; /* unmatched gap */
        if (me > end) me = end; /* only when [begin,end) was not cut at a boundary */
        if (me == ms) {         /* empty match (custom patterns): take one byte */
            me = ms + 1;
        }
        if (fn(ctx, text + ms, me - ms)) goto done;
        pos = me;
    }
done:
    pcre2_jit_stack_free(js);
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    return st;
}

static int is_alpha(uint8_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

size_t cllm_pretok_safe_split(const uint8_t *text, size_t len, size_t from) {
    if (from == 0) from = 1;
    for (size_t p = from; p + 1 < len; p++) {
        /* "\n" then a letter: no pattern joins a newline to a following letter. */
        if (text[p - 1] == '\n' && is_alpha(text[p])) return p;
        /* letter, space, letter: the letter run ends, " word" starts. */
        if (text[p] == ' ' && is_alpha(text[p - 1]) && is_alpha(text[p + 1])) return p;
    }
    return len;
}
