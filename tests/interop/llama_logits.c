/*
 * llama_logits.c: llama.cpp's side of tests/interop/archs.sh. Loads a GGUF
 * with libllama (the build in /tmp/llama-src/build/bin), evaluates the given
 * token ids in one batch with logits at every position, then continues
 * greedily one token at a time through llama.cpp's KV cache. CPU only, f32
 * KV cache, flash attention off, so the comparison measures the weights and
 * the graph.
 * Usage: llama_logits MODEL.gguf N_GREEDY TOKEN...
 * Prints JSON: {"logits": [[V floats] per prompt position], "greedy": [...]}.
 * Exit 1 when the model does not load or a decode fails, 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>

#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *ud) {
    (void)ud;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: llama_logits MODEL.gguf N_GREEDY TOKEN...\n");
        return 2;
    }
    const int n_greedy = atoi(argv[2]), n = argc - 3;
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "llama_logits: %s did not load\n", argv[1]);
        return 1;
    }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(n + n_greedy + 16);
    cp.n_batch = cp.n_ubatch = (uint32_t)(n + 16);
    cp.n_threads = cp.n_threads_batch = 1;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "llama_logits: no context for %s\n", argv[1]);
        return 1;
    }
    const int V = llama_vocab_n_tokens(llama_model_get_vocab(model));
    struct llama_batch b = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; i++) {
        b.token[i] = atoi(argv[3 + i]);
        b.pos[i] = i;
        b.n_seq_id[i] = 1;
        b.seq_id[i][0] = 0;
        b.logits[i] = 1;
    }
    b.n_tokens = n;
    if (llama_decode(ctx, b)) {
        fprintf(stderr, "llama_logits: decode failed\n");
        return 1;
    }
    printf("{\"logits\": [");
    int next = 0;
    for (int i = 0; i < n; i++) {
        const float *lg = llama_get_logits_ith(ctx, i);
        printf("%s[", i ? ",\n" : "");
        for (int v = 0; v < V; v++) printf("%s%.9g", v ? ", " : "", lg[v]);
        printf("]");
        if (i == n - 1)
            for (int v = 1; v < V; v++) next = lg[v] > lg[next] ? v : next;
    }
    printf("],\n\"greedy\": [");
    for (int g = 0; g < n_greedy; g++) {
        printf("%s%d", g ? ", " : "", next);
        if (g == n_greedy - 1) break;
        llama_token t = next;
        if (llama_decode(ctx, llama_batch_get_one(&t, 1))) {
            fprintf(stderr, "llama_logits: decode failed\n");
            return 1;
        }
        const float *lg = llama_get_logits_ith(ctx, -1);
        next = 0;
        for (int v = 1; v < V; v++) next = lg[v] > lg[next] ? v : next;
    }
    printf("]}\n");
    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
