/*
 * load_hf.c: Hugging Face tokenizer.json files with a byte-level BPE model
 * (GPT-2, RoBERTa, Llama 3, Qwen style): model.vocab, model.merges (either
 * "a b" strings or ["a", "b"] pairs), added_tokens, and the split pattern
 * from pre_tokenizer (ByteLevel with use_regex = GPT-2's; a Split with a
 * Regex, alone or in a Sequence; none), and model.ignore_merges (Llama 3: a
 * pre-token that is in the vocabulary is one token, merges or not).
 *
 * Rejected with a clear error rather than silently mis-encoded: non-BPE
 * models, normalizers, add_prefix_space, byte_fallback, and vocabularies
 * outside GPT-2's byte-level alphabet.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/fileio.h"
#include "tok_internal.h"

#define BAD(...)                                                   \
    do {                                                           \
        st = cllm_error_set(err, CLLM_ERR_FORMAT, __VA_ARGS__);    \
        goto done;                                                 \
    } while (0)

static int is_true(const cJSON *o, const char *key) {
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* Finds the split regex of a pre_tokenizer; *found = 0 if there is none. */
static cllm_status find_pattern(const cJSON *pt, const char *path, const char **regex, int *bytelevel_regex,
                                cllm_error *err) {
    if (!pt || cJSON_IsNull(pt)) return CLLM_OK;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(pt, "type");
    if (!cJSON_IsString(type)) return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: pre_tokenizer without a type", path);
    if (!strcmp(type->valuestring, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers")) {
            cllm_status st = find_pattern(it, path, regex, bytelevel_regex, err);
            if (st != CLLM_OK) return st;
        }
        return CLLM_OK;
    }
    if (!strcmp(type->valuestring, "ByteLevel")) {
        if (is_true(pt, "add_prefix_space"))
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: ByteLevel add_prefix_space=true is not supported", path);
        const cJSON *ur = cJSON_GetObjectItemCaseSensitive(pt, "use_regex");
        if (!ur || cJSON_IsTrue(ur)) *bytelevel_regex = 1;
        return CLLM_OK;
    }
    if (!strcmp(type->valuestring, "Split")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(pt, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *beh = cJSON_GetObjectItemCaseSensitive(pt, "behavior");
        if (!cJSON_IsString(re))
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: Split pre_tokenizer needs a Regex pattern", path);
        if (beh && (!cJSON_IsString(beh) || strcmp(beh->valuestring, "Isolated")))
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: Split behavior must be Isolated", path);
        if (is_true(pt, "invert"))
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: inverted Split is not supported", path);
        if (*regex) return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: more than one Split pattern", path);
        *regex = re->valuestring;
        return CLLM_OK;
    }
    return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: pre_tokenizer type '%.64s' is not supported", path,
                          type->valuestring);
}

