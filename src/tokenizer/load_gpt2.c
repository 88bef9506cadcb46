/*
 * load_gpt2.c: GPT-2's vocabulary files: encoder.json (or vocab.json), a JSON
 * object from token text to id, and vocab.bpe (or merges.txt), one merge
 * "<left> <right>" per line after an optional "#version" line. Token text is
 * written in GPT-2's byte-level alphabet (bytes_to_unicode in OpenAI's
 * encoder.py): printable Latin-1 bytes stand for themselves, the other 68
 * bytes for U+0100.. in byte order. Also that alphabet's codec, used by the
 * Hugging Face loader and the GGUF writer.
 *
 * Does not: read tokenizer.json (load_hf.c).
 */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/fileio.h"
#include "tok_internal.h"

static int byte_is_printable(int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

/* Code point that stands for byte b. */
static uint32_t byte_to_cp(int b) {
    if (byte_is_printable(b)) return (uint32_t)b;
    uint32_t k = 0;
    for (int x = 0; x < b; x++) k += !byte_is_printable(x);
    return 256 + k;
}

size_t tok_gpt2_bytes_to_unicode(const uint8_t *in, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = byte_to_cp(in[i]);
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else { /* all code points here are < 0x800: two UTF-8 bytes */
            out[o++] = (char)(0xC0 | (cp >> 6));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    out[o] = '\0';
    return o;
}

/* Code points 0..511 -> the byte they stand for, or -1; filled once. The
 * fill used to be guarded by a hand-rolled flag, and two threads filling the
 * table at once was a data race in C11's sense even though both wrote the
 * same values; pthread_once makes the first use the only writer. */
static int16_t cp_to_byte[512];
static pthread_once_t cp_to_byte_once = PTHREAD_ONCE_INIT;

static void cp_to_byte_fill(void) {
    for (int i = 0; i < 512; i++) cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) cp_to_byte[byte_to_cp(b)] = (int16_t)b;
}

long tok_gpt2_unicode_to_bytes(const char *s, size_t n, uint8_t *out) {
    pthread_once(&cp_to_byte_once, cp_to_byte_fill);
    long o = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = (uint8_t)s[i];
        uint32_t cp;
        if (c < 0x80) {
            cp = c;
            i++;
        } else if ((c & 0xE0) == 0xC0 && i + 1 < n && ((uint8_t)s[i + 1] & 0xC0) == 0x80) {
            cp = (uint32_t)(c & 0x1F) << 6 | ((uint8_t)s[i + 1] & 0x3F);
            i += 2;
        } else {
            return -1; /* three- and four-byte characters are never in the alphabet */
        }
        if (cp >= 512 || cp_to_byte[cp] < 0) return -1;
        out[o++] = (uint8_t)cp_to_byte[cp];
    }
    return o;
}

/* Reads a merges file into (left text, right text) pairs resolved to ids. */
static cllm_status read_merges(cllm_tokenizer *t, const char *path, cllm_error *err) {
    char *data;
    size_t len;
    cllm_status st = cllm_file_read_all(path, 1u << 30, &data, &len, err);
    if (st != CLLM_OK) return st;
    uint8_t *buf = malloc(len + 1);
    if (!buf) {
        free(data);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    }
    size_t line = 0;
    for (size_t pos = 0; pos < len && st == CLLM_OK;) {
        char *s = data + pos;
        char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + 1;
        line++;
        if (n && s[n - 1] == '\r') n--;
        if (n == 0 || (line == 1 && n >= 8 && !memcmp(s, "#version", 8))) continue;
        char *sp = memchr(s, ' ', n);
        if (!sp || sp == s || sp + 1 == s + n || memchr(sp + 1, ' ', (size_t)(s + n - sp - 1))) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%zu: expected '<left> <right>'", path, line);
            break;
        }
        uint32_t ids[2];
        const char *parts[2] = {s, sp + 1};
        size_t lens[2] = {(size_t)(sp - s), (size_t)(s + n - sp - 1)};
        for (int k = 0; k < 2 && st == CLLM_OK; k++) {
            long nb = tok_gpt2_unicode_to_bytes(parts[k], lens[k], buf);
            ids[k] = nb > 0 ? tok_bytes_get(t, buf, (size_t)nb) : TOK_NO_ID;
            if (ids[k] == TOK_NO_ID)
                st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%zu: merge names unknown token '%.*s'",
                                    path, line, (int)(lens[k] > 64 ? 64 : lens[k]), parts[k]);
        }
        if (st == CLLM_OK) st = cllm_tokenizer_add_merge(t, ids[0], ids[1], err);
    }
    free(buf);
    free(data);
    return st;
}

/* Fills the vocabulary from a JSON object {token text: id}; specials are the
 * texts given (kept raw, not byte-level decoded). */
