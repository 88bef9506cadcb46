/*
 * llama_logits.c: next-token logits of a GGUF model as llama.cpp computes
 * them (libllama, CPU, f32 KV cache, no flash attention), for
 * tests/interop/convert_llama.sh. Also the greedy continuation.
 *
 *   llama_logits MODEL.gguf N_GREEDY ID...
 * prints one JSON object: {"logits": [[V floats] per prompt position],
 * "greedy": [N_GREEDY ids]} (greedy: argmax, re-evaluating the whole
 * sequence each step, as a fresh context would).
 * Built against /tmp/llama-src (include/ and build/bin/libllama.so).
 */
#include <stdio.h>
#include <stdlib.h>

#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *ud) {
    (void)level, (void)text, (void)ud;
}

static int eval(struct llama_context *ctx, const llama_token *ids, int n) {
    llama_memory_clear(llama_get_memory(ctx), 1);
    struct llama_batch b = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; i++) {
        b.token[i] = ids[i];
        b.pos[i] = i;
        b.n_seq_id[i] = 1;
        b.seq_id[i][0] = 0;
        b.logits[i] = 1;
    }
    b.n_tokens = n;
    int rc = llama_decode(ctx, b);
    llama_batch_free(b);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: llama_logits MODEL.gguf N_GREEDY ID...\n");
        return 2;
    }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "llama.cpp could not load %s\n", argv[1]);
        return 1;
    }
    const int n_greedy = atoi(argv[2]), n = argc - 3;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(n + n_greedy + 8);
    cp.n_batch = cp.n_ubatch = cp.n_ctx;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.n_threads = cp.n_threads_batch = 1;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    const int V = llama_vocab_n_tokens(llama_model_get_vocab(model));
    llama_token *ids = malloc(sizeof *ids * (size_t)(n + n_greedy));
    for (int i = 0; i < n; i++) ids[i] = atoi(argv[3 + i]);
    if (!ctx || eval(ctx, ids, n) != 0) {
        fprintf(stderr, "llama.cpp could not evaluate the prompt\n");
        return 1;
    }
    printf("{\"logits\": [");
    for (int i = 0; i < n; i++) {
        const float *l = llama_get_logits_ith(ctx, i);
        printf("%s[", i ? ", " : "");
        for (int v = 0; v < V; v++) printf("%s%.7g", v ? ", " : "", l[v]);
        printf("]");
    }
    printf("], \"greedy\": [");
    int len = n;
    for (int g = 0; g < n_greedy; g++) {
        if (g && eval(ctx, ids, len) != 0) return 1;
        const float *l = llama_get_logits_ith(ctx, len - 1);
        int best = 0;
        for (int v = 1; v < V; v++)
            if (l[v] > l[best]) best = v;
        ids[len++] = best;
        printf("%s%d", g ? ", " : "", best);
    }
    printf("]}\n");
    free(ids);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
