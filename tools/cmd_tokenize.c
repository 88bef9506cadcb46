/*
 * cmd_tokenize.c: `cllm tokenize`: text or JSONL files in, one token shard
 * out (include/cllm/train/shard.h: u16 ids when the vocabulary fits, else u32),
 * with a document separator after every document, encoded on all cores,
 * with a progress bar. Parsing and orchestration only; encoding is in
 * src/tokenizer/, the shard writer in src/train/shard.c.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cllm/core/fileio.h"
#include "cllm/core/progress.h"
#include "cllm/train/shard.h"
#include "tok_common.h"

#define CMD "tokenize"
#define BATCH_BYTES (8u << 20) /* JSONL records encoded together in parallel */

static void print_help(void) {
    printf("Usage: cllm tokenize --tokenizer F -o OUT.tok [options] FILES...\n\n"
           "Encodes text files (one document each) or JSONL files (one document per\n"
           "record) into one token shard, appending the end-of-text token after each\n"
           "document. Special-token text inside documents stays ordinary text.\n\n"
           "  -o, --output FILE   shard to write (atomically)\n"
           "  --jsonl             inputs are JSONL; the text is in --field (default \"text\")\n"
           "  --field NAME        JSONL field holding the document text\n"
           "  --no-eot            do not append the end-of-text token\n"
           "  -t, --threads N     encoding threads (default: all cores)\n"
           TOK_SOURCE_HELP);
}

typedef struct {
    const cllm_tokenizer *tok;
    cllm_tokens all;       /* every id so far */
    int64_t eot;           /* appended after each document, -1 for none */
    int threads;
    char **docs;           /* [n_docs] pending JSONL documents (owned) */
    size_t *lens;          /* [n_docs] */
    size_t n_docs, cap, batch_bytes;
    uint64_t done_bytes, total_bytes, n_documents;
    cllm_progress prog;
    cllm_error err;
} tokenize_ctx;

static int flush_batch(tokenize_ctx *c) {
    if (!c->n_docs) return CLI_EXIT_OK;
    cllm_tokens *parts = calloc(c->n_docs, sizeof *parts);
    cllm_status *sts = calloc(c->n_docs, sizeof *sts);
    cllm_error *errs = calloc(c->n_docs, sizeof *errs);
    int rc = CLI_EXIT_OK;
    if (!parts || !sts || !errs) {
        fprintf(stderr, "cllm %s: error: out of memory\n", CMD);
        rc = CLI_EXIT_DATA;
    } else {
#pragma omp parallel for schedule(dynamic, 16) num_threads(c->threads)
        for (size_t i = 0; i < c->n_docs; i++)
            sts[i] = cllm_tokenizer_encode(c->tok, c->docs[i], c->lens[i], NULL, &parts[i], &errs[i]);
        for (size_t i = 0; i < c->n_docs && rc == CLI_EXIT_OK; i++) {
            if (sts[i] != CLLM_OK) {
                rc = cli_fail(CMD, &errs[i]);
                break;
            }
            for (size_t k = 0; k < parts[i].n && rc == CLI_EXIT_OK; k++)
                if (cllm_tokens_push(&c->all, parts[i].ids[k], &c->err) != CLLM_OK) rc = cli_fail(CMD, &c->err);
            if (rc == CLI_EXIT_OK && c->eot >= 0 &&
                cllm_tokens_push(&c->all, (uint32_t)c->eot, &c->err) != CLLM_OK)
                rc = cli_fail(CMD, &c->err);
        }
    }
    for (size_t i = 0; i < c->n_docs; i++) {
        if (parts) cllm_tokens_free(&parts[i]);
        c->done_bytes += c->lens[i];
        free(c->docs[i]);
    }
    c->n_documents += c->n_docs;
    c->n_docs = 0;
    c->batch_bytes = 0;
    free(parts);
    free(sts);
    free(errs);
    cllm_progress_update(&c->prog, (double)c->done_bytes / 1e6, NULL);
    return rc;
}

