/*
 * cmd_tokenizer.c: `cllm tokenizer train|encode|decode|info|convert`: train
 * a byte-level BPE vocabulary, and inspect how a vocabulary splits text.
 * Argument parsing and printing only; the work is in src/tokenizer/.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cllm/core/fileio.h"
#include "cllm/core/progress.h"
#include "tok_common.h"

#define CMD "tokenizer"

static void print_help(void) {
    printf("Usage: cllm tokenizer <train|encode|decode|info|convert> [options]\n\n"
           "  train   --vocab-size N -o OUT [--pattern gpt4] [--special A,B,..|--no-special]\n"
           "          [--jsonl] [--field text] [--min-count 2] [--threads N] FILES...\n"
           "          Learns byte-level BPE merges from text (or JSONL) files and writes a\n"
           "          cllm tokenizer file. Default specials: <|endoftext|>,<|im_start|>,<|im_end|>.\n"
           "  encode  --tokenizer F [--text S | --file F | --jsonl F [--field text]]\n"
           "          [--format tokens|ids|count] [--allow-special none|all|A,B] [--threads N]\n"
           "          Shows the tokens of the text (stdin if no input flag):\n"
           "          'Hello, world!' -> [\"Hello\", \",\", \" world\", \"!\"] and the ids.\n"
           "          --jsonl prints one line of ids per record (--format ids).\n"
           "  decode  --tokenizer F [IDS...]  Writes the bytes of the ids (args or stdin).\n"
           "  info    --tokenizer F           Vocabulary size, merges, split, specials, hash.\n"
           "  convert --tokenizer F -o OUT    Saves any loadable vocabulary as a cllm file\n"
           "                                 (or as GGUF metadata when OUT ends in .gguf;\n"
           "                                 SentencePiece vocabularies: GGUF only).\n\n"
           "Tokenizer source options:\n" TOK_SOURCE_HELP);
}

/* ---- reading inputs ---------------------------------------------------------- */

/* Splits "a,b,c" into a NULL-terminated array of owned strings. */
static char **split_list(const char *s, size_t *n) {
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    char **v = calloc(cap + 1, sizeof *v);
    *n = 0;
    if (!v) return NULL;
    const char *p = s;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        v[*n] = strndup(p, l);
        if (!v[*n]) break;
        (*n)++;
        if (!c) break;
        p = c + 1;
    }
    return v;
}

