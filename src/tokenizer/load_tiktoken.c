/*
 * load_tiktoken.c: reads tiktoken rank files ("<base64 token> <rank>" per
 * line, as OpenAI publishes cl100k_base.tiktoken and o200k_base.tiktoken).
 *
 * The file holds only ordinary tokens; specials come from the caller, or,
 * for OpenAI's own files (recognised by pattern and token count), from the
 * table below. Ranks may leave holes (they become unused ids).
 * Does not: fetch files from the network or guess a split pattern.
 */
#include <stdlib.h>
#include <string.h>

#include "cllm/core/fileio.h"
#include "tok_internal.h"

typedef struct {
    cllm_pretok_kind kind;
    uint32_t n_ranks;
    cllm_special_def specials[6];
    size_t n_specials;
} openai_vocab;

/* OpenAI's special tokens for its encodings (tiktoken's openai_public). */
static const openai_vocab openai_vocabs[] = {
    {CLLM_PRETOK_GPT2, 50256, {{"<|endoftext|>", 50256}}, 1},
    {CLLM_PRETOK_CL100K,
     100256,
     {{"<|endoftext|>", 100257},
      {"<|fim_prefix|>", 100258},
      {"<|fim_middle|>", 100259},
      {"<|fim_suffix|>", 100260},
      {"<|endofprompt|>", 100276}},
     5},
    {CLLM_PRETOK_O200K, 199998, {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}}, 2},
};

#define MAX_RANK (1u << 30)

cllm_status cllm_tokenizer_load_tiktoken(const char *path, cllm_pretok_kind kind,
                                         const char *regex, const cllm_special_def *specials,
                                         size_t n_specials, cllm_tokenizer **out,
                                         cllm_error *err) {
    *out = NULL;
    char *data = NULL;
    size_t len = 0;
    cllm_status st = cllm_file_read_all(path, 1u << 30, &data, &len, err);
    if (st != CLLM_OK) return st;
    /* Pass 1: count lines and find the largest rank. */
    uint64_t max_id = 0, n_lines = 0;
    for (size_t pos = 0, line = 1; pos < len; line++) {
        char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len;
        size_t e = end;
        if (e > pos && data[e - 1] == '\r') e--;
        if (e > pos) {
            char *sp = memchr(data + pos, ' ', e - pos);
            char *endp = NULL;
            unsigned long long r = 0;
            if (sp) r = strtoull(sp + 1, &endp, 10);
            if (!sp || sp == data + pos || endp != data + e || sp + 1 == data + e || r >= MAX_RANK) {
                st = cllm_error_set(err, CLLM_ERR_FORMAT,
                                    "%s:%zu: expected '<base64 token> <rank>' with rank < 2^30", path,
                                    line);
                goto done;
            }
            if (r + 1 > max_id) max_id = r + 1;
            n_lines++;
        }
        pos = end + 1;
    }
    if (n_lines == 0) {
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: no tokens in tiktoken file", path);
        goto done;
    }
    if (!specials && n_specials == 0)
        for (size_t i = 0; i < sizeof openai_vocabs / sizeof openai_vocabs[0]; i++)
            if (openai_vocabs[i].kind == kind && openai_vocabs[i].n_ranks == n_lines &&
                max_id == n_lines) {
                specials = openai_vocabs[i].specials;
                n_specials = openai_vocabs[i].n_specials;
            }
    for (size_t i = 0; i < n_specials; i++) {
        if (specials[i].id >= MAX_RANK) {
            st = cllm_error_set(err, CLLM_ERR_ARG, "special token '%s' has id %u >= 2^30",
                                specials[i].text, specials[i].id);
            goto done;
        }
        if (specials[i].id + 1ull > max_id) max_id = specials[i].id + 1ull;
    }
    if (max_id > tok_id_limit(n_lines + n_specials)) {
        st = cllm_error_set(err, CLLM_ERR_FORMAT,
                            "%s: id %llu is far beyond the file's %llu tokens (ids must stay below %llu); "
                            "is the file cut short?",
                            path, (unsigned long long)(max_id - 1), (unsigned long long)(n_lines + n_specials),
                            (unsigned long long)tok_id_limit(n_lines + n_specials));
        goto done;
    }
    cllm_tokenizer *t = NULL;
    if ((st = cllm_tokenizer_new(&t, (uint32_t)max_id, kind, regex, err)) != CLLM_OK) goto done;
    uint8_t buf[1024];
    for (size_t pos = 0, line = 1; pos < len && st == CLLM_OK; line++) {
        char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len;
        size_t e = end;
        if (e > pos && data[e - 1] == '\r') e--;
        if (e > pos) {
            char *sp = memchr(data + pos, ' ', e - pos);
            size_t n64 = (size_t)(sp - (data + pos));
            long n = n64 <= 4 * sizeof buf / 3 ? tok_base64_decode(data + pos, n64, buf) : -1;
            if (n <= 0)
                st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%zu: bad base64 token", path, line);
            else
                st = cllm_tokenizer_set_token(t, (uint32_t)strtoul(sp + 1, NULL, 10), buf,
                                              (size_t)n, CLLM_TOKEN_NORMAL, err);
            if (st != CLLM_OK) cllm_error_prefix(err, "%s:%zu", path, line);
        }
        pos = end + 1;
    }
    for (size_t i = 0; i < n_specials && st == CLLM_OK; i++) {
        st = cllm_tokenizer_set_token(t, specials[i].id, specials[i].text, strlen(specials[i].text),
                                      CLLM_TOKEN_SPECIAL, err);
        if (st != CLLM_OK) cllm_error_prefix(err, "%s: special '%s'", path, specials[i].text);
    }
    if (st == CLLM_OK && (st = cllm_tokenizer_finalize(t, CLLM_BPE_RANKS, err)) != CLLM_OK)
        cllm_error_prefix(err, "%s", path);
    if (st == CLLM_OK)
        *out = t;
    else
        cllm_tokenizer_destroy(t);
done:
    free(data);
    return st;
}