static int add_record(void *ctx, const char *text, size_t len, size_t line) {
    tokenize_ctx *c = ctx;
    (void)line;
    if (c->n_docs == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        char **d = realloc(c->docs, cap * sizeof *d);
        if (d) c->docs = d;
        size_t *l = realloc(c->lens, cap * sizeof *l);
        if (l) c->lens = l;
        if (!d || !l) {
            fprintf(stderr, "cllm %s: error: out of memory\n", CMD);
            return CLI_EXIT_DATA;
        }
        c->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        fprintf(stderr, "cllm %s: error: out of memory\n", CMD);
        return CLI_EXIT_DATA;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    c->docs[c->n_docs] = copy;
    c->lens[c->n_docs++] = len;
    c->batch_bytes += len;
    return c->batch_bytes >= BATCH_BYTES ? flush_batch(c) : CLI_EXIT_OK;
}

int cllm_cmd_tokenize(int argc, char **argv) {
    tok_source src = {0};
    const char *out = NULL, *field = "text";
    int jsonl = 0, no_eot = 0, threads = 0;
    const char *files[4096];
    int n_files = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = tok_source_arg(CMD, &src, argc, argv, &i);
        if (r < 0) return CLI_EXIT_USAGE;
        if (r) continue;
        if (cli_is_help(a)) {
            print_help();
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--out")) {
            if (!(out = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--field")) {
            if (!(field = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--jsonl")) {
            jsonl = 1;
        } else if (!strcmp(a, "--no-eot")) {
            no_eot = 1;
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            const char *v = cli_value(CMD, argc, argv, &i);
            if (!v || !cli_parse_int(CMD, a, v, 1, 4096, &threads)) return CLI_EXIT_USAGE;
        } else if (a[0] == '-' && a[1]) {
            return cli_unknown_flag(CMD, a);
        } else {
            if (n_files == (int)(sizeof files / sizeof files[0])) return cli_usage_error(CMD, "too many files");
            files[n_files++] = a;
        }
    }
    if (!out) return cli_usage_error(CMD, "-o OUT is required");
    if (!n_files) return cli_usage_error(CMD, "no input files");
    cllm_error err = {0};
    uint64_t total = 0;
    for (int f = 0; f < n_files; f++) {
        uint64_t sz;
        if (cllm_file_check_regular(files[f], &sz, &err) != CLLM_OK) return cli_fail(CMD, &err);
        total += sz;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    if (cllm_dir_check_writable(slash ? (dir[0] ? dir : "/") : ".", &err) != CLLM_OK)
        return cli_fail(CMD, &err);
    cllm_tokenizer *tok = NULL;
    int rc = tok_source_load(CMD, &src, &tok);
    if (rc != CLI_EXIT_OK) return rc;
    tokenize_ctx c = {0};
    c.tok = tok;
    c.threads = threads > 0 ? threads : omp_get_max_threads();
    c.eot = no_eot ? -1 : cllm_tokenizer_eot_id(tok);
    c.total_bytes = total;
    cllm_progress_begin(&c.prog, "tokenize", (double)total / 1e6, "MB");
    for (int f = 0; f < n_files && rc == CLI_EXIT_OK; f++) {
        if (jsonl) {
            rc = tok_for_each_jsonl(CMD, files[f], field, add_record, &c);
            if (rc == CLI_EXIT_OK) rc = flush_batch(&c);
            continue;
        }
        cllm_mmap map = {0};
        if (cllm_mmap_open(&map, files[f], &err) != CLLM_OK) {
            rc = cli_fail(CMD, &err);
            break;
        }
        if (cllm_tokenizer_encode_parallel(tok, map.data, map.size, NULL, c.threads, &c.all, &err) != CLLM_OK)
            rc = cli_fail(CMD, &err);
        else if (c.eot >= 0 && cllm_tokens_push(&c.all, (uint32_t)c.eot, &err) != CLLM_OK)
            rc = cli_fail(CMD, &err);
        c.done_bytes += map.size;
        c.n_documents++;
        cllm_mmap_close(&map);
        cllm_progress_update(&c.prog, (double)c.done_bytes / 1e6, NULL);
    }
    for (size_t i = 0; i < c.n_docs; i++) free(c.docs[i]);
    if (rc == CLI_EXIT_OK) cllm_progress_update(&c.prog, (double)total / 1e6, NULL);
    cllm_progress_end(&c.prog, NULL);
    if (rc == CLI_EXIT_OK &&
        cllm_shard_write(out, c.all.ids, c.all.n, cllm_tokenizer_n_vocab(tok),
                         c.eot >= 0 ? (uint32_t)c.eot : CLLM_SHARD_NO_EOT, cllm_tokenizer_hash(tok),
                         &err) != CLLM_OK)
        rc = cli_fail(CMD, &err);
    if (rc == CLI_EXIT_OK)
        fprintf(stderr, "wrote %s: %zu token%s from %llu document%s, %llu bytes (%.3f bytes/token)\n", out,
                c.all.n, c.all.n == 1 ? "" : "s", (unsigned long long)c.n_documents, c.n_documents == 1 ? "" : "s",
                (unsigned long long)c.done_bytes,
                c.all.n ? (double)c.done_bytes / (double)c.all.n : 0.0);
    free(c.docs);
    free(c.lens);
    cllm_tokens_free(&c.all);
    cllm_tokenizer_destroy(tok);
    return rc;
}
