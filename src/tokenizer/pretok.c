/*
 * pretok.c: pre-tokenization, the regex split that runs before BPE merges.
 *
 * Does: the GPT-2, cl100k (GPT-4) and o200k (GPT-4o) split patterns exactly
 * as tiktoken declares them, cl100k with single-digit numbers
 * ("gpt4-digits"), the splits llama.cpp applies for the tokenizer.ggml.pre
 * families of GGUF vocabularies (Llama 3, Qwen2, DeepSeek, StarCoder/SmolLM,
 * Falcon, and llama.cpp's "default"), compiled with PCRE2 (UTF, Unicode
 * properties, JIT), custom patterns, "none", and a finder of chunk
 * boundaries that are safe for parallel encoding.
 *
 * A split may be a sequence of regexes (the stages are joined by U+001F,
 * the unit separator): the first stage splits the text, and each later stage
 * splits every piece of the stage before it on its own (lookarounds see only
 * that piece); matches and the gaps between them are pieces alike. This is
 * how llama.cpp runs its multi-regex pre-tokenizers.
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

/* llama.cpp's regexes for the GGUF tokenizer.ggml.pre families. Llama 3 and
 * Qwen2 spell the contractions as (?:'[sS]|...) rather than (?i:...): the
 * same on ASCII, but "'\u017F" (long s) is no contraction there. "\z" where
 * llama.cpp's std::regex has "$" (end of the piece only). Stages are joined
 * by STAGE_SEP. */
#define STAGE_SEP "\x1f"
#define CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
static const char pattern_llama3[] =
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char pattern_qwen2[] =
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char pattern_qwen35[] =
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+"
    "|\\s+(?!\\S)|\\s+";
/* GPT-2's split as llama.cpp writes it (no final "|\s+": a lone whitespace
 * it does not match is a gap, which is a piece of its own all the same). */
#define GPT2_STAGE "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
/* DeepSeek LLM's letters: Latin, Greek, Cyrillic, Armenian, Georgian,
 * Cherokee, ... (the cased scripts, as its tokenizer.json lists them). */
#define DEEPSEEK_LETTERS                                                                                        \
    "A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}"        \
    "\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}"          \
    "\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}"           \
    "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}"    \
    "\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}"    \
    "\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}"    \
    "\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"     \
    "\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}"     \
    "\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}"     \
    "\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}"     \
    "\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}"    \
    "\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"             \
    "\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}"
/* CJK ideographs, U+0800..U+4E00, Hangul syllables. */
#define DEEPSEEK_CJK "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"
static const char pattern_deepseek_llm[] =
    "[\\r\\n]" STAGE_SEP "\\s?[" DEEPSEEK_LETTERS "]+" STAGE_SEP
    "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+" STAGE_SEP "\\s+\\z" STAGE_SEP
    DEEPSEEK_CJK STAGE_SEP "\\p{N}+";
static const char pattern_deepseek_coder[] =
    "[\\r\\n]" STAGE_SEP "\\s?\\p{L}+" STAGE_SEP "\\s?\\p{P}+" STAGE_SEP DEEPSEEK_CJK STAGE_SEP "\\p{N}";
/* StarCoder, SmolLM, Refact, Command-R, CodeShell, EXAONE: digits alone, then GPT-2. */
static const char pattern_starcoder[] = "\\p{N}" STAGE_SEP GPT2_STAGE;
static const char pattern_falcon[] = "[\\p{P}\\$\\+<=>\\^~\\|`]+" STAGE_SEP GPT2_STAGE STAGE_SEP "[0-9][0-9][0-9]";
/* llama.cpp's "default" (also a GGUF without tokenizer.ggml.pre). */
static const char pattern_llama_default[] =
    "[\\p{P}\\$\\+<=>\\^~\\|]+" STAGE_SEP GPT2_STAGE STAGE_SEP "\\p{N}+" STAGE_SEP "[0-9][0-9][0-9]";

/* Mistral's Tekken as llama.cpp runs it: upper-case runs are "a letter that
 * is not a-z" and lower-case ones "a letter that is not A-Z" (so a non-ASCII
 * letter is both), where the tokenizer.json has the Unicode case classes. */