static cllm_status vocab_from_json(cllm_tokenizer **out, const cJSON *vocab, uint32_t extra_ids,
                                   cllm_pretok_kind kind, const char *regex, const char *path,
                                   cllm_error *err) {
    double max_id = -1;
    uint64_t n_entries = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        n_entries++;
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= (1u << 30) ||
            it->valuedouble != (double)(uint32_t)it->valuedouble)
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: vocab entry '%.64s' has a bad id", path,
                                  it->string ? it->string : "");
        if (it->valuedouble > max_id) max_id = it->valuedouble;
    }
    if (max_id < 0) return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: empty vocabulary", path);
    uint32_t n_vocab = (uint32_t)max_id + 1;
    if (extra_ids > n_vocab) n_vocab = extra_ids;
    if (n_vocab > tok_id_limit(n_entries))
        return cllm_error_set(err, CLLM_ERR_FORMAT,
                              "%s: id %u is far beyond the file's %llu tokens (ids must stay below %llu); "
                              "is the file cut short?",
                              path, n_vocab - 1, (unsigned long long)n_entries,
                              (unsigned long long)tok_id_limit(n_entries));
    cllm_status st = cllm_tokenizer_new(out, n_vocab, kind, regex, err);
    if (st != CLLM_OK) return st;
    uint8_t buf[4096];
    cJSON_ArrayForEach(it, vocab) {
        size_t n = strlen(it->string);
        long nb = n <= sizeof buf ? tok_gpt2_unicode_to_bytes(it->string, n, buf) : -1;
        if (nb <= 0) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT,
                                "%s: vocab entry '%.64s' is not in GPT-2's byte-level alphabet "
                                "(only byte-level BPE is supported)", path, it->string);
            break;
        }
        st = cllm_tokenizer_set_token(*out, (uint32_t)it->valuedouble, buf, (size_t)nb,
                                      CLLM_TOKEN_NORMAL, err);
        if (st != CLLM_OK) {
            cllm_error_prefix(err, "%s: vocab entry '%.64s'", path, it->string);
            break;
        }
    }
    if (st != CLLM_OK) {
        cllm_tokenizer_destroy(*out);
        *out = NULL;
    }
    return st;
}

cllm_status tok_vocab_from_json(cllm_tokenizer **out, const void *vocab, uint32_t extra_ids,
                                cllm_pretok_kind kind, const char *regex, const char *path,
                                cllm_error *err) {
    return vocab_from_json(out, vocab, extra_ids, kind, regex, path, err);
}

void tok_drop_maps(cllm_tokenizer *t) {
    free(t->bytes.ids);
    free(t->pairs.keys);
    free(t->pairs.vals);
    memset(&t->bytes, 0, sizeof t->bytes);
    memset(&t->pairs, 0, sizeof t->pairs);
}

cllm_status cllm_tokenizer_load_gpt2(const char *encoder_json, const char *merges_path,
                                     cllm_tokenizer **out, cllm_error *err) {
    *out = NULL;
    char *data;
    size_t len;
    cllm_status st = cllm_file_read_all(encoder_json, 1u << 30, &data, &len, err);
    if (st != CLLM_OK) return st;
    cJSON *root = cJSON_ParseWithLength(data, len);
    free(data);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: not a JSON object of token -> id", encoder_json);
    }
    /* "<|endoftext|>" is stored byte-level-encoded like any token; make it special. */
    cJSON *eot = cJSON_DetachItemFromObjectCaseSensitive(root, "<|endoftext|>");
    uint32_t eot_id = 0, extra = 0;
    if (eot) {
        if (!cJSON_IsNumber(eot) || eot->valuedouble < 0 || eot->valuedouble >= (1u << 30)) {
            cJSON_Delete(eot);
            cJSON_Delete(root);
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: bad id for <|endoftext|>", encoder_json);
        }
        eot_id = (uint32_t)eot->valuedouble;
        extra = eot_id + 1;
        cJSON_Delete(eot);
    }
    cllm_tokenizer *t = NULL;
    st = vocab_from_json(&t, root, extra, CLLM_PRETOK_GPT2, NULL, encoder_json, err);
    cJSON_Delete(root);
    if (st != CLLM_OK) return st;
    if (extra) st = cllm_tokenizer_set_token(t, eot_id, "<|endoftext|>", 13, CLLM_TOKEN_SPECIAL, err);
    /* Merges name tokens by text, so resolving them needs the byte map: build
     * the maps once for lookup, drop them, and let finalize build them for real. */
    t->rule = CLLM_BPE_MERGES;
    if (st == CLLM_OK) st = tok_build_maps(t, err);
    if (st == CLLM_OK) st = read_merges(t, merges_path, err);
    tok_drop_maps(t);
    if (st == CLLM_OK) {
        st = cllm_tokenizer_finalize(t, CLLM_BPE_MERGES, err);
        if (st != CLLM_OK) cllm_error_prefix(err, "%s", merges_path);
    }
    if (st != CLLM_OK) {
        cllm_tokenizer_destroy(t);
        return st;
    }
    *out = t;
    return CLLM_OK;
}
