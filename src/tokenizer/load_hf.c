/*
 * load_hf.c: Hugging Face tokenizer.json files with a byte-level BPE model
 * (GPT-2, RoBERTa, Llama 3, Qwen style): model.vocab, model.merges (either
 * "a b" strings or ["a", "b"] pairs), added_tokens, and the split pattern
 * from pre_tokenizer (ByteLevel with use_regex = GPT-2's; a Split with a
 * Regex, alone or in a Sequence; none), and model.ignore_merges (Llama 3: a
 * pre-token that is in the vocabulary is one token, merges or not).
 *
 * A BPE model with byte_fallback is the SentencePiece-style tokenizer.json
 * of Llama 2 / Mistral (normalizer Sequence[Prepend "▁", Replace " " -> "▁"]
 * or a Metaspace pre_tokenizer): load_hf_spm makes it a SentencePiece
 * vocabulary (spm.c) with scores from the merge ranks.
 *
 * Rejected with a clear error rather than silently mis-encoded: non-BPE
 * models, other normalizers, add_prefix_space, and byte-level vocabularies
 * outside GPT-2's alphabet.
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

#define SPM_SPACE "\xe2\x96\x81" /* U+2581, SentencePiece's space */

static int str_is(const cJSON *o, const char *key, const char *want) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && !strcmp(v->valuestring, want);
}

/* The normalizer / pre_tokenizer of a SentencePiece-style tokenizer.json:
 * Sequence[Prepend "▁", Replace " " -> "▁"] (or the Replace alone), or a
 * Metaspace pre_tokenizer ("▁", prepend_scheme always/first/never, no split).
 * *prefix: whether a "▁" is put before the text. */
static cllm_status spm_shape(const cJSON *norm, const cJSON *pre, const char *path, int *prefix, cllm_error *err) {
    int replace = 0;
    *prefix = 0;
    if (norm && !cJSON_IsNull(norm)) {
        const cJSON *list = str_is(norm, "type", "Sequence") ? cJSON_GetObjectItemCaseSensitive(norm, "normalizers") : NULL;
        const cJSON *it;
        int n = 0;
        cJSON_ArrayForEach(it, list) {
            n++;
            if (str_is(it, "type", "Prepend") && str_is(it, "prepend", SPM_SPACE))
                *prefix = 1;
            else if (str_is(it, "type", "Replace") && str_is(cJSON_GetObjectItemCaseSensitive(it, "pattern"), "String", " ") &&
                     str_is(it, "content", SPM_SPACE))
                replace = 1;
            else
                return cllm_error_set(err, CLLM_ERR_FORMAT,
                                      "%s: normalizer step %d is not Prepend \"\u2581\" or Replace \" \" -> \"\u2581\"", path, n);
        }
        if (!n && str_is(norm, "type", "Replace") && str_is(cJSON_GetObjectItemCaseSensitive(norm, "pattern"), "String", " ") &&
            str_is(norm, "content", SPM_SPACE))
            replace = 1;
        else if (!n)
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: normalizer is not a Sequence of Prepend/Replace", path);
    }
    if (pre && !cJSON_IsNull(pre)) {
        if (!str_is(pre, "type", "Metaspace") || !str_is(pre, "replacement", SPM_SPACE) || is_true(pre, "split"))
            return cllm_error_set(err, CLLM_ERR_FORMAT,
                                  "%s: with byte_fallback, pre_tokenizer must be absent or Metaspace \"\u2581\" without split", path);
        replace = 1;
        *prefix = !str_is(pre, "prepend_scheme", "never");
    }
    if (!replace)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: a SentencePiece-style BPE needs spaces replaced by \"\u2581\"", path);
    return CLLM_OK;
}

/* tokenizer.json of Llama 2 / Mistral: BPE over U+2581-escaped text with
 * byte fallback. Encoded by the SentencePiece encoder (spm.c): each piece's
 * score is minus the rank of the first merge that makes it (tokenizer.json's
 * merges of a SentencePiece model are every split of every piece, ordered by
 * the piece's score, so merging the best-scored piece is merging the
 * best-ranked pair); pieces no merge makes never win a merge. */