static void free_list(char **v, size_t n) {
    for (size_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

/* ---- train ---------------------------------------------------------------------- */

typedef struct {
    cllm_bpe_trainer *tr;
    uint64_t bytes;
    cllm_error err;
} train_ctx;

static int train_record(void *ctx, const char *text, size_t len, size_t line) {
    train_ctx *c = ctx;
    (void)line;
    c->bytes += len;
    return cllm_bpe_trainer_add(c->tr, text, len, &c->err) == CLLM_OK ? CLI_EXIT_OK
                                                                        : cli_fail(CMD, &c->err);
}

static int cmd_train(int argc, char **argv) {
    cllm_bpe_train_params p = cllm_bpe_train_default_params();
    const char *out = NULL, *field = "text", *specials_arg = NULL;
    int jsonl = 0, no_special = 0, vocab_given = 0;
    const char *files[4096];
    int n_files = 0;
    int64_t v64;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) {
            print_help();
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--vocab-size")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) ||
                !cli_parse_i64(CMD, a, v, 256, 1 << 30, &v64))
                return CLI_EXIT_USAGE;
            p.vocab_size = (uint32_t)v64;
            vocab_given = 1;
        } else if (!strcmp(a, "--pattern")) {
            cllm_error err;
            if (!(v = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
            if (cllm_pretok_parse(v, &p.pretok, &err) != CLLM_OK)
                return cli_usage_error(CMD, "--pattern: %s", err.msg);
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--out")) {
            if (!(out = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--special")) {
            if (!(specials_arg = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--no-special")) {
            no_special = 1;
        } else if (!strcmp(a, "--jsonl")) {
            jsonl = 1;
        } else if (!strcmp(a, "--field")) {
            if (!(field = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--min-count")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) ||
                !cli_parse_i64(CMD, a, v, 1, INT64_MAX, &v64))
                return CLI_EXIT_USAGE;
            p.min_pair_count = (uint64_t)v64;
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) ||
                !cli_parse_int(CMD, a, v, 1, 4096, &p.n_threads))
                return CLI_EXIT_USAGE;
        } else if (a[0] == '-' && a[1]) {
            return cli_unknown_flag(CMD " train", a);
        } else {
            if (n_files == (int)(sizeof files / sizeof files[0]))
                return cli_usage_error(CMD, "train: too many input files");
            files[n_files++] = a;
        }
    }
    if (!vocab_given) return cli_usage_error(CMD, "train: --vocab-size N is required");
    if (!out) return cli_usage_error(CMD, "train: -o OUT is required");
    if (!n_files) return cli_usage_error(CMD, "train: no input files");
    cllm_error err = {0};
    for (int f = 0; f < n_files; f++)
        if (cllm_file_check_regular(files[f], NULL, &err) != CLLM_OK) return cli_fail(CMD, &err);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    if (cllm_dir_check_writable(slash ? (dir[0] ? dir : "/") : ".", &err) != CLLM_OK)
        return cli_fail(CMD, &err);
    size_t n_sp = 0;
    char **sp = NULL;
    if (no_special) {
        p.specials = NULL;
        p.n_specials = 0;
    } else if (specials_arg) {
        sp = split_list(specials_arg, &n_sp);
        if (!sp) return cli_usage_error(CMD, "out of memory");
        p.specials = (const char *const *)sp;
        p.n_specials = n_sp;
    }
    p.progress = 1;
    train_ctx c = {0};
    int rc = CLI_EXIT_OK;
    double t0 = cllm_now_seconds();
    if (cllm_bpe_trainer_create(&c.tr, &p, &err) != CLLM_OK) {
        rc = err.status == CLLM_ERR_ARG ? cli_usage_error(CMD, "%s", err.msg) : cli_fail(CMD, &err);
        goto done;
    }
    for (int f = 0; f < n_files && rc == CLI_EXIT_OK; f++) {
        if (jsonl) {
            rc = tok_for_each_jsonl(CMD, files[f], field, train_record, &c);
        } else {
            cllm_mmap map = {0};
            if (cllm_mmap_open(&map, files[f], &err) != CLLM_OK) {
                rc = cli_fail(CMD, &err);
                break;
            }
            rc = train_record(&c, (const char *)map.data, map.size, 0);
            cllm_mmap_close(&map);
        }
    }
    double t1 = cllm_now_seconds();
    cllm_tokenizer *tok = NULL;
    if (rc == CLI_EXIT_OK && cllm_bpe_trainer_finish(c.tr, &tok, &err) != CLLM_OK) rc = cli_fail(CMD, &err);
    double t2 = cllm_now_seconds();
    if (rc == CLI_EXIT_OK && cllm_tokenizer_save(tok, out, &err) != CLLM_OK) rc = cli_fail(CMD, &err);
    if (rc == CLI_EXIT_OK)
        fprintf(stderr,
                "trained %s: vocab %u (%u merges), %llu distinct pre-tokens from %llu bytes; "
                "count %.2fs, merge %.2fs\n",
                out, cllm_tokenizer_n_vocab(tok), cllm_tokenizer_n_merges(tok),
                (unsigned long long)cllm_bpe_trainer_n_unique(c.tr), (unsigned long long)c.bytes,
                t1 - t0, t2 - t1);
    if (rc == CLI_EXIT_OK && cllm_tokenizer_n_vocab(tok) < p.vocab_size)
        fprintf(stderr,
                "note: the vocabulary has %u tokens, fewer than the %u asked: the corpus ran out of pairs seen at "
                "least --min-count times to merge (more or more varied text, or a lower --min-count, gives more)\n",
                cllm_tokenizer_n_vocab(tok), p.vocab_size);
    cllm_tokenizer_destroy(tok);
done:
    cllm_bpe_trainer_destroy(c.tr);
    free_list(sp, n_sp);
    return rc;
}

/* ---- encode ---------------------------------------------------------------------- */

/* Prints token bytes as a JSON-style string; invalid UTF-8 bytes as \xNN. */
static void print_token_text(const uint8_t *b, size_t n) {
    putchar('"');
    cllm_utf8_stream st = {0};
    for (size_t i = 0; i < n;) {
        uint8_t c = b[i];
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
            i++;
        } else if (c == '\n') {
            printf("\\n");
            i++;
        } else if (c == '\t') {
            printf("\\t");
            i++;
        } else if (c == '\r') {
            printf("\\r");
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            printf("\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            putchar(c);
            i++;
        } else {
            /* A whole valid multi-byte character? Print it; else \xNN. */
            size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            char tmp[16];
            size_t got = 0;
            if (need > 1 && i + need <= n) {
                st.n_pending = 0;
                got = cllm_utf8_stream_feed(&st, b + i, need, tmp);
            }
            if (need > 1 && got == need && !memcmp(tmp, b + i, need)) {
                fwrite(b + i, 1, need, stdout);
                i += need;
            } else {
                printf("\\x%02x", c);
                i++;
            }
        }
    }
    putchar('"');
}

typedef struct {
    cllm_tokenizer *tok;
    const cllm_special_set *allowed;
    int threads;
    cllm_error err;
} encode_ctx;

static int encode_record(void *ctx, const char *text, size_t len, size_t line) {
    encode_ctx *c = ctx;
    cllm_tokens toks = {0};
    if (cllm_tokenizer_encode_parallel(c->tok, text, len, c->allowed, c->threads, &toks, &c->err) !=
        CLLM_OK) {
        cllm_error_prefix(&c->err, "line %zu", line);
        return cli_fail(CMD, &c->err);
    }
    for (size_t i = 0; i < toks.n; i++) printf(i ? " %u" : "%u", toks.ids[i]);
    putchar('\n');
    cllm_tokens_free(&toks);
    return CLI_EXIT_OK;
}

static int read_stdin(char **data, size_t *len) {
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    if (!buf) return 0;
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return 0;
            }
            buf = nb;
            cap *= 2;
        }
    }
    *data = buf;
    *len = n;
    return 1;
}

/* Parses --allow-special into set (ids owned by *ids). */
static int parse_allowed(cllm_tokenizer *tok, const char *arg, cllm_special_set *set, uint32_t **ids) {
    memset(set, 0, sizeof *set);
    *ids = NULL;
    if (!arg || !strcmp(arg, "none")) return CLI_EXIT_OK;
    if (!strcmp(arg, "all")) {
        set->all = 1;
        return CLI_EXIT_OK;
    }
    size_t n;
    char **names = split_list(arg, &n);
    *ids = calloc(n + 1, sizeof **ids);
    int rc = CLI_EXIT_OK;
    for (size_t i = 0; i < n && rc == CLI_EXIT_OK; i++) {
        int64_t id = cllm_tokenizer_special_id(tok, names[i]);
        if (id < 0) rc = cli_usage_error(CMD, "--allow-special: '%s' is not a special token", names[i]);
        else (*ids)[i] = (uint32_t)id;
    }
    set->ids = *ids;
    set->n = n;
    free_list(names, n);
    return rc;
}

static int cmd_encode(int argc, char **argv) {
    tok_source src = {0};
    const char *text = NULL, *file = NULL, *jsonl = NULL, *field = "text", *format = "tokens",
               *allow = NULL;
    int threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = tok_source_arg(CMD, &src, argc, argv, &i);
        if (r < 0) return CLI_EXIT_USAGE;
        if (r > 0) continue;
        if (cli_is_help(a)) {
            print_help();
            return CLI_EXIT_OK;
        }
        const char **slot = !strcmp(a, "--text")            ? &text
                            : !strcmp(a, "--file")          ? &file
                            : !strcmp(a, "--jsonl")         ? &jsonl
                            : !strcmp(a, "--field")         ? &field
                            : !strcmp(a, "--format")        ? &format
                            : !strcmp(a, "--allow-special") ? &allow
                                                            : NULL;
        if (slot) {
            if (!(*slot = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            const char *v = cli_value(CMD, argc, argv, &i);
            if (!v || !cli_parse_int(CMD, a, v, 1, 4096, &threads)) return CLI_EXIT_USAGE;
        } else {
            return cli_unknown_flag(CMD " encode", a);
        }
    }
    if (!!text + !!file + !!jsonl > 1)
        return cli_usage_error(CMD, "encode: give at most one of --text, --file, --jsonl");
    if (strcmp(format, "tokens") && strcmp(format, "ids") && strcmp(format, "count"))
        return cli_usage_error(CMD, "encode: --format must be tokens, ids or count, got '%s'", format);
    cllm_tokenizer *tok = NULL;
    int rc = tok_source_load(CMD, &src, &tok);
    if (rc != CLI_EXIT_OK) return rc;
    cllm_special_set allowed;
    uint32_t *allowed_ids = NULL;
    if ((rc = parse_allowed(tok, allow, &allowed, &allowed_ids)) != CLI_EXIT_OK) goto done;
    encode_ctx c = {tok, &allowed, threads, {0}};
    if (jsonl) {
        rc = tok_for_each_jsonl(CMD, jsonl, field, encode_record, &c);
        goto done;
    }
    char *data = NULL;
    size_t len = 0;
    cllm_mmap map = {0};
    if (text) {
        data = (char *)text;
        len = strlen(text);
    } else if (file) {
        if (cllm_mmap_open(&map, file, &c.err) != CLLM_OK) {
            rc = cli_fail(CMD, &c.err);
            goto done;
        }
        data = (char *)map.data;
        len = map.size;
    } else if (!read_stdin(&data, &len)) {
        fprintf(stderr, "cllm %s: error: out of memory reading stdin\n", CMD);
        rc = CLI_EXIT_DATA;
        goto done;
    }
    cllm_tokens toks = {0};
    if (cllm_tokenizer_encode_parallel(tok, data, len, &allowed, threads, &toks, &c.err) != CLLM_OK) {
        rc = cli_fail(CMD, &c.err);
    } else if (!strcmp(format, "count")) {
        printf("{\"bytes\": %zu, \"tokens\": %zu, \"bytes_per_token\": %.4f}\n", len, toks.n,
               toks.n ? (double)len / (double)toks.n : 0.0);
    } else if (!strcmp(format, "ids")) {
        for (size_t i = 0; i < toks.n; i++) printf(i ? " %u" : "%u", toks.ids[i]);
        putchar('\n');
    } else {
        putchar('[');
        for (size_t i = 0; i < toks.n; i++) {
            const uint8_t *b;
            size_t n;
            cllm_tokenizer_token_bytes(tok, toks.ids[i], &b, &n, &c.err);
            if (i) printf(", ");
            print_token_text(b, n);
        }
        printf("]\n[");
        for (size_t i = 0; i < toks.n; i++) printf(i ? ", %u" : "%u", toks.ids[i]);
        printf("]\n");
    }
    cllm_tokens_free(&toks);
    if (!text && !file) free(data);
    cllm_mmap_close(&map);
done:
    free(allowed_ids);
    cllm_tokenizer_destroy(tok);
    return rc;
}

/* ---- decode / info / convert ------------------------------------------------------- */

static int parse_id(const char *s, uint32_t *id) {
    char *end;
    if (!*s || *s == '-' || *s == '+') return 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v > UINT32_MAX) return 0;
    *id = (uint32_t)v;
    return 1;
}

static int cmd_decode(int argc, char **argv) {
    tok_source src = {0};
    cllm_tokens ids = {0};
    cllm_error err = {0};
    int rc = CLI_EXIT_OK, from_args = 0;
    for (int i = 1; i < argc && rc == CLI_EXIT_OK; i++) {
        int r = tok_source_arg(CMD, &src, argc, argv, &i);
        if (r < 0) rc = CLI_EXIT_USAGE;
        if (r) continue;
        if (cli_is_help(argv[i])) {
            print_help();
            cllm_tokens_free(&ids);
            return CLI_EXIT_OK;
        }
        uint32_t id;
        from_args = 1;
        if (!parse_id(argv[i], &id)) rc = cli_usage_error(CMD, "decode: '%s' is not a token id", argv[i]);
        else if (cllm_tokens_push(&ids, id, &err) != CLLM_OK) rc = cli_fail(CMD, &err);
    }
    cllm_tokenizer *tok = NULL;
    if (rc == CLI_EXIT_OK) rc = tok_source_load(CMD, &src, &tok);
    if (rc == CLI_EXIT_OK && !from_args) { /* ids from stdin, separated by spaces, commas, brackets */
        char *data;
        size_t len;
        if (!read_stdin(&data, &len)) {
            rc = CLI_EXIT_DATA;
        } else {
            for (size_t i = 0; i < len && rc == CLI_EXIT_OK;) {
                if (strchr(" \t\r\n,[]", data[i])) {
                    i++;
                    continue;
                }
                char word[32];
                size_t k = 0;
                while (i < len && !strchr(" \t\r\n,[]", data[i]) && k < sizeof word - 1) word[k++] = data[i++];
                word[k] = '\0';
                uint32_t id;
                if (!parse_id(word, &id)) rc = cli_usage_error(CMD, "decode: '%s' is not a token id", word);
                else if (cllm_tokens_push(&ids, id, &err) != CLLM_OK) rc = cli_fail(CMD, &err);
            }
            free(data);
        }
    }
    if (rc == CLI_EXIT_OK) {
        char *out;
        size_t n;
        if (cllm_tokenizer_decode(tok, ids.ids, ids.n, &out, &n, &err) != CLLM_OK) {
            rc = cli_fail(CMD, &err);
        } else {
            fwrite(out, 1, n, stdout);
            free(out);
        }
    }
    cllm_tokens_free(&ids);
    cllm_tokenizer_destroy(tok);
    return rc;
}

static int cmd_info_convert(int argc, char **argv, int convert) {
    tok_source src = {0};
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        int r = tok_source_arg(CMD, &src, argc, argv, &i);
        if (r < 0) return CLI_EXIT_USAGE;
        if (r) continue;
        if (cli_is_help(argv[i])) {
            print_help();
            return CLI_EXIT_OK;
        }
        if (convert && (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output") || !strcmp(argv[i], "--out"))) {
            if (!(out = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
            continue;
        }
        return cli_usage_error(CMD, "%s: unknown argument '%s'", argv[0], argv[i]);
    }
    if (convert && !out) return cli_usage_error(CMD, "convert: -o OUT is required");
    cllm_tokenizer *tok = NULL;
    int rc = tok_source_load(CMD, &src, &tok);
    if (rc != CLI_EXIT_OK) return rc;
    cllm_error err = {0};
    if (convert) {
        size_t ol = strlen(out);
        int gguf = ol > 5 && !strcmp(out + ol - 5, ".gguf");
        if ((gguf ? cllm_tokenizer_write_gguf(tok, out, NULL, &err) : cllm_tokenizer_save(tok, out, &err)) != CLLM_OK)
            rc = cli_fail(CMD, &err);
    } else {
        uint32_t V = cllm_tokenizer_n_vocab(tok), n_special = 0, n_unused = 0;
        printf("{\"vocab_size\": %u, \"merges\": %u, \"rule\": \"%s\", \"pattern\": \"%s\", "
               "\"hash\": \"%016llx\", \"eot_id\": %lld, \"specials\": [",
               V, cllm_tokenizer_n_merges(tok),
               cllm_tokenizer_is_spm(tok) ? "sentencepiece" : cllm_tokenizer_rule(tok) == CLLM_BPE_RANKS ? "ranks" : "merges",
               cllm_pretok_name(cllm_tokenizer_pretok_kind(tok)),
               (unsigned long long)cllm_tokenizer_hash(tok), (long long)cllm_tokenizer_eot_id(tok));
        for (uint32_t id = 0; id < V; id++) {
            cllm_token_kind k = cllm_tokenizer_token_kind(tok, id);
            n_unused += k == CLLM_TOKEN_UNUSED;
            if (k != CLLM_TOKEN_SPECIAL) continue;
            const uint8_t *b;
            size_t n;
            cllm_tokenizer_token_bytes(tok, id, &b, &n, &err);
            printf(n_special++ ? ", [%u, " : "[%u, ", id);
            print_token_text(b, n);
            putchar(']');
        }
        printf("], \"unused_ids\": %u}\n", n_unused);
    }
    cllm_tokenizer_destroy(tok);
    return rc;
}

int cllm_cmd_tokenizer(int argc, char **argv) {
    if (argc < 2) {
        print_help();
        return CLI_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (cli_is_help(sub)) {
        print_help();
        return CLI_EXIT_OK;
    }
    if (!strcmp(sub, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(sub, "encode")) return cmd_encode(argc - 1, argv + 1);
    if (!strcmp(sub, "decode")) return cmd_decode(argc - 1, argv + 1);
    if (!strcmp(sub, "info")) return cmd_info_convert(argc - 1, argv + 1, 0);
    if (!strcmp(sub, "convert")) return cmd_info_convert(argc - 1, argv + 1, 1);
    return cli_usage_error(CMD, "unknown subcommand '%s' (train, encode, decode, info, convert)", sub);
}
