/*
 * bench_grammar.c: the grammar's own cost per decode step, without a model.
 *
 *   bench_grammar TOKENIZER SCHEMA.json SAMPLE.json ROUNDS
 *
 * Builds the vocabulary trie of TOKENIZER, the grammar of SCHEMA, tokenizes
 * SAMPLE (a JSON text the schema accepts) and walks it token by token: at
 * each step it times check_token (the sampler's fast path: is the model's
 * choice valid?) and the full mask (the slow path, when it is not), ROUNDS
 * times each, keeping the best. Prints one JSON object: the trie build time,
 * per-step mean and worst mask time, mean check time, and the mean number of
 * tokens allowed. Every token of SAMPLE must be accepted (else exit 1).
 *
 *   bench_grammar --gbnf SCHEMA.json
 *
 * prints the GBNF that SCHEMA converts to, so that bench_grammar.sh can give
 * llama.cpp's completion tool (--grammar-file) exactly the grammar cllm runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/fileio.h"
#include "cllm/core/progress.h"
#include "cllm/infer/grammar.h"
#include "cllm/tokenizer/tokenizer.h"

static int fail(const cllm_error *err) {
    fprintf(stderr, "bench_grammar: %s\n", err->msg);
    return 1;
}

/* bench_grammar --gbnf SCHEMA: the converted grammar on stdout. */
static int print_gbnf(const char *path) {
    cllm_error err;
    char *schema = NULL, *gbnf = NULL;
    size_t schema_len;
    if (cllm_file_read_all(path, 1 << 20, &schema, &schema_len, &err) != CLLM_OK ||
        cllm_json_schema_to_gbnf(schema, schema_len, path, &gbnf, &err) != CLLM_OK) {
        free(schema);
        return fail(&err);
    }
    fputs(gbnf, stdout);
    free(schema);
    free(gbnf);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--gbnf") == 0) return print_gbnf(argv[2]);
    if (argc != 5) {
        fprintf(stderr, "usage: bench_grammar TOKENIZER SCHEMA.json SAMPLE.json ROUNDS\n"
                        "       bench_grammar --gbnf SCHEMA.json\n");
        return 2;
    }
    int rounds = atoi(argv[4]);
    cllm_error err;
    cllm_tokenizer *tok = NULL;
    char *schema = NULL, *sample = NULL, *gbnf = NULL;
    size_t schema_len, sample_len;
    if (cllm_tokenizer_load_any(argv[1], CLLM_PRETOK_GPT2, &tok, &err) != CLLM_OK ||
        cllm_file_read_all(argv[2], 1 << 20, &schema, &schema_len, &err) != CLLM_OK ||
        cllm_file_read_all(argv[3], 1 << 20, &sample, &sample_len, &err) != CLLM_OK)
        return fail(&err);
    cllm_grammar *g = NULL;
    if (cllm_json_schema_to_gbnf(schema, schema_len, argv[2], &gbnf, &err) != CLLM_OK ||
        cllm_grammar_parse(gbnf, strlen(gbnf), argv[2], &g, &err) != CLLM_OK)
        return fail(&err);
    int32_t eog = (int32_t)cllm_tokenizer_eot_id(tok);
    double t0 = cllm_now_seconds();
    cllm_grammar_vocab *v = cllm_grammar_vocab_from_tokenizer(tok, &eog, eog >= 0, &err);
    double build_s = cllm_now_seconds() - t0;
    if (!v) return fail(&err);
    cllm_tokens ids = {0};
    if (cllm_tokenizer_encode(tok, sample, sample_len, NULL, &ids, &err) != CLLM_OK) return fail(&err);
    cllm_grammar_matcher *m = cllm_grammar_matcher_create(g, &err);
    if (!m) return fail(&err);
    uint8_t *allowed = malloc((size_t)cllm_grammar_vocab_size(v));
    double mask_sum = 0, mask_max = 0, check_sum = 0, allowed_sum = 0;
    for (size_t i = 0; i < ids.n; i++) {
        double best_mask = 1e9, best_check = 1e9;
        int n_allowed = 0;
        for (int r = 0; r < rounds; r++) {
            double a = cllm_now_seconds();
            n_allowed = cllm_grammar_matcher_mask(m, v, allowed);
            double b = cllm_now_seconds();
            int ok = cllm_grammar_matcher_check_token(m, v, (int32_t)ids.ids[i]);
            double c = cllm_now_seconds();
            if (!ok || !allowed[ids.ids[i]]) {
                fprintf(stderr, "bench_grammar: token %zu (id %u) of the sample is refused\n", i, ids.ids[i]);
                return 1;
            }
            best_mask = b - a < best_mask ? b - a : best_mask;
            best_check = c - b < best_check ? c - b : best_check;
        }
        cllm_grammar_matcher_accept_token(m, v, (int32_t)ids.ids[i]);
        mask_sum += best_mask;
        check_sum += best_check;
        mask_max = best_mask > mask_max ? best_mask : mask_max;
        allowed_sum += n_allowed;
    }
    int complete = cllm_grammar_matcher_complete(m);
    printf("{\"vocab\": %d, \"sample_tokens\": %zu, \"sample_complete\": %s, \"trie_build_ms\": %.2f, "
           "\"mask_mean_us\": %.1f, \"mask_max_us\": %.1f, \"check_mean_us\": %.2f, \"allowed_mean\": %.0f}\n",
           cllm_grammar_vocab_size(v), ids.n, complete ? "true" : "false", build_s * 1e3, mask_sum / ids.n * 1e6,
           mask_max * 1e6, check_sum / ids.n * 1e6, allowed_sum / ids.n);
    free(allowed);
    cllm_grammar_matcher_destroy(m);
    cllm_grammar_vocab_destroy(v);
    cllm_grammar_destroy(g);
    cllm_tokens_free(&ids);
    cllm_tokenizer_destroy(tok);
    free(schema);
    free(sample);
    free(gbnf);
    return complete ? 0 : 1;
}