cllm_status cllm_tokenizer_load_hf(const char *path, cllm_tokenizer **out, cllm_error *err) {
    *out = NULL;
    char *data = NULL;
    size_t len;
    cllm_tokenizer *t = NULL;
    uint8_t *buf = NULL;
    cllm_status st = cllm_file_read_all(path, 1u << 30, &data, &len, err);
    if (st != CLLM_OK) return st;
    cJSON *root = cJSON_ParseWithLength(data, len);
    if (!root) BAD("%s: not valid JSON (near byte %ld)", path,
                   cJSON_GetErrorPtr() ? (long)(cJSON_GetErrorPtr() - data) : -1L);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *mtype = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(model)) BAD("%s: no \"model\" object", path);
    if (mtype && (!cJSON_IsString(mtype) || strcmp(mtype->valuestring, "BPE")))
        BAD("%s: model.type is not \"BPE\" (only byte-level BPE is supported)", path);
    if (!cJSON_IsObject(vocab)) BAD("%s: model.vocab is not an object", path);
    if (!cJSON_IsArray(merges)) BAD("%s: model.merges is not an array", path);
    if (is_true(model, "byte_fallback")) BAD("%s: model.byte_fallback is not supported", path);
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (norm && !cJSON_IsNull(norm)) BAD("%s: normalizers are not supported", path);
    const char *regex = NULL;
    int bl = 0;
    if ((st = find_pattern(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), path, &regex, &bl,
                           err)) != CLLM_OK)
        goto done;
    if (regex && bl) BAD("%s: both a Split regex and ByteLevel use_regex", path);
    cllm_pretok_kind kind = regex ? CLLM_PRETOK_CUSTOM : bl ? CLLM_PRETOK_GPT2 : CLLM_PRETOK_NONE;
    for (int k = CLLM_PRETOK_GPT2; regex && k <= CLLM_PRETOK_O200K; k++)
        if (!strcmp(regex, cllm_pretok_pattern((cllm_pretok_kind)k))) kind = (cllm_pretok_kind)k;
    /* Added tokens may extend the id range. */
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    const cJSON *it;
    uint32_t extra = 0;
    cJSON_ArrayForEach(it, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= (1u << 30) ||
            !cJSON_IsString(content) || !content->valuestring[0])
            BAD("%s: added_tokens entry without a valid id and content", path);
        if ((uint32_t)id->valuedouble + 1 > extra) extra = (uint32_t)id->valuedouble + 1;
    }
    if ((st = tok_vocab_from_json(&t, vocab, extra, kind, kind == CLLM_PRETOK_CUSTOM ? regex : NULL,
                                  path, err)) != CLLM_OK)
        goto done;
    cJSON_ArrayForEach(it, added) {
        uint32_t id = (uint32_t)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble;
        const char *content = cJSON_GetObjectItemCaseSensitive(it, "content")->valuestring;
        if (t->kind[id] == CLLM_TOKEN_NORMAL) {
            /* Also a vocab entry (GPT-2's <|endoftext|>): it becomes a control
             * token, matched only where allowed, as tokenizers matches added
             * tokens before BPE. Its vocab text must be the same bytes. */
            if (t->len[id] != strlen(content) || memcmp(t->blob + t->off[id], content, t->len[id]))
                BAD("%s: added token %u '%.64s' differs from vocab entry %u", path, id, content, id);
            t->kind[id] = CLLM_TOKEN_SPECIAL;
            continue;
        }
        if ((st = cllm_tokenizer_set_token(t, id, content, strlen(content), CLLM_TOKEN_SPECIAL, err)) != CLLM_OK) {
            cllm_error_prefix(err, "%s: added token '%.64s'", path, content);
            goto done;
        }
    }
    t->rule = CLLM_BPE_MERGES;
    t->ignore_merges = is_true(model, "ignore_merges"); /* Llama 3: a pre-token in the vocabulary is one token */
    if ((st = tok_build_maps(t, err)) != CLLM_OK) {
        cllm_error_prefix(err, "%s", path);
        goto done;
    }
    size_t buf_cap = 0;
    size_t r = 0;
    cJSON_ArrayForEach(it, merges) {
        const char *parts[2];
        size_t lens[2];
        if (cJSON_IsString(it)) {
            const char *s = it->valuestring, *sp = strchr(s, ' ');
            if (!sp || sp == s || !sp[1] || strchr(sp + 1, ' ')) BAD("%s: merges[%zu] is not \"<left> <right>\"", path, r);
            parts[0] = s;
            lens[0] = (size_t)(sp - s);
            parts[1] = sp + 1;
            lens[1] = strlen(sp + 1);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 0)) && cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            for (int k = 0; k < 2; k++) {
                parts[k] = cJSON_GetArrayItem(it, k)->valuestring;
                lens[k] = strlen(parts[k]);
            }
        } else {
            BAD("%s: merges[%zu] is neither a string nor a pair of strings", path, r);
        }
        uint32_t ids[2];
        for (int k = 0; k < 2; k++) {
            if (lens[k] > buf_cap) {
                free(buf);
                buf_cap = 2 * lens[k];
                if (!(buf = malloc(buf_cap))) {
                    st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
                    goto done;
                }
            }
            long nb = tok_gpt2_unicode_to_bytes(parts[k], lens[k], buf);
            ids[k] = nb > 0 ? tok_bytes_get(t, buf, (size_t)nb) : TOK_NO_ID;
            if (ids[k] == TOK_NO_ID) BAD("%s: merges[%zu] names unknown token '%.64s'", path, r, parts[k]);
        }
        if ((st = cllm_tokenizer_add_merge(t, ids[0], ids[1], err)) != CLLM_OK) goto done;
        r++;
    }
    tok_drop_maps(t);
    if ((st = cllm_tokenizer_finalize(t, CLLM_BPE_MERGES, err)) != CLLM_OK) cllm_error_prefix(err, "%s", path);
done:
    cJSON_Delete(root);
    free(data);
    free(buf);
    if (st == CLLM_OK)
        *out = t;
    else
        cllm_tokenizer_destroy(t);
    return st;
}
