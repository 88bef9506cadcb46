/*
 * io.c: cllm's own tokenizer file (docs/FORMATS.md, "Tokenizer file"):
 * a line-oriented text format, base64 for token bytes, written atomically.
 *
 *   cllm-tokenizer 1
 *   rule ranks|merges
 *   pattern gpt2|cl100k|o200k|gpt4-digits|none|custom
 *   regex <base64 of the PCRE2 pattern>      (only for custom)
 *   vocab <V>
 *   n <base64>  | s <base64>  | u            (V lines: normal, special, unused)
 *   merges <M>                               (M = 0 for the ranks rule)
 *   <left id> <right id>                     (M lines, priority order)
 *   end
 *
 * Also load_any, which picks the reader by content. Does not: read GGUF
 * (gguf.c) or other projects' formats (load_*.c).
 */
#include <stdlib.h>
#include <string.h>

#include "cllm/core/fileio.h"
#include "tok_internal.h"

#define FILE_KIND "cllm-tokenizer " /* then the version */
#define FILE_MAGIC FILE_KIND "1"

cllm_status cllm_tokenizer_save(const cllm_tokenizer *t, const char *path, cllm_error *err) {
    if (!t->finalized) return cllm_error_set(err, CLLM_ERR_ARG, "%s: tokenizer not finalized", path);
    if (t->spm)
        return cllm_error_set(err, CLLM_ERR_ARG, "%s: a SentencePiece vocabulary is stored in GGUF only (write a .gguf)", path);
    cllm_atomic_file af;
    cllm_status st = cllm_atomic_begin(&af, path, err);
    if (st != CLLM_OK) return st;
    size_t max_len = 0;
    for (uint32_t id = 0; id < t->n_vocab; id++)
        if (t->len[id] > max_len) max_len = t->len[id];
    size_t rl = t->regex ? strlen(t->regex) : 0;
    if (rl > max_len) max_len = rl;
    char *b64 = malloc(4 * (max_len / 3 + 2) + 1);
    if (!b64) {
        cllm_atomic_abort(&af);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    }
    cllm_atomic_printf(&af, "%s\nrule %s\npattern %s\n", FILE_MAGIC,
                       t->rule == CLLM_BPE_RANKS ? "ranks" : "merges",
                       cllm_pretok_name(t->pretok_kind));
    if (t->pretok_kind == CLLM_PRETOK_CUSTOM) {
        tok_base64_encode((const uint8_t *)t->regex, rl, b64);
        cllm_atomic_printf(&af, "regex %s\n", b64);
    }
    cllm_atomic_printf(&af, "vocab %u\n", t->n_vocab);
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        if (t->kind[id] == CLLM_TOKEN_UNUSED) {
            cllm_atomic_write(&af, "u\n", 2);
            continue;
        }
        tok_base64_encode(t->blob + t->off[id], t->len[id], b64);
        cllm_atomic_printf(&af, "%c %s\n", t->kind[id] == CLLM_TOKEN_SPECIAL ? 's' : 'n', b64);
    }
    uint32_t nm = t->rule == CLLM_BPE_MERGES ? t->n_merges : 0;
    cllm_atomic_printf(&af, "merges %u\n", nm);
    for (uint32_t r = 0; r < nm; r++)
        cllm_atomic_printf(&af, "%u %u\n", t->merges[r].left, t->merges[r].right);
    cllm_atomic_printf(&af, "end\n");
    free(b64);
    return cllm_atomic_commit(&af, err);
}

/* A line cursor over a buffer; lines exclude "\n" (and a trailing "\r"). */
typedef struct {
    const char *data;
    size_t len, pos, line_no;
    const char *line;
    size_t line_len;
} line_reader;

static int next_line(line_reader *r) {
    if (r->pos >= r->len) return 0;
    const char *s = r->data + r->pos;
    const char *nl = memchr(s, '\n', r->len - r->pos);
    size_t n = nl ? (size_t)(nl - s) : r->len - r->pos;
    r->pos += n + (nl ? 1 : 0);
    if (n && s[n - 1] == '\r') n--;
    r->line = s;
    r->line_len = n;
    r->line_no++;
    return 1;
}

/* Parses "<key> <u32>" exactly. */
static int line_key_u32(const line_reader *r, const char *key, uint32_t *v) {
    size_t kl = strlen(key);
    if (r->line_len <= kl + 1 || memcmp(r->line, key, kl) || r->line[kl] != ' ') return 0;
    uint64_t x = 0;
    for (size_t i = kl + 1; i < r->line_len; i++) {
        char c = r->line[i];
        if (c < '0' || c > '9') return 0;
        x = x * 10 + (uint64_t)(c - '0');
        if (x > UINT32_MAX) return 0;
    }
    *v = (uint32_t)x;
    return 1;
}