static const char pattern_tekken[] =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+"
    "|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*"
    "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

#define MAX_STAGES 8

struct cllm_pretok {
    pcre2_code *code[MAX_STAGES]; /* none for "none" */
    int jit[MAX_STAGES];          /* 1 when JIT compilation succeeded */
    int n;                        /* stages; 0 for "none" */
};

const char *cllm_pretok_pattern(cllm_pretok_kind kind) {
    switch (kind) {
    case CLLM_PRETOK_GPT2: return pattern_gpt2;
    case CLLM_PRETOK_CL100K: return pattern_cl100k;
    case CLLM_PRETOK_O200K: return pattern_o200k;
    case CLLM_PRETOK_CL100K_DIGITS: return pattern_cl100k_digits;
    case CLLM_PRETOK_LLAMA3: return pattern_llama3;
    case CLLM_PRETOK_QWEN2: return pattern_qwen2;
    case CLLM_PRETOK_QWEN35: return pattern_qwen35;
    case CLLM_PRETOK_DEEPSEEK_LLM: return pattern_deepseek_llm;
    case CLLM_PRETOK_DEEPSEEK_CODER: return pattern_deepseek_coder;
    case CLLM_PRETOK_STARCODER: return pattern_starcoder;
    case CLLM_PRETOK_FALCON: return pattern_falcon;
    case CLLM_PRETOK_LLAMA_DEFAULT: return pattern_llama_default;
    case CLLM_PRETOK_TEKKEN: return pattern_tekken;
    default: return NULL;
    }
}

const char *cllm_pretok_name(cllm_pretok_kind kind) {
    static const char *names[CLLM_PRETOK_COUNT] = {"none",   "gpt2",         "cl100k",         "o200k",
                                                   "custom", "gpt4-digits",  "llama3",         "qwen2",
                                                   "qwen35", "deepseek-llm", "deepseek-coder", "starcoder",
                                                   "falcon", "llama-default", "tekken"};
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
                 {"gpt4-digits", CLLM_PRETOK_CL100K_DIGITS}, {"llama3", CLLM_PRETOK_LLAMA3},
                 {"qwen2", CLLM_PRETOK_QWEN2}, {"qwen35", CLLM_PRETOK_QWEN35},
                 {"deepseek-llm", CLLM_PRETOK_DEEPSEEK_LLM}, {"deepseek-coder", CLLM_PRETOK_DEEPSEEK_CODER},
                 {"starcoder", CLLM_PRETOK_STARCODER}, {"smollm", CLLM_PRETOK_STARCODER},
                 {"falcon", CLLM_PRETOK_FALCON}, {"llama-default", CLLM_PRETOK_LLAMA_DEFAULT},
                 {"tekken", CLLM_PRETOK_TEKKEN}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (name && !strcmp(name, table[i].name)) {
            *kind = table[i].kind;
            return CLLM_OK;
        }
    return cllm_error_set(err, CLLM_ERR_ARG,
                          "unknown split pattern '%s' (expected gpt2, gpt4, gpt4-digits, cl100k, o200k, llama3, qwen2, "
                          "qwen35, deepseek-llm, deepseek-coder, starcoder, smollm, falcon, llama-default or none)",
                          name ? name : "(null)");
}

cllm_status cllm_pretok_create(cllm_pretok **out, const char *regex, cllm_error *err) {
    *out = NULL;
    cllm_pretok *pt = calloc(1, sizeof *pt);
    if (!pt) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory creating a pre-tokenizer");
    for (const char *stage = regex; stage;) {
        const char *sep = strchr(stage, '\x1f');
        size_t n = sep ? (size_t)(sep - stage) : strlen(stage);
        if (pt->n == MAX_STAGES) {
            cllm_pretok_destroy(pt);
            return cllm_error_set(err, CLLM_ERR_FORMAT, "split pattern: more than %d stages", MAX_STAGES);
        }
        int ecode;
        PCRE2_SIZE eoff;
        pcre2_code *code = pcre2_compile((PCRE2_SPTR)stage, n, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
                                         &ecode, &eoff, NULL);
        if (!code) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ecode, msg, sizeof msg);
            int at = pt->n;
            cllm_pretok_destroy(pt);
            return cllm_error_set(err, CLLM_ERR_FORMAT, "split pattern%s: %s at offset %zu", at ? " (a later stage)" : "",
                                  msg, (size_t)eoff);
        }
        pt->jit[pt->n] = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
        pt->code[pt->n++] = code;
        stage = sep ? sep + 1 : NULL;
    }
    *out = pt;
    return CLLM_OK;
}

