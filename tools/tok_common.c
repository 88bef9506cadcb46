/*
 * tok_common.c: loading a tokenizer from command-line flags (see tok_common.h).
 */
#include "tok_common.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cllm/core/fileio.h"

int tok_source_arg(const char *command, tok_source *src, int argc, char **argv, int *i) {
    const char **slot = NULL;
    if (!strcmp(argv[*i], "--tokenizer")) slot = &src->path;
    else if (!strcmp(argv[*i], "--merges")) slot = &src->merges;
    else if (!strcmp(argv[*i], "--pattern")) slot = &src->pattern;
    else return 0;
    const char *v = cli_value(command, argc, argv, i);
    if (!v) return -1;
    *slot = v;
    return 1;
}

int tok_source_load(const char *command, const tok_source *src, cllm_tokenizer **out) {
    cllm_error err = {0};
    if (!src->path) return cli_usage_error(command, "--tokenizer FILE is required");
    cllm_pretok_kind kind = CLLM_PRETOK_CL100K;
    if (src->pattern && cllm_pretok_parse(src->pattern, &kind, &err) != CLLM_OK)
        return cli_usage_error(command, "--pattern: %s", err.msg);
    cllm_status st = src->merges ? cllm_tokenizer_load_gpt2(src->path, src->merges, out, &err)
                                 : cllm_tokenizer_load_any(src->path, kind, out, &err);
    return st == CLLM_OK ? CLI_EXIT_OK : cli_fail(command, &err);
}

/* Calls fn for the "field" string of every JSONL record; errors name file:line:col. */
int tok_for_each_jsonl(const char *cmd, const char *path, const char *field, tok_record_fn fn,
                       void *ctx) {
    cllm_mmap map = {0};
    cllm_error err = {0};
    if (cllm_mmap_open(&map, path, &err) != CLLM_OK) return cli_fail(cmd, &err);
    const char *d = (const char *)map.data;
    size_t len = map.size, line = 0;
    int rc = CLI_EXIT_OK;
    for (size_t pos = 0; pos < len && rc == CLI_EXIT_OK;) {
        const char *s = d + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + 1;
        line++;
        if (line == 1 && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) s += 3, n -= 3; /* BOM */
        if (n && s[n - 1] == '\r') n--;
        size_t k = 0;
        while (k < n && (s[k] == ' ' || s[k] == '\t')) k++;
        if (k == n) continue; /* blank line */
        const char *end = NULL;
        cJSON *obj = cJSON_ParseWithLengthOpts(s, n, &end, 0);
        if (!obj) {
            const char *ep = cJSON_GetErrorPtr();
            size_t col = ep && ep >= s && ep <= s + n ? (size_t)(ep - s) + 1 : 1;
            fprintf(stderr, "cllm %s: error: %s:%zu:%zu: malformed JSON\n", cmd, path, line, col);
            rc = CLI_EXIT_DATA;
            break;
        }
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, field);
        if (!cJSON_IsString(f)) {
            fprintf(stderr, "cllm %s: error: %s:%zu: record has no string field \"%s\"\n", cmd, path,
                    line, field);
            rc = CLI_EXIT_DATA;
        } else {
            rc = fn(ctx, f->valuestring, strlen(f->valuestring), line);
        }
        cJSON_Delete(obj);
    }
    cllm_mmap_close(&map);
    return rc;
}