static int line_is(const line_reader *r, const char *s) {
    return r->line_len == strlen(s) && !memcmp(r->line, s, r->line_len);
}

cllm_status cllm_tokenizer_parse(const char *data, size_t len, const char *name,
                                 cllm_tokenizer **out, cllm_error *err) {
    *out = NULL;
    line_reader r = {data, len, 0, 0, NULL, 0};
    cllm_tokenizer *t = NULL;
    uint8_t *buf = NULL;
    char *regex = NULL;
    cllm_status st = CLLM_OK;
#define BAD(...)                                                                   \
    do {                                                                           \
        st = cllm_error_set(err, CLLM_ERR_FORMAT, __VA_ARGS__);                    \
        goto fail;                                                                 \
    } while (0)
    if (!next_line(&r)) BAD("%s:1: not a cllm tokenizer file (expected '%s')", name, FILE_MAGIC);
    if (!line_is(&r, FILE_MAGIC)) {
        const size_t k = strlen(FILE_KIND);
        if (r.line_len > k && r.line_len < 32 && !memcmp(r.line, FILE_KIND, k))
            BAD("%s:1: cllm tokenizer file version %.*s; this cllm reads version 1 (written by a newer cllm?)", name,
                (int)(r.line_len - k), r.line + k);
        BAD("%s:1: not a cllm tokenizer file (expected '%s')", name, FILE_MAGIC);
    }
    cllm_bpe_rule rule;
    if (!next_line(&r)) BAD("%s: truncated after line %zu", name, r.line_no);
    if (line_is(&r, "rule ranks")) rule = CLLM_BPE_RANKS;
    else if (line_is(&r, "rule merges")) rule = CLLM_BPE_MERGES;
    else BAD("%s:%zu: expected 'rule ranks' or 'rule merges'", name, r.line_no);
    if (!next_line(&r) || r.line_len < 9 || memcmp(r.line, "pattern ", 8))
        BAD("%s:%zu: expected 'pattern <name>'", name, r.line_no);
    char pname[32];
    if (r.line_len - 8 >= sizeof pname) BAD("%s:%zu: pattern name too long", name, r.line_no);
    memcpy(pname, r.line + 8, r.line_len - 8);
    pname[r.line_len - 8] = '\0';
    cllm_pretok_kind kind = CLLM_PRETOK_CUSTOM;
    if (strcmp(pname, "custom")) {
        st = cllm_pretok_parse(pname, &kind, err);
        if (st != CLLM_OK) {
            cllm_error_prefix(err, "%s:%zu", name, r.line_no);
            st = CLLM_ERR_FORMAT;
            err->status = st;
            goto fail;
        }
    } else {
        if (!next_line(&r) || r.line_len < 7 || memcmp(r.line, "regex ", 6))
            BAD("%s:%zu: expected 'regex <base64>'", name, r.line_no);
        regex = malloc(r.line_len);
        long n = regex ? tok_base64_decode(r.line + 6, r.line_len - 6, (uint8_t *)regex) : -1;
        if (n <= 0 || memchr(regex, '\0', (size_t)n)) BAD("%s:%zu: bad base64 regex", name, r.line_no);
        regex[n] = '\0';
    }
    uint32_t n_vocab;
    if (!next_line(&r) || !line_key_u32(&r, "vocab", &n_vocab))
        BAD("%s:%zu: expected 'vocab <count>'", name, r.line_no);
    /* Each vocab line has at least 2 bytes: reject counts the file cannot hold. */
    if ((uint64_t)n_vocab * 2 > len - r.pos + 2)
        BAD("%s:%zu: vocab count %u exceeds what the remaining %zu bytes can hold", name, r.line_no,
            n_vocab, len - r.pos);
    if ((st = cllm_tokenizer_new(&t, n_vocab, kind, regex, err)) != CLLM_OK) {
        cllm_error_prefix(err, "%s:%zu", name, r.line_no);
        goto fail;
    }
    size_t buf_cap = 0;
    for (uint32_t id = 0; id < n_vocab; id++) {
        if (!next_line(&r)) BAD("%s: truncated in the vocabulary (token %u of %u)", name, id, n_vocab);
        if (line_is(&r, "u")) continue;
        if (r.line_len < 3 || (r.line[0] != 'n' && r.line[0] != 's') || r.line[1] != ' ')
            BAD("%s:%zu: expected 'n <base64>', 's <base64>' or 'u' for token %u", name, r.line_no, id);
        size_t n64 = r.line_len - 2;
        if (n64 > buf_cap) {
            free(buf);
            buf_cap = n64;
            buf = malloc(buf_cap);
            if (!buf) {
                st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
                goto fail;
            }
        }
        long n = tok_base64_decode(r.line + 2, n64, buf);
        if (n <= 0) BAD("%s:%zu: bad base64 for token %u", name, r.line_no, id);
        st = cllm_tokenizer_set_token(t, id, buf, (size_t)n,
                                      r.line[0] == 's' ? CLLM_TOKEN_SPECIAL : CLLM_TOKEN_NORMAL, err);
        if (st != CLLM_OK) {
            cllm_error_prefix(err, "%s:%zu", name, r.line_no);
            goto fail;
        }
    }
    uint32_t n_merges;
    if (!next_line(&r) || !line_key_u32(&r, "merges", &n_merges))
        BAD("%s:%zu: expected 'merges <count>'", name, r.line_no);
    if (rule == CLLM_BPE_RANKS && n_merges)
        BAD("%s:%zu: a ranks-rule file stores no merges", name, r.line_no);
    for (uint32_t m = 0; m < n_merges; m++) {
        if (!next_line(&r)) BAD("%s: truncated in the merges (merge %u of %u)", name, m, n_merges);
        char tmp[32];
        if (r.line_len >= sizeof tmp) BAD("%s:%zu: bad merge line", name, r.line_no);
        memcpy(tmp, r.line, r.line_len);
        tmp[r.line_len] = '\0';
        unsigned a, b;
        int used = 0;
        if (sscanf(tmp, "%u %u%n", &a, &b, &used) != 2 || used != (int)r.line_len || tmp[0] == '-')
            BAD("%s:%zu: expected '<left id> <right id>'", name, r.line_no);
        if ((st = cllm_tokenizer_add_merge(t, a, b, err)) != CLLM_OK) goto fail;
    }
    if (!next_line(&r) || !line_is(&r, "end")) BAD("%s:%zu: expected 'end'", name, r.line_no);
    if ((st = cllm_tokenizer_finalize(t, rule, err)) != CLLM_OK) {
        cllm_error_prefix(err, "%s", name);
        goto fail;
    }
#undef BAD
    free(buf);
    free(regex);
    *out = t;
    return CLLM_OK;
fail:
    free(buf);
    free(regex);
    cllm_tokenizer_destroy(t);
    return st;
}

