/*
 * llama_lines.c: llama.cpp's tokenization of every line of a file, one
 * process for all lines (llama-tokenize takes one prompt and loads the
 * vocabulary each time: a few hundred lines times a dozen vocabularies
 * would take most of an hour). Calls the library function llama-tokenize
 * calls, llama_tokenize, without BOS/EOS.
 *
 * Usage: llama_lines VOCAB.gguf FILE sp|nosp   (sp: parse special tokens)
 * Prints one line of space-separated ids per input line ("\n"-separated;
 * a last line without "\n" counts too). Exit 1 on any failure.
 * Built by tests/interop/bpe_llama.sh against a llama.cpp build.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)level;
    (void)text;
    (void)user;
}

int main(int argc, char **argv) {
    if (argc != 4 || (strcmp(argv[3], "sp") && strcmp(argv[3], "nosp"))) {
        fprintf(stderr, "usage: llama_lines VOCAB.gguf FILE sp|nosp\n");
        return 2;
    }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "llama_lines: cannot load %s\n", argv[1]);
        return 1;
    }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        fprintf(stderr, "llama_lines: cannot open %s\n", argv[2]);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int parse_special = !strcmp(argv[3], "sp"), rc = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n') n--;
        int32_t max = 4 * (int32_t)n + 16; /* an invalid byte becomes U+FFFD: 3 bytes */
        llama_token *ids = malloc((size_t)max * sizeof *ids);
        int32_t k = ids ? llama_tokenize(vocab, line, (int32_t)n, ids, max, false, parse_special) : -1;
        if (k < 0) {
            fprintf(stderr, "llama_lines: tokenizing failed\n");
            rc = 1;
            free(ids);
            break;
        }
        for (int32_t i = 0; i < k; i++) printf(i ? " %d" : "%d", ids[i]);
        putchar('\n');
        free(ids);
    }
    free(line);
    fclose(f);
    llama_model_free(model);
    return rc;
}