static cllm_status load_hf_spm(const cJSON *root, const cJSON *model, const char *path, cllm_tokenizer **out,
                               cllm_error *err) {
    cllm_status st = CLLM_OK;
    int prefix;
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    cllm_gguf_str *toks = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    if ((st = spm_shape(cJSON_GetObjectItemCaseSensitive(root, "normalizer"),
                        cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), path, &prefix, err)) != CLLM_OK)
        return st;
    uint64_t V = 0, n_entries = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= (1u << 30) || !it->string[0])
            BAD("%s: model.vocab entry '%.64s' has no valid id", path, it->string);
        if ((uint64_t)it->valuedouble + 1 > V) V = (uint64_t)it->valuedouble + 1;
        n_entries++;
    }
    cJSON_ArrayForEach(it, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= (1u << 30) || !cJSON_IsString(content) ||
            !content->valuestring[0])
            BAD("%s: added_tokens entry without a valid id and content", path);
        if ((uint64_t)id->valuedouble + 1 > V) V = (uint64_t)id->valuedouble + 1;
        n_entries++;
    }
    if (V > tok_id_limit(n_entries)) BAD("%s: token id %llu is far past the %llu entries", path, (unsigned long long)V - 1,
                                         (unsigned long long)n_entries);
    toks = calloc(V + 1, sizeof *toks);
    scores = malloc((V + 1) * sizeof *scores);
    types = malloc((V + 1) * sizeof *types);
    if (!toks || !scores || !types) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for %llu tokens", (unsigned long long)V);
        goto done;
    }
    for (uint64_t i = 0; i < V; i++) {
        scores[i] = -1e30f;
        types[i] = TOK_TT_UNUSED;
    }
    int fallback = is_true(model, "byte_fallback");
    cJSON_ArrayForEach(it, vocab) {
        uint64_t id = (uint64_t)it->valuedouble;
        if (toks[id].data) BAD("%s: id %llu appears twice in model.vocab", path, (unsigned long long)id);
        toks[id] = (cllm_gguf_str){it->string, strlen(it->string)};
        unsigned b;
        char tail;
        types[id] = fallback && toks[id].len == 6 && sscanf(it->string, "<0x%2X%c", &b, &tail) == 2 && tail == '>'
                        ? TOK_TT_BYTE
                        : TOK_TT_NORMAL;
    }
    int64_t unk = -1, bos = -1, eos = -1;
    const cJSON *unk_tok = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    cJSON_ArrayForEach(it, added) {
        uint64_t id = (uint64_t)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble;
        const char *content = cJSON_GetObjectItemCaseSensitive(it, "content")->valuestring;
        if (toks[id].data && (toks[id].len != strlen(content) || memcmp(toks[id].data, content, toks[id].len)))
            BAD("%s: added token %llu '%.64s' differs from vocab entry %llu", path, (unsigned long long)id, content,
                (unsigned long long)id);
        toks[id] = (cllm_gguf_str){content, strlen(content)};
        types[id] = is_true(it, "special") ? TOK_TT_CONTROL : TOK_TT_USER_DEFINED;
        if (!strcmp(content, "<s>")) bos = (int64_t)id;
        if (!strcmp(content, "</s>")) eos = (int64_t)id;
    }
    for (uint64_t i = 0; i < V; i++)
        if (toks[i].data && cJSON_IsString(unk_tok) && toks[i].len == strlen(unk_tok->valuestring) &&
            !memcmp(toks[i].data, unk_tok->valuestring, toks[i].len)) {
            unk = (int64_t)i;
            types[i] = TOK_TT_UNKNOWN;
        }
    /* scores: minus the rank of the first merge making each piece */
    float rank = 0;
    cJSON_ArrayForEach(it, merges) {
        const char *a, *b;
        size_t la, lb;
        if (cJSON_IsString(it) && strchr(it->valuestring, ' ')) {
            a = it->valuestring;
            la = (size_t)(strchr(a, ' ') - a);
            b = a + la + 1;
            lb = strlen(b);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            a = cJSON_GetArrayItem(it, 0)->valuestring;
            b = cJSON_GetArrayItem(it, 1)->valuestring;
            la = strlen(a);
            lb = strlen(b);
        } else {
            BAD("%s: merges[%.0f] is neither \"<left> <right>\" nor a pair of strings", path, rank);
        }
        char *ab = malloc(la + lb + 1);
        if (!ab) {
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
            goto done;
        }
        memcpy(ab, a, la);
        memcpy(ab + la, b, lb);
        ab[la + lb] = '\0';
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(vocab, ab);
        free(ab);
        if (!cJSON_IsNumber(res)) BAD("%s: merges[%.0f] makes a piece that is not in model.vocab", path, rank);
        uint64_t id = (uint64_t)res->valuedouble;
        if (-rank > scores[id]) scores[id] = -rank;
        rank++;
    }
    st = tok_spm_from_pieces(toks, scores, types, V, bos, eos, unk, prefix, path, out, err);
done:
    free(toks);
    free(scores);
    free(types);
    return st;
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
    if (is_true(model, "byte_fallback")) { /* SentencePiece-style BPE (Llama 2, Mistral) */
        st = load_hf_spm(root, model, path, &t, err);
        goto done;
    }
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (norm && !cJSON_IsNull(norm)) BAD("%s: normalizers are not supported", path);
    const char *regex = NULL;
    int bl = 0;
    if ((st = find_pattern(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), path, &regex, &bl,
                           err)) != CLLM_OK)
        goto done;
    if (regex && bl) BAD("%s: both a Split regex and ByteLevel use_regex", path);
    cllm_pretok_kind kind = regex ? CLLM_PRETOK_CUSTOM : bl ? CLLM_PRETOK_GPT2 : CLLM_PRETOK_NONE;
    /* the splits of GPT-2, Llama 3 (cl100k's), GPT-4o and Qwen2 (cl100k's with single digits) by name,
     * so that a GGUF written from this tokenizer names the family llama.cpp knows it by */
    static const cllm_pretok_kind named[] = {CLLM_PRETOK_GPT2, CLLM_PRETOK_CL100K, CLLM_PRETOK_O200K,
                                             CLLM_PRETOK_CL100K_DIGITS};
    for (size_t k = 0; regex && k < sizeof named / sizeof named[0]; k++)
        if (!strcmp(regex, cllm_pretok_pattern(named[k]))) kind = named[k];
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