cllm_status cllm_tokenizer_load(const char *path, cllm_tokenizer **out, cllm_error *err) {
    char *data;
    size_t len;
    cllm_status st = cllm_file_read_all(path, 1u << 30, &data, &len, err);
    if (st != CLLM_OK) return st;
    st = cllm_tokenizer_parse(data, len, path, out, err);
    free(data);
    return st;
}

cllm_status cllm_tokenizer_load_any(const char *path, cllm_pretok_kind kind, cllm_tokenizer **out,
                                    cllm_error *err) {
    *out = NULL;
    cllm_status st = cllm_file_check_regular(path, NULL, err);
    if (st != CLLM_OK) return st;
    FILE *f = fopen(path, "rb");
    if (!f) return cllm_error_set(err, CLLM_ERR_IO, "%s: cannot open", path);
    char head[64] = {0};
    size_t n = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    if (n >= strlen(FILE_KIND) && !memcmp(head, FILE_KIND, strlen(FILE_KIND))) /* any version: its reader says which */
        return cllm_tokenizer_load(path, out, err);
    if (n >= 4 && !memcmp(head, "GGUF", 4)) return cllm_tokenizer_read_gguf(path, out, err);
    size_t pl = strlen(path);
    if (pl > 6 && !strcmp(path + pl - 6, ".model") && n && head[0] == 0x0a) /* protobuf field 1, a piece */
        return cllm_tokenizer_load_spm_model(path, out, err);
    size_t i = 0;
    while (i < n && (head[i] == ' ' || head[i] == '\n' || head[i] == '\r' || head[i] == '\t')) i++;
    if (i < n && head[i] == '{') return cllm_tokenizer_load_hf(path, out, err);
    return cllm_tokenizer_load_tiktoken(path, kind, NULL, NULL, 0, out, err);
}