void cllm_pretok_destroy(cllm_pretok *pt) {
    if (!pt) return;
    for (int k = 0; k < pt->n; k++) pcre2_code_free(pt->code[k]);
    free(pt);
}

/* One stage's matcher state. */
typedef struct {
    pcre2_code *code;
    pcre2_match_data *md;
} stage_state;

typedef struct {
    const cllm_pretok *pt;
    stage_state st[MAX_STAGES];
    pcre2_match_context *mc;
    cllm_piece_fn fn;
    void *ctx;
    cllm_error *err;
    int stop;        /* the callback asked to stop */
    cllm_status status;
} split_run;

static int emit(split_run *r, int stage, const uint8_t *p, size_t n);

/* Splits text[begin,end) of text[0,len) with stage k; every piece goes to emit. */
static void run_stage(split_run *r, int k, const uint8_t *text, size_t len, size_t begin, size_t end) {
    pcre2_match_data *md = r->st[k].md;
    size_t pos = begin;
    while (pos < end && !r->stop && r->status == CLLM_OK) {
        int rc = pcre2_match(r->st[k].code, (PCRE2_SPTR)text, len, pos, 0, md, r->mc);
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
            r->status = cllm_error_set(r->err, CLLM_ERR_LIMIT, "pre-tokenizer: regex failed at byte %zu: %s", pos, msg);
            return;
        }
        if (ms >= end) { /* nothing more starts in our range: the rest is a gap */
            emit(r, k, text + pos, end - pos);
            return;
        }
        if (ms > pos && emit(r, k, text + pos, ms - pos)) return; /* unmatched gap */
        if (me > end) me = end; /* only when [begin,end) was not cut at a boundary */
        if (me == ms) me = ms + 1; /* empty match (custom patterns): take one byte */
        if (emit(r, k, text + ms, me - ms)) return;
        pos = me;
    }
}

/* A piece of stage k: the caller's, or the next stage's input. Non-zero to stop. */
static int emit(split_run *r, int k, const uint8_t *p, size_t n) {
    if (k + 1 < r->pt->n)
        run_stage(r, k + 1, p, n, 0, n);
    else if (r->fn(r->ctx, p, n))
        r->stop = 1;
    return r->stop || r->status != CLLM_OK;
}

cllm_status cllm_pretok_split(const cllm_pretok *pt, const uint8_t *text, size_t len, size_t begin,
                              size_t end, cllm_piece_fn fn, void *ctx, cllm_error *err) {
    if (begin > end || end > len)
        return cllm_error_set(err, CLLM_ERR_ARG, "pre-tokenizer: range [%zu,%zu) outside %zu bytes",
                              begin, end, len);
    if (begin == end) return CLLM_OK;
    if (!pt->n) {
        fn(ctx, text + begin, end - begin);
        return CLLM_OK;
    }
    split_run r = {.pt = pt, .fn = fn, .ctx = ctx, .err = err, .status = CLLM_OK};
    int any_jit = 0, ok = 1;
    for (int k = 0; k < pt->n; k++) {
        r.st[k].code = pt->code[k];
        r.st[k].md = pcre2_match_data_create(1, NULL);
        ok &= r.st[k].md != NULL;
        any_jit |= pt->jit[k];
    }
    r.mc = pcre2_match_context_create(NULL);
    pcre2_jit_stack *js = any_jit ? pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL) : NULL;
    if (!ok || !r.mc || (any_jit && !js)) {
        r.status = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for regex match data");
    } else {
        if (js) pcre2_jit_stack_assign(r.mc, NULL, js);
        run_stage(&r, 0, text, len, begin, end);
    }
    pcre2_jit_stack_free(js);
    pcre2_match_context_free(r.mc);
    for (int k = 0; k < pt->n; k++) pcre2_match_data_free(r.st[k].md);
    return r.status;
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
